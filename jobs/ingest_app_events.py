"""Land application event logs (JSON lines, gzip too) into bronze.app_events: only files new since the last run, exactly once."""

from __future__ import annotations

import argparse
import sys

from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.sources.log_files import check_landing_folder, ingest_new_lines
from lakehouse.tables import get_table

JOB_NAME = "ingest_app_events"
TARGET = get_table("bronze.app_events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-dir", help="landing folder of the log files (default: <landing>/app_events)")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    source_dir = getattr(args, "source_dir", None) or ctx.config.landing_path("app_events")
    check_landing_folder(source_dir, "generate logs first (`lakehouse generate`)")
    return ingest_new_lines(ctx, TARGET, source_dir)


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
