"""The settings a Spark JVM of an environment gets: Delta's jars and extensions, this interpreter, the
metastore, then the environment's own ``spark.conf``. Sessions (:mod:`lakehouse.engine.session`), the set-up's
``spark-defaults.conf`` and the services that start a JVM of their own (the SQL server) all read them here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lakehouse.install.jars import local_jars
from lakehouse.project.config import LakehouseConfig
from lakehouse.services.metastore import metastore_settings

DELTA_SQL_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # Exactly-once appends read their transaction's version from the checksum file
    # (lakehouse.storage.idempotent_append), which lists a table's transactions only up to this many (Delta's
    # default: 100). quality.results gets one per stream query and snapshot step, and a new one whenever a
    # checkpoint is reset; past the limit every such append would rebuild the table's state again.
    "spark.databricks.delta.setTransactionsInCrc.maxAllowed": "1000",
}

# HotSpot compiles a method with C2, its optimising compiler, after 5,000 calls by default. A pipeline step here
# runs hundreds of small Spark queries over thousands of rows, and a fresh JVM spent nearly half its CPU in its
# compiler threads (162 of 376 CPU-seconds of a full pipeline run, measured 2026-12-07 on 2 cores), mostly on
# methods that had run their last rows by the time they were compiled. Four times the thresholds cut the JVM's
# CPU by 12% (221-235 -> 196-197 s over a database and a log path) at the same wall time; ten times, or C1
# only, made runs slower. Long jobs still get C2 for their hot loops, a little later. Spark prepends these
# "default" options to the extraJavaOptions a user sets, which therefore stay free.
JIT_OPTIONS = (
    "-XX:Tier4InvocationThreshold=20000 -XX:Tier4MinInvocationThreshold=2400"
    " -XX:Tier4CompileThreshold=60000 -XX:Tier4BackEdgeThreshold=160000"
)


def jvm_settings(jars: list[str]) -> dict[str, str]:
    """Settings the JVM needs from its start: Delta's jars and extensions, and this interpreter.

    The set-up step also writes them to ``spark-defaults.conf`` so that a plain ``spark-submit``
    (whose JVM starts before any Python runs) gets the same.
    """
    # The metastore's JDBC driver must be on the JVM's own class path: java.sql.DriverManager ignores
    # drivers that only spark.jars' class loader sees ("No suitable driver").
    driver_jars = [jar for jar in jars if "postgresql" in Path(jar).name]
    return {
        "spark.jars": ",".join(jars),
        "spark.driver.extraClassPath": os.pathsep.join(driver_jars),
        **DELTA_SQL_CONF,
        "spark.driver.defaultJavaOptions": JIT_OPTIONS,
        "spark.executor.defaultJavaOptions": JIT_OPTIONS,
        # Python workers must run the same interpreter (and packages) as the driver.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
    }


def spark_settings(config: LakehouseConfig) -> dict[str, str]:
    """Every Spark setting a session of this environment gets; ``conf/`` values win."""
    settings = {
        **jvm_settings(local_jars()),
        "spark.sql.warehouse.dir": config.warehouse + "/_spark_sql",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={config.warehouse}/_derby",
        **metastore_settings(config),
    }
    settings.update(config.spark_conf)
    return settings
