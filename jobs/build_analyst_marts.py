"""Build the analyst marts in gold: gold.daily_active_users (silver.events), gold.http_status_daily (silver.access_requests) and gold.flight_delays_monthly (silver.flights + silver.airlines), each from its inputs pinned to the version read, each published only after its audit passes."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from pyspark.sql import DataFrame

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.publish import publish_table
from lakehouse.tables import get_table
from lakehouse.transforms.marts import daily_active_users, flight_delays_monthly, http_status_daily
from lakehouse.writer import Commit

JOB_NAME = "build_analyst_marts"

# Each mart: its table, the tables its transform takes (in argument order) and the transform.
MARTS: tuple[tuple[str, tuple[str, ...], Callable[..., DataFrame]], ...] = (
    ("gold.daily_active_users", ("silver.events",), daily_active_users),
    ("gold.http_status_daily", ("silver.access_requests",), http_status_daily),
    ("gold.flight_delays_monthly", ("silver.flights", "silver.airlines"), flight_delays_monthly),
)


def input_versions(ctx: JobContext) -> dict[str, int]:
    """The current version of every mart's input; ``RuntimeError`` naming those that do not exist yet."""
    names = sorted({name for _, sources, _ in MARTS for name in sources})
    versions = {name: current_version(ctx.spark, ctx.config.table_path(name)) for name in names}
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        jobs = sorted({get_table(name).job or "?" for name in missing})
        raise RuntimeError(f"{', '.join(missing)} do not exist yet: run {', '.join(jobs)} first")
    return versions


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    versions = input_versions(ctx)
    result = JobResult(JOB_NAME, ctx.run_id)
    for table, sources, transform in MARTS:
        inputs = {name: versions[name] for name in sources}
        frames = [read_table(ctx.spark, ctx.config, name, version=version) for name, version in inputs.items()]
        commit = Commit(ctx.job_name, ctx.run_id, inputs)
        published = publish_table(ctx.spark, ctx.config, get_table(table), transform(*frames), commit)
        result.writes.append(published.write)
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, None, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
