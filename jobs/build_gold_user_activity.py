"""Build gold.user_activity_daily from silver.events (pinned to the version read): per user and day, counts of each event type; published only after its audit passes."""

from __future__ import annotations

import argparse
import sys

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.publish import publish_table
from lakehouse.tables import get_table
from lakehouse.transforms.activity import user_activity_daily
from lakehouse.writer import Commit

JOB_NAME = "build_gold_user_activity"
SOURCE = get_table("silver.events")
TARGET = get_table("gold.user_activity_daily")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    source_version = current_version(ctx.spark, ctx.config.table_path(SOURCE.name))
    if source_version is None:
        raise RuntimeError(f"{SOURCE.name} does not exist yet: run build_silver_events first")
    events = read_table(ctx.spark, ctx.config, SOURCE.name, version=source_version)
    commit = Commit(ctx.job_name, ctx.run_id, {SOURCE.name: source_version})
    published = publish_table(ctx.spark, ctx.config, TARGET, user_activity_daily(events), commit)
    return JobResult(JOB_NAME, ctx.run_id, writes=[published.write])


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, None, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
