"""A lakehouse data platform for deep learning on Apache Spark and Delta Lake.

A user's pipeline lives in a project folder of its own (``lakehouse init DIR``): sources declared as data,
one definition per table. Where things live in the package:

- ``lakehouse.project``     a project folder read into declarations and steps (no Spark)
- ``lakehouse.project.tables``      what a table declaration is; the platform's own tables
- ``lakehouse.sources``     reading each kind of source: files and their formats, databases, images
- ``lakehouse.transforms``  pure DataFrame -> DataFrame functions, one module per subject
- ``lakehouse.engine``      runs a step: read inputs at pinned versions, transform, gate, quarantine, commit
- ``lakehouse.storage.writer``      the one place tables are created and committed to
- ``lakehouse.engine.session``     the SparkSession factory (Delta configured from the environment)
- ``lakehouse.loaders``     gold tables -> PyTorch DataLoaders

``from lakehouse import table`` is the decorator of a Python table definition.
"""

from lakehouse.project.definitions import table

__version__ = "0.1.0"
__all__ = ["table"]
