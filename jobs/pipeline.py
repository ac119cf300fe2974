"""The main job: stage the scenario's sources where missing (logs, photos, the real access log, PostgreSQL
databases), run every step of the project's pipeline in dependency order in one SparkSession (skipping those
whose inputs, code and configuration are unchanged: lakehouse.engine.orchestration), train the photo-popularity model
on the gold table through a PyTorch DataLoader, and print what was built."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from lakehouse.engine.job import JobContext, JobResult, exit_with, job_main, run_job
from lakehouse.engine.orchestration import failures, run_pipeline
from lakehouse.engine.report import format_statuses, quality_summary, table_statuses
from lakehouse.project.jobs import load_job
from lakehouse.quality.gate import data_docs_index
from lakehouse.scenario.sources import stage_sources
from lakehouse.storage.publish import quality_root

JOB_NAME = "pipeline"
TRAINING_JOB = "train_popularity"
TRAINING_TABLE = "gold.photo_popularity_training"  # what the training job reads
train_popularity = load_job(Path(__file__).resolve().parent.parent, TRAINING_JOB)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=7, help="days of scenario to generate into an empty landing folder")
    parser.add_argument(
        "--training-loader",
        choices=train_popularity.LOADERS,
        default="petastorm",
        help="the loader the training step reads gold through",
    )
    parser.add_argument("--skip-training", action="store_true", help="build the tables only")
    parser.add_argument(
        "--select",
        nargs="+",
        metavar="TABLE",
        default=None,
        help="build only these tables (or steps) and what they need; the model is trained only "
        f"when {TRAINING_TABLE} is among them",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run every step, even those whose inputs, code and configuration are unchanged",
    )


def training_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """The training job's own defaults, with the loader this run asked for."""
    parser = argparse.ArgumentParser()
    train_popularity.add_arguments(parser)
    return parser.parse_args(["--loader", args.training_loader])


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    started = time.monotonic()
    started_at = datetime.now(timezone.utc).replace(tzinfo=None)
    result = JobResult(JOB_NAME, ctx.run_id)
    for line in stage_sources(ctx.config, args.days).describe():
        print(line)
    outcomes = run_pipeline(ctx.spark, ctx.config, selected=args.select, force=args.force)
    result.data_docs_rendered = True  # by run_pipeline, after its last step: not again by this job
    result.writes.extend(write for outcome in outcomes for write in outcome.writes)
    failed = failures(outcomes)
    if failed:
        raise RuntimeError(failed)
    built = {table for outcome in outcomes for table in outcome.step.outputs}
    if not args.skip_training and TRAINING_TABLE not in built:
        print(f"training skipped: {TRAINING_TABLE} is not among the selected tables")
    elif not args.skip_training:
        step = run_job(TRAINING_JOB, train_popularity.run, training_arguments(args), spark=ctx.spark, config=ctx.config)
        print(step.summary())
        result.counts.update(step.counts)
    print()
    print(format_statuses(table_statuses(ctx.spark, ctx.config)))
    print("\nquality gates of this run (all runs: SELECT * FROM quality.results):")
    print(quality_summary(ctx.spark, ctx.config, started_at))
    print(f"\nwarehouse: {ctx.config.warehouse}\nlanding:   {ctx.config.landing}")
    if ctx.config.quality.enabled:
        print(f"data docs: {data_docs_index(quality_root(ctx.config))} (rendered when the run ends)")
    result.seconds = time.monotonic() - started
    return result


PROJECT = str(Path(__file__).resolve().parent.parent)  # the project this job belongs to, wherever it runs from


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv, project=PROJECT)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
