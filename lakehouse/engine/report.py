"""What the lakehouse holds: each declared table with its version, row count and location."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from lakehouse.project.config import LakehouseConfig
from lakehouse.storage.catalog import current_version


@dataclass(frozen=True)
class TableStatus:
    name: str
    version: int | None
    rows: int | None
    path: str


def table_statuses(spark: SparkSession, config: LakehouseConfig) -> list[TableStatus]:
    """The current version and row count of every declared table (``None`` where not built yet)."""
    statuses = []
    for declaration in config.tables():
        path = config.table_path(declaration.name)
        version = current_version(spark, path)
        rows = spark.read.format("delta").load(path).count() if version is not None else None
        statuses.append(TableStatus(declaration.name, version, rows, path))
    return statuses


def format_statuses(statuses: list[TableStatus]) -> str:
    """A fixed-width text table of :func:`table_statuses`."""
    width = max([len("table"), *(len(s.name) for s in statuses)])
    header = f"{'table':<{width}} {'version':>7} {'rows':>10}  location"
    lines = [header, "-" * len(header)]
    for status in statuses:
        version = "-" if status.version is None else str(status.version)
        rows = "-" if status.rows is None else f"{status.rows:,}"
        lines.append(f"{status.name:<{width}} {version:>7} {rows:>10}  {status.path}")
    return "\n".join(lines)


def quality_summary(spark: SparkSession, config: LakehouseConfig, since) -> str:
    """The ``quality.results`` rows written since ``since`` (a datetime), as a fixed-width table."""
    from pyspark.sql import functions as F

    path = config.table_path("quality.results")
    if current_version(spark, path) is None:
        return "quality.results: no validations yet"
    rows = (
        spark.read.format("delta")
        .load(path)
        .where(F.col("checked_at") >= F.lit(since))
        .groupBy("table_name", "rule", "action", "outcome")
        .agg(F.sum("rows_failing").alias("rows_failing"), F.count(F.lit(1)).alias("runs"))
        .orderBy("table_name", "rule")
        .collect()
    )
    table_width = max([len("table"), *(len(row.table_name) for row in rows)])
    rule_width = max([len("rule"), *(len(row.rule) for row in rows)])
    header = f"{'table':<{table_width}} {'rule':<{rule_width}} {'action':<10} {'outcome':<11} {'failing rows':>12}"
    lines = [header, "-" * len(header)]
    for row in rows:
        failing = "-" if row.rows_failing is None else f"{row.rows_failing:,}"
        lines.append(
            f"{row.table_name:<{table_width}} {row.rule:<{rule_width}} {row.action:<10} {row.outcome:<11} {failing:>12}"
        )
    return "\n".join(lines)


def format_declarations(config: LakehouseConfig) -> str:
    """Every table the project declares: layer, the step writing it, where it is defined, keys, inputs
    (read off the declarations: no Spark)."""
    root = config.project.root
    rows = []
    for declaration in config.tables():
        where = declaration.defined_in
        defined = (
            str(where.relative_to(root))
            if where and where.is_relative_to(root)
            else ("platform" if where is None else str(where))
        )
        rows.append(
            (
                declaration.name,
                declaration.step or "-",
                defined,
                ", ".join(declaration.keys) or "-",
                ", ".join(declaration.upstreams) or "-",
            )
        )
    header = ("table", "step", "defined in", "keys", "reads")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header[:4], widths)) + "  " + header[4]]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    return "\n".join(lines)
