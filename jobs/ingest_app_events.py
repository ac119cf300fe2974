"""Land application event logs (JSON lines, gzip too) into bronze.app_events: only files new since the last run, exactly once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.catalog import current_version
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.publish import publish_rows
from lakehouse.streams import for_each_new_batch, text_file_lines
from lakehouse.tables import get_table
from lakehouse.writer import Commit, Transaction, ensure_table, write_result

JOB_NAME = "ingest_app_events"
TARGET = get_table("bronze.app_events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-dir", help="landing folder of the log files (default: <landing>/app_events)")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    spark, config = ctx.spark, ctx.config
    source_dir = getattr(args, "source_dir", None) or config.landing_path("app_events")
    if "://" not in source_dir and not Path(source_dir).is_dir():
        raise FileNotFoundError(f"no landing folder {source_dir}: generate logs first (`lakehouse generate`)")
    path = ensure_table(spark, config, TARGET)
    before = current_version(spark, path)
    lines_read = 0

    def land(batch: DataFrame, transaction: Transaction) -> None:
        nonlocal lines_read
        rows = batch.select(
            "*", F.current_timestamp().alias("ingest_time"), F.lit(ctx.run_id).alias("run_id")
        )
        result = publish_rows(spark, config, TARGET, rows, Commit(ctx.job_name, ctx.run_id, transaction=transaction))
        lines_read += result.rows_in

    batches = for_each_new_batch(text_file_lines(spark, source_dir), config.checkpoint_path(JOB_NAME), JOB_NAME, land)
    result = JobResult(JOB_NAME, ctx.run_id, writes=[write_result(spark, TARGET, path, before)])
    result.counts.update({"file batches": batches, "lines read": lines_read})
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
