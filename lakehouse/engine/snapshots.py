"""Build a database table's silver current state (``silver.<table>``) and history (``silver.<table>_history``)
from its snapshots in bronze: each new snapshot, oldest first, pseudonymised, is MERGEd into both.

Rows with a null or repeated key go to ``silver.<table>_quarantine``. A key whose row this snapshot could
not use (a value that did not type when it landed, kept in bronze's quarantine; or a repeated key) is
*held*: its current row and open history version stay as they were, rather than being deleted.
"""

from __future__ import annotations

import calendar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.engine.job import JobContext, JobResult
from lakehouse.engine.scd import last_applied, merge_current_state, merge_history
from lakehouse.project.config import LakehouseConfig
from lakehouse.project.sources import DatabaseSource, SourceTable
from lakehouse.project.steps import Step
from lakehouse.storage import quarantine
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.publish import publish_rows
from lakehouse.storage.writer import Commit, Transaction, WriteResult, ensure_table
from lakehouse.transforms.privacy import pseudonym_key, pseudonymise
from lakehouse.transforms.snapshot_changes import (
    DUPLICATE_KEY,
    Snapshot,
    landed_snapshots,
    mark_key_problems,
    snapshot_rows,
)


def _transaction(step: str, table: SourceTable, snapshot: Snapshot) -> Transaction:
    # Snapshots are applied oldest first, so their time is an increasing transaction version: a replay of
    # an applied snapshot (after a crash between the commits below) is skipped table by table.
    millis = calendar.timegm(snapshot.taken_at.timetuple()) * 1000 + snapshot.taken_at.microsecond // 1000
    return Transaction(app_id=f"{step}:{table.silver_name}", version=millis)


def untyped_keys(
    spark: SparkSession, config: LakehouseConfig, table: SourceTable, snapshot: Snapshot, key: bytes
) -> DataFrame | None:
    """The keys (as silver names them) of the rows of ``snapshot`` that landed in bronze's quarantine with
    a value that did not type: their fields are kept as text in JSON there."""
    bronze = config.table(table.bronze_name)
    path = config.table_path(bronze.quarantine.name)
    if current_version(spark, path) is None:
        return None
    columns = bronze.source_schema
    as_text = T.StructType([T.StructField(f.name, T.StringType()) for f in columns.fields])
    bad = (
        spark.read.format("delta")
        .load(path)
        .where(F.col("source").endswith(f"@{snapshot.snapshot_id}") & F.col("reason").startswith("bad_value:"))
        .select(F.from_json("record", as_text).alias("row"))
    )
    typed = bad.select(*[F.col(f"row.{k}").try_cast(columns[k].dataType).alias(k) for k in table.keys]).dropna()
    private = [column for column in table.private if column.name in table.keys]
    return pseudonymise(typed, private, key) if private else typed


def apply_snapshot(
    ctx: JobContext, table: SourceTable, bronze: DataFrame, bronze_version: int, snapshot: Snapshot, key: bytes
) -> dict:
    """Pseudonymise one snapshot, quarantine its key problems, gate it, MERGE it into current state then
    history. Returns the counts and the write results."""
    config = ctx.config
    current, history = config.table(table.silver_name), config.table(table.history_name)
    columns = config.table(table.bronze_name).source_schema.names
    rows = pseudonymise(snapshot_rows(bronze, snapshot, columns), table.private, key)
    marked = mark_key_problems(rows, current.keys).persist()
    rows_in = marked.count()
    held = marked.where(F.col(quarantine.REASON) == DUPLICATE_KEY).select(*current.keys)
    untyped = untyped_keys(ctx.spark, config, table, snapshot, key)
    if untyped is not None:
        held = held.unionByName(untyped)
    commit = Commit(
        ctx.job_name, ctx.run_id, {table.bronze_name: bronze_version}, _transaction(ctx.job_name, table, snapshot)
    )
    history_writes: list[WriteResult] = []

    def merge_both(spark, config, declaration, kept, commit):
        # Current state first: if the run dies before the history commit, the snapshot is still pending
        # (history says where we are), and merging it into current state again changes nothing.
        written = merge_current_state(spark, config, declaration, kept, commit, held=held)
        history_writes.append(
            merge_history(spark, config, history, kept, snapshot.snapshot_id, snapshot.taken_at, commit, held=held)
        )
        return written

    try:
        source = f"{table.bronze_name}@{bronze_version}:{snapshot.snapshot_id}"
        result = publish_rows(
            ctx.spark,
            config,
            current,
            quarantine.accepted(marked),
            commit,
            mode=merge_both,
            rejected=quarantine.quarantine_rows(marked, "snapshot_keys", source, ctx.run_id),
        )
    finally:
        marked.unpersist()
    return {
        "rows": rows_in,
        "quarantined": result.rows_quarantined,
        "writes": [w for w in (result.write, result.quarantine, *history_writes) if w is not None],
    }


def build_snapshot_silver(ctx: JobContext, step: Step) -> JobResult:
    """Apply every snapshot of the step's table that silver has not seen yet, oldest first."""
    spark, config = ctx.spark, ctx.config
    source: DatabaseSource = config.project.source(step.source)
    table = next(t for t in source.tables if t.silver_name == step.name)
    key = pseudonym_key(config)
    result = JobResult(ctx.job_name, ctx.run_id)
    bronze_version = current_version(spark, config.table_path(table.bronze_name))
    if bronze_version is None:
        raise RuntimeError(f"{table.bronze_name} does not exist yet: run ingest_{source.name} first")
    bronze = read_table(spark, config, table.bronze_name, version=bronze_version)
    ensure_table(spark, config, config.table(table.silver_name).quarantine)  # queryable even while empty
    done_until = last_applied(spark, config, config.table(table.history_name))
    snapshots = landed_snapshots(bronze)
    pending = [s for s in snapshots if done_until is None or s.taken_at > done_until]
    rows = quarantined = 0
    for snapshot in pending:
        outcome = apply_snapshot(ctx, table, bronze, bronze_version, snapshot, key)
        result.writes.extend(outcome["writes"])
        rows += outcome["rows"]
        quarantined += outcome["quarantined"]
        print(
            f"  {table.silver_name}: applied snapshot {snapshot.snapshot_id} of {snapshot.taken_at:%Y-%m-%d %H:%M:%S}: "
            f"{outcome['rows']:,} rows, {outcome['quarantined']} quarantined"
        )
    result.counts.update(
        {
            "snapshots applied": len(pending),
            "snapshots already applied or older": len(snapshots) - len(pending),
            "snapshot rows in": rows,
            "rows quarantined": quarantined,
        }
    )
    return result
