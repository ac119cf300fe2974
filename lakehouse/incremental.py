"""The shape of an incremental silver build from a bronze table, shared by the jobs that have it.

Read what bronze added since the last run (Delta change stream + checkpoint, one Delta transaction per
micro-batch), mark each batch's rows against the keys already published (``reject_reason`` null for a
good row, the reason otherwise), publish the good rows with MERGE on the key and the rest to the
quarantine table, and count every row by outcome.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult
from lakehouse.publish import publish_rows
from lakehouse.streams import delta_table_changes, for_each_new_batch
from lakehouse.tables import TableDeclaration
from lakehouse.writer import Commit, Transaction, ensure_table, write_result

REJECT_COLUMN = "reject_reason"


@dataclass(frozen=True)
class IncrementalBuild:
    """One bronze -> silver build: which tables, the key, and the three functions that do the work."""

    source: TableDeclaration
    target: TableDeclaration
    key_column: str                                          # dedup key, already published ones are repeats
    source_job: str                                          # named in the error when the source is missing
    mark: Callable[[DataFrame, DataFrame], DataFrame]        # (bronze batch, published keys) -> rows + reject_reason
    accepted: Callable[[DataFrame], DataFrame]               # marked -> rows of the target table
    rejected: Callable[[DataFrame], DataFrame]               # marked -> rows of the quarantine table


def run_incremental_build(ctx: JobContext, build: IncrementalBuild) -> JobResult:
    """Process every bronze row not processed before; return the writes and the count of rows per outcome."""
    spark, config = ctx.spark, ctx.config
    source_path = config.table_path(build.source.name)
    source_version = current_version(spark, source_path)
    if source_version is None:
        raise RuntimeError(f"{build.source.name} does not exist yet: run {build.source_job} first")
    tables = (build.target, build.target.quarantine)
    paths = {table: ensure_table(spark, config, table) for table in tables}
    before = {table: current_version(spark, path) for table, path in paths.items()}
    outcomes: Counter = Counter()

    def handle_batch(batch: DataFrame, transaction: Transaction) -> None:
        published_keys = read_table(spark, config, build.target.name).select(build.key_column)
        marked = build.mark(batch, published_keys).persist()
        try:
            by_reason = {row[REJECT_COLUMN]: row["count"] for row in marked.groupBy(REJECT_COLUMN).count().collect()}
            for reason, count in by_reason.items():
                outcomes[reason or "parsed"] += count
            result = publish_rows(
                spark,
                config,
                build.target,
                build.accepted(marked),
                Commit(ctx.job_name, ctx.run_id, {build.source.name: source_version}, transaction),
                mode="insert_new",
                rejected=build.rejected(marked),
            )
            rejects = sum(count for reason, count in by_reason.items() if reason is not None)
            outcomes["quarantined by expectations"] += result.rows_quarantined - rejects
        finally:
            marked.unpersist()

    batches = for_each_new_batch(
        delta_table_changes(spark, source_path), config.checkpoint_path(ctx.job_name), ctx.job_name, handle_batch
    )
    result = JobResult(
        ctx.job_name, ctx.run_id, writes=[write_result(spark, table, paths[table], before[table]) for table in tables]
    )
    result.counts["bronze batches"] = batches
    result.counts.update({f"rows {outcome}": count for outcome, count in sorted(outcomes.items())})
    return result
