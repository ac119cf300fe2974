"""Build silver.events from bronze.app_events: parse, type, deduplicate on event_id, pseudonymise the user; bad and duplicate lines go to silver.events_quarantine with a reason."""

from __future__ import annotations

import argparse
import sys

from lakehouse.incremental import IncrementalBuild, run_incremental_build
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.privacy import pseudonym_key
from lakehouse.tables import get_table
from lakehouse.transforms.events import accepted_events, mark_duplicates, parse_app_events, rejected_events

JOB_NAME = "build_silver_events"
SOURCE = get_table("bronze.app_events")
TARGET = get_table("silver.events")
QUARANTINE = TARGET.quarantine


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    key = pseudonym_key(ctx.config)
    return run_incremental_build(ctx, IncrementalBuild(
        source=SOURCE,
        target=TARGET,
        key_column="event_id",
        source_job="ingest_app_events",
        mark=lambda batch, published: mark_duplicates(parse_app_events(batch), published),
        accepted=lambda marked: accepted_events(marked, key),
        rejected=lambda marked: rejected_events(marked, rule="parse_app_events", run_id=ctx.run_id),
    ))


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, None, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
