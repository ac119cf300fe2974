"""Land application event logs (JSON lines, gzip too) into bronze.app_events: only files new since the last run, exactly once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyspark.sql import functions as F

from lakehouse.catalog import current_version
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.streams import land_text_files
from lakehouse.tables import get_table
from lakehouse.writer import commit_context, commit_message, ensure_table, write_result

JOB_NAME = "ingest_app_events"
TARGET = get_table("bronze.app_events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-dir", help="landing folder of the log files (default: <landing>/app_events)")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    source_dir = getattr(args, "source_dir", None) or ctx.config.landing_path("app_events")
    if "://" not in source_dir and not Path(source_dir).is_dir():
        raise FileNotFoundError(f"no landing folder {source_dir}: generate logs first (`lakehouse generate`)")
    path = ensure_table(ctx.spark, ctx.config, TARGET)
    before = current_version(ctx.spark, path)
    with commit_context(ctx.spark, commit_message(ctx.job_name, ctx.run_id)):
        lines = land_text_files(
            ctx.spark,
            source_dir=source_dir,
            table_path=path,
            checkpoint=ctx.config.checkpoint_path(JOB_NAME),
            extra_columns={"ingest_time": F.current_timestamp(), "run_id": F.lit(ctx.run_id)},
        )
    result = JobResult(JOB_NAME, ctx.run_id, writes=[write_result(ctx.spark, TARGET, path, before)])
    result.counts["lines read"] = lines
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
