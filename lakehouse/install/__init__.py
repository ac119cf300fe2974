"""What an installation fetches once and where it keeps it: the jars Spark needs, the real data sets, the
sample logs and databases made from them, and the folders they live in. No table and no Spark session here
(the jars' resolution alone runs Spark's Ivy)."""

from pathlib import Path


def spark_home() -> Path:
    """The Spark installation pyspark ships (its ``bin/spark-submit`` reads ``conf/`` from here)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent
