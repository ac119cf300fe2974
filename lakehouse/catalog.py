"""Reading tables and registering them by name (``silver.events``) in the session's catalog."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import LakehouseConfig
from lakehouse.tables import TableDeclaration, all_tables, get_table


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, path)


def register_table(spark: SparkSession, declaration: TableDeclaration, path: str) -> None:
    """Make ``layer.table`` resolve to the Delta table at ``path`` in SQL.

    An entry pointing elsewhere (another warehouse used earlier in the same session) is replaced;
    dropping a table registered with a LOCATION removes only the catalog entry, never the data.
    """
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {declaration.layer}")
    if spark.catalog.tableExists(declaration.name):
        location = spark.sql(f"DESCRIBE DETAIL {declaration.name}").first()["location"]
        if location.removeprefix("file:").rstrip("/") == path.removeprefix("file:").rstrip("/"):
            return
        spark.sql(f"DROP TABLE {declaration.name}")
    spark.sql(f"CREATE TABLE {declaration.name} USING DELTA LOCATION '{path}'")


def register_existing_tables(spark: SparkSession, config: LakehouseConfig) -> list[str]:
    """Register every declared table that exists on storage; return their names."""
    registered = []
    for declaration in all_tables():
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
    """Read a declared table, at its latest version or as it was at ``version`` / ``timestamp``."""
    if version is not None and timestamp is not None:
        raise ValueError("give a version or a timestamp, not both")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    if timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp)
    return reader.load(config.table_path(get_table(name).name))


def current_version(spark: SparkSession, path: str) -> int | None:
    """The latest committed version of the Delta table at ``path``; ``None`` when there is none."""
    if not table_exists(spark, path):
        return None
    return DeltaTable.forPath(spark, path).history(1).select("version").first()[0]
