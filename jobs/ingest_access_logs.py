"""Land web server access logs (Apache/Nginx combined format, gzip and rotated files too) into bronze.access_logs: new files only, exactly once, unparseable lines rescued with the reason."""

from __future__ import annotations

import argparse
import sys

from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.sources.log_files import check_landing_folder, ingest_new_lines
from lakehouse.tables import get_table
from lakehouse.transforms.access_logs import parse_access_log_lines

JOB_NAME = "ingest_access_logs"
TARGET = get_table("bronze.access_logs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-dir", help="landing folder of the access logs (default: <landing>/access_logs)")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    source_dir = getattr(args, "source_dir", None) or ctx.config.landing_path("access_logs")
    check_landing_folder(source_dir, "copy access logs there, or run the main job (`make demo`) to stage the sample")
    return ingest_new_lines(ctx, TARGET, source_dir, transform=parse_access_log_lines, rescued_column="parse_error")


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
