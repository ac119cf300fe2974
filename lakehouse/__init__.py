"""A lakehouse data platform for deep learning on Apache Spark and Delta Lake.

Where things live:
- ``lakehouse.tables``      every table, declared once (layer, schema file, expectations, upstreams)
- ``lakehouse.transforms``  pure DataFrame -> DataFrame functions, one module per subject
- ``lakehouse.writer``      the one place tables are created and committed to
- ``lakehouse.session``     the SparkSession factory (Delta configured from ``conf/``)
- ``lakehouse.loaders``     gold tables -> PyTorch DataLoaders
- ``jobs/``                 thin spark-submit entry points that wire the above together
"""

__version__ = "0.1.0"
