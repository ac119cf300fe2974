"""Build silver.events from bronze.app_events: parse, type, deduplicate on event_id; bad and duplicate lines go to silver.events_quarantine with a reason."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from pyspark.sql import DataFrame

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.privacy import pseudonym_key
from lakehouse.publish import publish_rows
from lakehouse.streams import delta_table_changes, for_each_new_batch
from lakehouse.tables import get_table
from lakehouse.transforms.events import (
    REJECT_COLUMN,
    accepted_events,
    mark_duplicates,
    parse_app_events,
    rejected_events,
)
from lakehouse.writer import Commit, Transaction, ensure_table, write_result

JOB_NAME = "build_silver_events"
SOURCE = get_table("bronze.app_events")
TARGET = get_table("silver.events")
QUARANTINE = TARGET.quarantine


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    spark, config = ctx.spark, ctx.config
    source_path = config.table_path(SOURCE.name)
    source_version = current_version(spark, source_path)
    if source_version is None:
        raise RuntimeError(f"{SOURCE.name} does not exist yet: run ingest_app_events first")
    paths = {table: ensure_table(spark, config, table) for table in (TARGET, QUARANTINE)}
    before = {table: current_version(spark, path) for table, path in paths.items()}
    outcomes: Counter = Counter()
    key = pseudonym_key(config)

    def handle_batch(batch: DataFrame, transaction: Transaction) -> None:
        published_ids = read_table(spark, config, TARGET.name).select("event_id")
        marked = mark_duplicates(parse_app_events(batch), published_ids).persist()
        try:
            by_reason = {row[REJECT_COLUMN]: row["count"] for row in marked.groupBy(REJECT_COLUMN).count().collect()}
            for reason, count in by_reason.items():
                outcomes[reason or "parsed"] += count
            result = publish_rows(
                spark,
                config,
                TARGET,
                accepted_events(marked, key),
                Commit(ctx.job_name, ctx.run_id, {SOURCE.name: source_version}, transaction),
                mode="insert_new",
                rejected=rejected_events(marked, rule="parse_app_events", run_id=ctx.run_id),
            )
            parse_rejects = sum(count for reason, count in by_reason.items() if reason is not None)
            outcomes["quarantined by expectations"] += result.rows_quarantined - parse_rejects
        finally:
            marked.unpersist()

    batches = for_each_new_batch(
        delta_table_changes(spark, source_path), config.checkpoint_path(JOB_NAME), JOB_NAME, handle_batch
    )
    result = JobResult(
        JOB_NAME,
        ctx.run_id,
        writes=[write_result(spark, table, paths[table], before[table]) for table in (TARGET, QUARANTINE)],
    )
    result.counts["bronze batches"] = batches
    result.counts.update({f"rows {outcome}": count for outcome, count in sorted(outcomes.items())})
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, None, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
