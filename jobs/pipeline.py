"""The main job: stage the scenario's sources where missing (logs, photos, the real access log, PostgreSQL databases), run every table's job in dependency order in one SparkSession, feed the gold table to a PyTorch DataLoader, and print what was built."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone

from lakehouse.job import JobContext, JobResult, exit_with, job_main, run_job
from lakehouse.loaders.petastorm_loader import petastorm_dataloader
from lakehouse.pipeline import load_job, pipeline_job_names
from lakehouse.publish import quality_root
from lakehouse.quality.gate import data_docs_index
from lakehouse.report import format_statuses, quality_summary, table_statuses
from lakehouse.scenario.sources import stage_sources

JOB_NAME = "pipeline"
TRAINING_TABLE = "gold.photo_popularity_training"
LOADER_COLUMNS = (
    "photo_id", "upload_hour", "predicted_class", "prediction_confidence", "author_followers",
    "author_logins_before", "author_uploads_before", "author_likes_received_before", "author_likes_received_7d", "likes_24h",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=7, help="days of scenario to generate into an empty landing folder")
    parser.add_argument("--batch-size", type=int, default=256, help="DataLoader batch size for the loader check")
    parser.add_argument("--skip-loader", action="store_true", help="do not read the gold table through Petastorm")


def check_loader(ctx: JobContext, batch_size: int) -> dict[str, int]:
    """Read the gold table through Petastorm into tensors once; count rows and batches."""
    rows = batches = 0
    with petastorm_dataloader(
        ctx.spark, ctx.config, TRAINING_TABLE, columns=LOADER_COLUMNS, batch_size=batch_size
    ) as loader:
        for batch in loader:
            batches += 1
            rows += len(batch["photo_id"])
            if batches == 1:
                shapes = ", ".join(f"{name}{tuple(t.shape)}:{t.dtype}" for name, t in batch.items())
                print(f"first batch from {TRAINING_TABLE}: {shapes}")
    return {"loader rows": rows, "loader batches": batches}


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    started = time.monotonic()
    started_at = datetime.now(timezone.utc).replace(tzinfo=None)
    result = JobResult(JOB_NAME, ctx.run_id)
    for line in stage_sources(ctx.config, args.days).describe():
        print(line)
    for name in pipeline_job_names():
        job = load_job(name)
        step = run_job(name, job.run, argparse.Namespace(), spark=ctx.spark, config=ctx.config)
        print(step.summary())
        result.writes.extend(step.writes)
    if not args.skip_loader:
        result.counts.update(check_loader(ctx, args.batch_size))
    print()
    print(format_statuses(table_statuses(ctx.spark, ctx.config)))
    print("\nquality gates of this run (all runs: SELECT * FROM quality.results):")
    print(quality_summary(ctx.spark, ctx.config, started_at))
    print(f"\nwarehouse: {ctx.config.warehouse}\nlanding:   {ctx.config.landing}")
    if ctx.config.quality.enabled:
        print(f"data docs: {data_docs_index(quality_root(ctx.config))} (rendered when the run ends)")
    result.seconds = time.monotonic() - started
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
