"""Apply a database snapshot to silver with Delta MERGE: current state (type 1) and history (type 2).

The open-source counterpart of "auto CDC from snapshot": given the full rows of a source table at one
moment, :func:`merge_current_state` makes the current-state table equal to them (update what changed,
insert what is new, delete what is gone) and :func:`merge_history` closes the versions that changed or
disappeared and opens new ones. Applying the same snapshot twice changes nothing, and each commit
carries the caller's transaction so a replay after a crash is skipped by Delta itself.
"""

from __future__ import annotations

from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.tables import TableDeclaration
from lakehouse.storage import faults
from lakehouse.storage.catalog import current_version
from lakehouse.storage.delta_log import file_count
from lakehouse.storage.writer import (
    Commit,
    WriteResult,
    append_rows,
    check_schema,
    commit_context,
    ensure_table,
    write_result,
)
from lakehouse.transforms.snapshot_changes import MERGE_KEY_PREFIX, SNAPSHOT_STAMPS, history_merge_source, values_differ

HISTORY_STAMPS = ("valid_from", "valid_to", "is_current", "deleted", "_snapshot_id")


def value_columns(declaration: TableDeclaration, stamps: tuple[str, ...]) -> list[str]:
    """The declared columns that are neither keys nor stamps: a change in any of them is a new version."""
    return [c for c in declaration.schema.names if c not in declaration.keys and c not in stamps]


def _is_empty(spark: SparkSession, path: str) -> bool:
    # No data file, no row. (A file of no rows counts as not empty: the MERGE that follows is then correct too.)
    return file_count(spark, path) == 0


HELD = "__held"  # a merge source row that only holds its key in place (its snapshot row was unusable)


def with_held_keys(rows: DataFrame, held: DataFrame | None, key_columns: list[str]) -> DataFrame:
    """``rows`` marked ``__held = false``, plus one ``__held = true`` row (other columns null) per key of
    ``held`` (``key_columns``) that ``rows`` does not have."""
    marked = rows.withColumn(HELD, F.lit(False))
    if held is None:
        return marked
    extra = held.select(*key_columns).distinct().join(rows.select(*key_columns), key_columns, "left_anti")
    return marked.unionByName(extra.withColumn(HELD, F.lit(True)), allowMissingColumns=True)


def merge_current_state(
    spark: SparkSession,
    config: LakehouseConfig,
    declaration: TableDeclaration,
    rows: DataFrame,
    commit: Commit,
    held: DataFrame | None = None,
) -> WriteResult:
    """Make the table hold exactly ``rows`` (one per key): changed rows updated, new inserted, missing deleted.

    An unchanged row keeps its ``_snapshot_id``/``_snapshot_time``: they name the snapshot that last changed it.
    Keys in ``held`` (the keys of rows this snapshot could not use: a value that does not type, a repeated
    key) keep their current row: neither updated nor deleted.
    """
    path = ensure_table(spark, config, declaration)
    if _is_empty(spark, path):  # the first snapshot: nothing to match against
        return append_rows(spark, config, declaration, rows, commit)
    before = current_version(spark, path)
    rows = with_held_keys(check_schema(rows, declaration), held, list(declaration.keys))
    keys_match = " AND ".join(f"t.{k} = s.{k}" for k in declaration.keys)
    changed = values_differ("t", "s", value_columns(declaration, SNAPSHOT_STAMPS))
    columns = {c: F.col(f"s.{c}") for c in declaration.schema.names}
    with commit_context(spark, commit):
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(rows.alias("s"), keys_match)
            .whenMatchedUpdate(condition=~F.col(f"s.{HELD}") & changed, set=columns)
            .whenNotMatchedInsert(condition=~F.col(f"s.{HELD}"), values=columns)
            .whenNotMatchedBySourceDelete()
            .execute()
        )
    faults.after_commit(declaration.name)
    return write_result(spark, declaration, path, before)


def merge_history(
    spark: SparkSession,
    config: LakehouseConfig,
    declaration: TableDeclaration,
    rows: DataFrame,
    snapshot_id: str,
    taken_at: datetime,
    commit: Commit,
    held: DataFrame | None = None,
) -> WriteResult:
    """Apply one snapshot's ``rows`` (source columns, keyed) to a type-2 history table.

    Versions whose values changed get ``valid_to = taken_at``; keys absent from the snapshot get the
    same and ``deleted = true``; new and changed rows open versions valid from ``taken_at``. Keys in
    ``held`` keep their current version open. Snapshots must be applied oldest first (:func:`last_applied`
    says where the table is).
    """
    path = ensure_table(spark, config, declaration)
    keys = tuple(k for k in declaration.keys if k != "valid_from")
    values = value_columns(declaration, HISTORY_STAMPS)
    source_columns = [*keys, *values]
    snapshot = rows.select(*source_columns)
    moment = F.lit(taken_at).cast("timestamp")
    opened = {
        "valid_from": moment,
        "valid_to": F.lit(None).cast("timestamp"),
        "is_current": F.lit(True),
        "deleted": F.lit(False),
        "_snapshot_id": F.lit(snapshot_id),
    }
    if _is_empty(spark, path):  # the first snapshot: every row opens a version
        first_versions = snapshot.select("*", *[c.alias(n) for n, c in opened.items()])
        return append_rows(spark, config, declaration, first_versions, commit)
    before = current_version(spark, path)
    table = DeltaTable.forPath(spark, path)
    current_versions = table.toDF().where("is_current").select(*source_columns)
    source = history_merge_source(snapshot, current_versions, keys, values).withColumn(HELD, F.lit(False))
    if held is not None:
        kept = held.select(*[F.col(k).alias(f"{MERGE_KEY_PREFIX}{k}") for k in keys]).distinct()
        source = source.unionByName(kept.withColumn(HELD, F.lit(True)), allowMissingColumns=True)
    matches = " AND ".join(f"t.{k} = s.{MERGE_KEY_PREFIX}{k}" for k in keys) + " AND t.is_current"
    closed = {"valid_to": moment, "is_current": F.lit(False)}
    live = ~F.col(f"s.{HELD}")
    with commit_context(spark, commit):
        (
            table.alias("t")
            .merge(source.alias("s"), matches)
            .whenMatchedUpdate(
                condition=live & values_differ("t", "s", values), set={**closed, "deleted": F.lit(False)}
            )
            .whenNotMatchedInsert(condition=live, values={**{c: F.col(f"s.{c}") for c in source_columns}, **opened})
            .whenNotMatchedBySourceUpdate(condition="t.is_current", set={**closed, "deleted": F.lit(True)})
            .execute()
        )
    faults.after_commit(declaration.name)
    return write_result(spark, declaration, path, before)


def last_applied(spark: SparkSession, config: LakehouseConfig, declaration: TableDeclaration) -> datetime | None:
    """Time of the newest snapshot applied to a history table (every applied snapshot opened or closed a
    version, because bronze lands a snapshot only when it differs from the one before); None if none."""
    path = config.table_path(declaration.name)
    if current_version(spark, path) is None:
        return None
    row = (
        spark.read.format("delta")
        .load(path)
        .select(F.greatest(F.max("valid_from"), F.max("valid_to")).alias("latest"))
        .first()
    )
    return row.latest if row else None
