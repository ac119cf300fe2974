"""Reading tables and registering them by name (``silver.events``) in the session's catalog."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.tables import TableDeclaration
from lakehouse.storage.delta_log import latest_version


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, path)


def register_table(spark: SparkSession, declaration: TableDeclaration, path: str) -> None:
    """Make ``layer.table`` resolve to the Delta table at ``path`` in SQL.

    An entry already pointing there is kept (the shared metastore remembers it across processes); one
    pointing elsewhere (another warehouse) is replaced. Dropping a table registered with a LOCATION
    removes only the catalog entry, never the data.
    """
    session_catalog, identifier = _catalog_entry(spark, declaration)
    # The session catalog's own calls look at metadata only; Spark's public ones would open the
    # Delta table, and fail when its folder is gone.
    exists = session_catalog.tableExists(identifier)
    if exists:
        location = session_catalog.getTableMetadata(identifier).location().toString()
        if _local_form(location) == _local_form(path):
            return
    else:
        _tolerating_concurrent_creation(spark, f"CREATE DATABASE IF NOT EXISTS {declaration.layer}")
    if exists:
        session_catalog.dropTable(identifier, True, False)  # the entry only: the data stays
    _tolerating_concurrent_creation(spark, f"CREATE TABLE {declaration.name} USING DELTA LOCATION '{path}'")


def _tolerating_concurrent_creation(spark: SparkSession, statement: str) -> None:
    """Run a CREATE; another process sharing the metastore may have created the same entry meanwhile."""
    try:
        spark.sql(statement)
    except AnalysisException as exc:
        if "ALREADY_EXISTS" not in str(exc) and "AlreadyExistsException" not in str(exc):
            raise


def _local_form(location: str) -> str:
    """``file:/a/b``, ``file:///a/b/`` and ``/a/b`` are the same place."""
    if location.startswith("file:"):
        location = "/" + location.removeprefix("file:").lstrip("/")
    return location.rstrip("/")


def _catalog_entry(spark: SparkSession, declaration: TableDeclaration):
    jvm = spark._jvm
    identifier = jvm.org.apache.spark.sql.catalyst.TableIdentifier(
        declaration.short_name, jvm.scala.Option.apply(declaration.layer)
    )
    return spark._jsparkSession.sessionState().catalog(), identifier


def register_existing_tables(spark: SparkSession, config: LakehouseConfig) -> list[str]:
    """Register every table the project declares that exists on storage; return their names."""
    registered = []
    for declaration in config.tables():
        path = config.table_path(declaration.name)
        if table_exists(spark, path):
            register_table(spark, declaration, path)
            registered.append(declaration.name)
    return registered


def read_table(
    spark: SparkSession,
    config: LakehouseConfig,
    name: str,
    version: int | None = None,
    timestamp: str | None = None,
) -> DataFrame:
    """Read a declared table, at its latest version or as it was at ``version`` or ``timestamp`` (by tag:
    :func:`lakehouse.versioning.tags.read_tagged`)."""
    if version is not None and timestamp is not None:
        raise ValueError("give one of version or timestamp")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    if timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp)
    return reader.load(config.table_path(config.table(name).name))


def current_version(spark: SparkSession, path: str) -> int | None:
    """The latest committed version of the Delta table at ``path``; ``None`` when there is none."""
    if not table_exists(spark, path):
        return None
    return latest_version(spark, path)
