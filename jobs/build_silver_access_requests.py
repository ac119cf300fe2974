"""Build silver.access_requests from bronze.access_logs: one typed row per request, client addresses and users pseudonymised (keyed hashes); unparsed lines, requests without a status and repeats go to silver.access_requests_quarantine with the reason."""

from __future__ import annotations

import argparse
import sys

from lakehouse.incremental import IncrementalBuild, run_incremental_build
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.privacy import pseudonym_key
from lakehouse.tables import get_table
from lakehouse.transforms.access_requests import accepted_requests, mark_rejects, rejected_requests, with_request_id

JOB_NAME = "build_silver_access_requests"
SOURCE = get_table("bronze.access_logs")
TARGET = get_table("silver.access_requests")
QUARANTINE = TARGET.quarantine


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    key = pseudonym_key(ctx.config)
    return run_incremental_build(ctx, IncrementalBuild(
        source=SOURCE,
        target=TARGET,
        key_column="request_id",
        source_job="ingest_access_logs",
        mark=lambda batch, published: mark_rejects(with_request_id(batch, key), published),
        accepted=lambda marked: accepted_requests(marked, key),
        rejected=lambda marked: rejected_requests(marked, rule=JOB_NAME, run_id=ctx.run_id),
    ))


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, None, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
