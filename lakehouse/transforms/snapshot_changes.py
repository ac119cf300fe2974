"""bronze snapshots -> silver current state and history: which snapshots are new, which keys are bad,
and which rows changed. Pure DataFrame functions; the MERGEs that apply them are in :mod:`lakehouse.engine.scd`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.storage import quarantine

DUPLICATE_KEY = "duplicate_key"
SNAPSHOT_STAMPS = ("_snapshot_id", "_snapshot_time")
MERGE_KEY_PREFIX = "__merge_"


@dataclass(frozen=True, order=True)
class Snapshot:
    """One landed snapshot of a source table (the same content landed twice is two snapshots)."""

    taken_at: datetime
    snapshot_id: str


def landed_snapshots(bronze: DataFrame) -> list[Snapshot]:
    """Every snapshot in a ``bronze.<db>_<table>`` DataFrame, oldest first."""
    rows = bronze.select(*SNAPSHOT_STAMPS).distinct().collect()
    return sorted(Snapshot(row._snapshot_time, row._snapshot_id) for row in rows)


def snapshot_rows(bronze: DataFrame, snapshot: Snapshot, columns: list[str]) -> DataFrame:
    """The rows of one snapshot: the source table's ``columns`` plus its id and time."""
    return bronze.where(
        (F.col("_snapshot_id") == snapshot.snapshot_id) & (F.col("_snapshot_time") == F.lit(snapshot.taken_at))
    ).select(*columns, *SNAPSHOT_STAMPS)


def mark_key_problems(rows: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Add ``_reject_reason``: ``null_key:<column>`` for a row missing part of its key, ``duplicate_key`` for
    every row of a key that appears more than once in the snapshot (no copy is more right than another)."""
    null_reason = reduce(
        lambda reason, key: reason.when(F.col(key).isNull(), F.lit(f"null_key:{key}")),
        keys[1:],
        F.when(F.col(keys[0]).isNull(), F.lit(f"null_key:{keys[0]}")),
    )
    copies = F.count(F.lit(1)).over(Window.partitionBy(*keys))
    return rows.withColumn(quarantine.REASON, F.coalesce(null_reason, F.when(copies > 1, F.lit(DUPLICATE_KEY))))


def values_differ(left: str, right: str, columns: list[str]) -> Column:
    """True where any of ``columns`` differs between the aliases ``left`` and ``right`` (nulls equal)."""
    if not columns:
        return F.lit(False)
    same = reduce(lambda a, b: a & b, [F.col(f"{left}.{c}").eqNullSafe(F.col(f"{right}.{c}")) for c in columns])
    return ~same


def history_merge_source(
    snapshot: DataFrame, current_versions: DataFrame, keys: tuple[str, ...], value_columns: list[str]
) -> DataFrame:
    """The source of the type-2 MERGE for one snapshot.

    Every snapshot row comes once with its key in ``__merge_<key>`` columns (it matches the key's
    current version: closed when its values changed, inserted when the key is new; current versions
    no row matches were deleted). Changed rows come a second time with null merge keys, which match
    nothing and so insert the new version.
    """
    merge_keys = [F.col(f"s.{k}").alias(f"{MERGE_KEY_PREFIX}{k}") for k in keys]
    joined = snapshot.alias("s").join(current_versions.alias("c"), [F.col(f"s.{k}") == F.col(f"c.{k}") for k in keys])
    changed = joined.where(values_differ("s", "c", value_columns)).select("s.*")
    null_keys = [F.lit(None).cast(snapshot.schema[k].dataType).alias(f"{MERGE_KEY_PREFIX}{k}") for k in keys]
    return snapshot.alias("s").select("s.*", *merge_keys).unionByName(changed.select("*", *null_keys))
