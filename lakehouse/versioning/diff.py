"""What changed in a table between two versions: rows added, removed and changed, by key.

Tables with Delta's change data feed enabled are compared from the feed (only the changed rows are
read); other tables by a keyed comparison of the two snapshots; tables without keys row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.tables import TableDeclaration

CDF_META = ("_change_type", "_commit_version", "_commit_timestamp")


@dataclass
class TableDiff:
    """Counts first; the DataFrames hold the rows (``changed`` has ``before`` and ``after`` structs)."""

    table: str
    from_version: int
    to_version: int
    method: str
    added: DataFrame
    removed: DataFrame
    changed: DataFrame | None

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added.count(),
            "removed": self.removed.count(),
            "changed": self.changed.count() if self.changed is not None else 0,
        }


def _uses_change_feed(declaration: TableDeclaration) -> bool:
    return declaration.properties.get("delta.enableChangeDataFeed") == "true" and bool(declaration.keys)


def diff_versions(
    spark: SparkSession, config: LakehouseConfig, table: str, from_version: int, to_version: int
) -> TableDiff:
    """Rows added, removed and changed going from ``from_version`` to ``to_version`` (either order)."""
    declaration = config.table(table)
    path = config.table_path(declaration.name)
    if from_version == to_version:
        empty = spark.read.format("delta").option("versionAsOf", from_version).load(path).limit(0)
        return TableDiff(declaration.name, from_version, to_version, "same version", empty, empty, None)
    if _uses_change_feed(declaration) and from_version < to_version:
        return _diff_from_change_feed(spark, declaration, path, from_version, to_version)
    before = spark.read.format("delta").option("versionAsOf", from_version).load(path)
    after = spark.read.format("delta").option("versionAsOf", to_version).load(path)
    if declaration.keys:
        return _keyed_diff(declaration, before, after, from_version, to_version, "keyed comparison")
    return TableDiff(
        declaration.name,
        from_version,
        to_version,
        "row comparison",
        after.exceptAll(before),
        before.exceptAll(after),
        None,
    )


def _keyed_diff(declaration, before: DataFrame, after: DataFrame, v1: int, v2: int, method: str) -> TableDiff:
    keys = list(declaration.keys)
    values = [c for c in before.columns if c not in keys]
    old = before.select(*keys, F.struct(*before.columns).alias("before"))
    new = after.select(*keys, F.struct(*after.columns).alias("after"))
    joined = old.join(new, keys, "full_outer")
    added = joined.where(F.col("before").isNull()).select("after.*")
    removed = joined.where(F.col("after").isNull()).select("before.*")
    differs = F.lit(False)
    for column in values:
        differs = differs | ~F.col(f"before.{column}").eqNullSafe(F.col(f"after.{column}"))
    changed = joined.where(F.col("before").isNotNull() & F.col("after").isNotNull() & differs)
    return TableDiff(declaration.name, v1, v2, method, added, removed, changed.select(*keys, "before", "after"))


def _diff_from_change_feed(spark, declaration, path: str, v1: int, v2: int) -> TableDiff:
    """Net effect per key over the feed: its state before the first change and after the last."""
    keys = list(declaration.keys)
    feed = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", v1 + 1)
        .option("endingVersion", v2)
        .load(path)
    )
    data_columns = [c for c in feed.columns if c not in CDF_META]
    order = F.col("_commit_version")
    # Within one commit, a preimage/delete comes before the postimage/insert of the same key.
    step = F.when(F.col("_change_type").isin("update_preimage", "delete"), 0).otherwise(1)
    window = Window.partitionBy(*keys).orderBy(order, step)
    ranked = feed.withColumn("__first", F.row_number().over(window)).withColumn(
        "__last", F.row_number().over(Window.partitionBy(*keys).orderBy(order.desc(), step.desc()))
    )
    row = F.struct(*data_columns)
    first = ranked.where("__first = 1").select(
        *keys,
        F.col("_change_type").isin("update_preimage", "delete").alias("existed"),
        F.when(F.col("_change_type").isin("update_preimage", "delete"), row).alias("before"),
    )
    last = ranked.where("__last = 1").select(
        *keys,
        F.col("_change_type").isin("insert", "update_postimage").alias("exists"),
        F.when(F.col("_change_type").isin("insert", "update_postimage"), row).alias("after"),
    )
    net = first.join(last, keys)
    added = net.where(~F.col("existed") & F.col("exists")).select("after.*")
    removed = net.where(F.col("existed") & ~F.col("exists")).select("before.*")
    changed = net.where(F.col("existed") & F.col("exists") & (F.col("before") != F.col("after")))
    return TableDiff(
        declaration.name, v1, v2, "change data feed", added, removed, changed.select(*keys, "before", "after")
    )
