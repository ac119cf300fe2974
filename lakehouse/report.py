"""What the lakehouse holds: each declared table with its version, row count and location."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from lakehouse.catalog import current_version
from lakehouse.config import LakehouseConfig
from lakehouse.tables import all_tables


@dataclass(frozen=True)
class TableStatus:
    name: str
    version: int | None
    rows: int | None
    path: str


def table_statuses(spark: SparkSession, config: LakehouseConfig) -> list[TableStatus]:
    """The current version and row count of every declared table (``None`` where not built yet)."""
    statuses = []
    for declaration in all_tables():
        path = config.table_path(declaration.name)
        version = current_version(spark, path)
        rows = spark.read.format("delta").load(path).count() if version is not None else None
        statuses.append(TableStatus(declaration.name, version, rows, path))
    return statuses


def format_statuses(statuses: list[TableStatus]) -> str:
    """A fixed-width text table of :func:`table_statuses`."""
    header = f"{'table':<30} {'version':>7} {'rows':>10}  location"
    lines = [header, "-" * len(header)]
    for status in statuses:
        version = "-" if status.version is None else str(status.version)
        rows = "-" if status.rows is None else f"{status.rows:,}"
        lines.append(f"{status.name:<30} {version:>7} {rows:>10}  {status.path}")
    return "\n".join(lines)
