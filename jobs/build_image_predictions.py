"""Build silver.image_predictions from silver.images (pinned to the version read): the current Fashion-MNIST classifier (trained once on the Fashion-MNIST test split and logged to MLflow when there is none) predicts every image it has not predicted yet, inside Spark; images that do not decode go to silver.image_predictions_quarantine with the reason."""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import functions as F

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.models.fashion_classifier import ensure_model
from lakehouse.publish import publish_rows
from lakehouse.tables import get_table
from lakehouse.transforms.predictions import (
    ERROR_COLUMN,
    prediction_rows,
    quarantine_records,
    score_images,
    unpredicted,
)
from lakehouse.writer import Commit, ensure_table, write_result

JOB_NAME = "build_image_predictions"
SOURCE = get_table("silver.images")
TARGET = get_table("silver.image_predictions")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retrain", action="store_true",
                        help="train a new model even when one exists (a new version predicts every image again)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    spark, config = ctx.spark, ctx.config
    source_version = current_version(spark, config.table_path(SOURCE.name))
    if source_version is None:
        raise RuntimeError(f"{SOURCE.name} does not exist yet: run build_silver_images first")
    model = ensure_model(config, retrain=getattr(args, "retrain", False))
    paths = {table: ensure_table(spark, config, table) for table in (TARGET, TARGET.quarantine)}
    before = {table: current_version(spark, path) for table, path in paths.items()}
    images = read_table(spark, config, SOURCE.name, version=source_version)
    todo = unpredicted(
        images, read_table(spark, config, TARGET.name), read_table(spark, config, TARGET.quarantine.name), model.version
    )
    scored = score_images(
        todo, model.content, getattr(args, "batch_size", 256), partitions=spark.sparkContext.defaultParallelism
    ).persist()  # read twice (predictions, quarantine): inference runs once
    try:
        outcome = {row[0]: row[1] for row in scored.groupBy(F.col(ERROR_COLUMN).isNull()).count().collect()}
        predicted, undecodable = outcome.get(True, 0), outcome.get(False, 0)
        if predicted or undecodable:  # nothing new: no empty commits
            commit = Commit(ctx.job_name, ctx.run_id, {SOURCE.name: source_version})
            rejected = quarantine_records(
                scored, model.name, model.version, JOB_NAME, f"{SOURCE.name}@{source_version}", ctx.run_id
            )
            publish_rows(
                spark, config, TARGET, prediction_rows(scored, model.name, model.version, ctx.run_id), commit,
                mode="insert_new", rejected=rejected if undecodable else None,
            )
    finally:
        scored.unpersist()
    result = JobResult(
        JOB_NAME, ctx.run_id, writes=[write_result(spark, table, path, before[table]) for table, path in paths.items()]
    )
    result.counts["images predicted"] = predicted
    result.counts["images quarantined (undecodable)"] = undecodable
    # summary() prints every count as it is: the version is a hash, the seconds a float
    result.counts["model version"] = model.version
    if model.trained:
        result.counts["training seconds"] = round(model.training_seconds, 1)
        result.counts["held-out accuracy"] = round(model.holdout_accuracy, 4)
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
