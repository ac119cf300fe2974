"""Build gold.photo_popularity_training from silver (every input pinned to the version read): one row per photo with its metadata, the author's activity as of the upload, the classifier's outputs, the image and the label (likes in the first 24 hours); published only after its audit passes."""

from __future__ import annotations

import argparse
import sys

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.publish import publish_table
from lakehouse.tables import get_table
from lakehouse.transforms.popularity import excluded_photos, photo_popularity_training
from lakehouse.writer import Commit

JOB_NAME = "build_gold_photo_popularity"
TARGET = get_table("gold.photo_popularity_training")
INPUTS = {  # argument of photo_popularity_training -> silver table
    "photos": "silver.photos",
    "users": "silver.users",
    "follows_history": "silver.follows_history",
    "events": "silver.events",
    "image_references": "silver.image_references",
    "images": "silver.images",
    "predictions": "silver.image_predictions",
}


def pinned_inputs(ctx: JobContext) -> tuple[dict, dict[str, int]]:
    """Each input table read at its current version, and the versions (for the commit's lineage)."""
    versions = {}
    for table in INPUTS.values():
        version = current_version(ctx.spark, ctx.config.table_path(table))
        if version is None:
            raise RuntimeError(f"{table} does not exist yet: run {get_table(table).job} first")
        versions[table] = version
    frames = {arg: read_table(ctx.spark, ctx.config, table, version=versions[table]) for arg, table in INPUTS.items()}
    return frames, versions


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    frames, versions = pinned_inputs(ctx)
    rows = photo_popularity_training(**frames)
    published = publish_table(ctx.spark, ctx.config, TARGET, rows, Commit(ctx.job_name, ctx.run_id, versions))
    result = JobResult(JOB_NAME, ctx.run_id, writes=[published.write])
    training = read_table(ctx.spark, ctx.config, TARGET.name, version=published.write.version)
    result.counts["photos in silver"] = frames["photos"].count()
    result.counts["training rows"] = published.rows_in
    for reason, count in sorted(excluded_photos(frames["photos"], training, frames["events"]).items()):
        result.counts[f"photos left out: {reason}"] = count
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, None, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
