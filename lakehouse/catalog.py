"""Reading tables and registering them by name (``silver.events``) in the session's catalog."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import LakehouseConfig
from lakehouse.tables import TableDeclaration, all_tables, get_table


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, path)


# Where this process registered each name (the session catalog does not survive the process).
_registered_locations: dict[str, str] = {}


def register_table(spark: SparkSession, declaration: TableDeclaration, path: str) -> None:
    """Make ``layer.table`` resolve to the Delta table at ``path`` in SQL.

    An entry pointing elsewhere (another warehouse used earlier in the same session) is replaced;
    dropping a table registered with a LOCATION removes only the catalog entry, never the data.
    """
    name = declaration.name
    session_catalog, identifier = _catalog_entry(spark, declaration)
    # The session catalog's own calls look at metadata only; Spark's public ones would open the
    # Delta table, and fail when its folder is gone.
    exists = session_catalog.tableExists(identifier)
    if exists and _registered_locations.get(name) == path:
        return
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {declaration.layer}")
    if exists:
        session_catalog.dropTable(identifier, True, False)  # the entry only: the data stays
    spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{path}'")
    _registered_locations[name] = path


def _catalog_entry(spark: SparkSession, declaration: TableDeclaration):
    jvm = spark._jvm
    identifier = jvm.org.apache.spark.sql.catalyst.TableIdentifier(
        declaration.short_name, jvm.scala.Option.apply(declaration.layer)
    )
    return spark._jsparkSession.sessionState().catalog(), identifier


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
    tag: str | None = None,
) -> DataFrame:
    """Read a declared table, at its latest version or as it was at ``version``, ``timestamp`` or ``tag``."""
    if sum(x is not None for x in (version, timestamp, tag)) > 1:
        raise ValueError("give one of version, timestamp or tag")
    if tag is not None:
        from lakehouse.versioning.tags import resolve_tag

        version = resolve_tag(spark, config, name, tag)
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
