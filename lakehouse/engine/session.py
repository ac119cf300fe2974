"""The one SparkSession factory used by jobs, tests and notebooks, with Delta Lake configured."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager, nullcontext
from typing import Mapping

from pyspark.sql import SparkSession

from lakehouse.project.config import LakehouseConfig
from lakehouse.services import class_archive
from lakehouse.services.metastore import (
    create_schema,
    metastore_ready,
    prepare_metastore,
    quiet_metastore_warnings,
    schema_creation_lock,
    uses_shared_metastore,
)
from lakehouse.services.spark_conf import spark_settings


def launched_by_spark_submit() -> bool:
    """True when this Python runs under ``spark-submit`` (its JVM started first and handed over a gateway).

    Then ``--master`` (or spark-defaults.conf, else local[*]) decides where the job runs, not the
    configuration's ``spark.master``: ``spark-submit --master spark://... jobs/x.py --conf-file conf/local.yaml``
    must run on that cluster.
    """
    return "PYSPARK_GATEWAY_PORT" in os.environ


@contextmanager
def _jvm_launch_environment(archive: bool):
    """While the JVM starts: this process's environment without the secrets it does not use (the JVM and its
    Python workers inherit it; s3a's keys stay: the JVM signs with them), and with an empty conf folder where
    the JVM maps the class archive."""
    from lakehouse.services.daemons import S3_VARIABLES, SECRET_VARIABLES

    removed = {
        name: os.environ.pop(name) for name in SECRET_VARIABLES if name in os.environ and name not in S3_VARIABLES
    }
    try:
        with class_archive.launch_environment() if archive else nullcontext():
            yield
    finally:
        os.environ.update(removed)


def get_spark(
    config: LakehouseConfig, app_name: str | None = None, extra_conf: Mapping[str, str] | None = None
) -> SparkSession:
    """Return the active SparkSession or start one configured from ``config``.

    Under ``spark-submit`` the JVM is already running; settings that only apply at JVM start
    (jars, driver memory) then come from ``spark-defaults.conf`` written by ``make setup``.
    Declared tables that exist are registered by name (``silver.events``) in the catalog (the shared
    metastore by default, see :mod:`lakehouse.services.metastore`), and every tag as a view (``silver.events__<tag>``).
    """
    # A session started from Python launches its workers with $PYSPARK_PYTHON (default: whatever
    # `python3` is on PATH), not with spark.pyspark.python: pin them to this interpreter and its packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name or config.app_name)
    if config.spark_master and not launched_by_spark_submit():
        builder = builder.master(config.spark_master)
    already_running = SparkSession.getActiveSession() is not None  # its catalog is fixed by now
    settings = {**spark_settings(config), **(extra_conf or {})}
    starts_a_jvm = not already_running and not launched_by_spark_submit()
    archive = class_archive.archive_for_sessions() if starts_a_jvm else None
    if archive:  # the JVM maps the classes an earlier one loaded (lakehouse.services.class_archive)
        options = settings.get("spark.driver.defaultJavaOptions", "")
        settings["spark.driver.defaultJavaOptions"] = f"{options} {class_archive.java_options(archive)}".strip()
    for key, value in settings.items():
        builder = builder.config(key, value)
    if not already_running and uses_shared_metastore(config) and not prepare_metastore(config):
        with schema_creation_lock(config):  # the first session creates Hive's schema, one process at a time
            with _jvm_launch_environment(archive is not None):
                spark = builder.getOrCreate()
            if not metastore_ready(config):  # another process may have created it while this one waited
                create_schema(spark, config)
    else:
        with _jvm_launch_environment(archive is not None):
            spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if uses_shared_metastore(config):
        quiet_metastore_warnings(spark)

    from lakehouse.storage.catalog import register_existing_tables
    from lakehouse.versioning.tags import register_tag_views

    register_existing_tables(spark, config)
    register_tag_views(spark, config)
    return spark
