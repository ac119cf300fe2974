"""Build silver.images and silver.image_references from bronze.image_refs: fetch every referenced object, decode and hash it; duplicates collapse to one image; missing, unreadable and non-image objects go to silver.images_quarantine with the reason."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.publish import publish_rows
from lakehouse.streams import delta_table_changes, for_each_new_batch
from lakehouse.tables import get_table
from lakehouse.transforms.images import (
    REJECT_COLUMN,
    classify_references,
    fetch_objects,
    first_per_content,
    quarantine_records,
    validate_images,
)
from lakehouse.writer import Commit, Transaction, ensure_table, write_result

JOB_NAME = "build_silver_images"
SOURCE = get_table("bronze.image_refs")
IMAGES = get_table("silver.images")
REFERENCES = get_table("silver.image_references")
TARGETS = (IMAGES, IMAGES.quarantine, REFERENCES)


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    spark, config = ctx.spark, ctx.config
    source_path = config.table_path(SOURCE.name)
    source_version = current_version(spark, source_path)
    if source_version is None:
        raise RuntimeError(f"{SOURCE.name} does not exist yet: run ingest_image_manifests first")
    paths = {table: ensure_table(spark, config, table) for table in TARGETS}
    before = {table: current_version(spark, path) for table, path in paths.items()}
    outcomes: Counter = Counter()

    def handle_batch(batch: DataFrame, transaction: Transaction) -> None:
        commit = Commit(ctx.job_name, ctx.run_id, {SOURCE.name: source_version}, transaction)
        published = read_table(spark, config, REFERENCES.name).select("object_uri")
        classified = classify_references(batch, published).persist()
        candidates = classified.where(F.col(REJECT_COLUMN).isNull()).drop(REJECT_COLUMN)
        checked = validate_images(fetch_objects(spark, candidates)).persist()
        try:
            rejected = classified.where(F.col(REJECT_COLUMN).isNotNull()).unionByName(
                checked.where(F.col(REJECT_COLUMN).isNotNull()).select(*classified.columns), allowMissingColumns=False
            )
            for row in rejected.groupBy(REJECT_COLUMN).count().collect():
                outcomes[f"quarantined {row[REJECT_COLUMN].split(':')[0]}"] += row["count"]
            good = checked.where(F.col(REJECT_COLUMN).isNull())
            now = F.current_timestamp()
            images = first_per_content(good).select(
                "content_hash", "object_uri", "label", "format", "width", "height", "mode", "size_bytes", "content",
                now.alias("first_seen_at"), F.lit(ctx.run_id).alias("run_id"),
            )
            references = good.select(
                "object_uri", "content_hash", "label", "metadata", "source_file", "line_number",
                now.alias("validated_at"), F.lit(ctx.run_id).alias("run_id"),
            )
            image_result = publish_rows(
                spark, config, IMAGES, images, commit, mode="insert_new",
                rejected=quarantine_records(rejected, "build_silver_images", ctx.run_id),
            )
            reference_result = publish_rows(spark, config, REFERENCES, references, commit, mode="insert_new")
            outcomes["kept"] += reference_result.rows_in - reference_result.rows_quarantined
            outcomes["with content new in their batch"] += image_result.rows_in
        finally:
            checked.unpersist()
            classified.unpersist()

    batches = for_each_new_batch(
        delta_table_changes(spark, source_path), config.checkpoint_path(JOB_NAME), JOB_NAME, handle_batch
    )
    result = JobResult(
        JOB_NAME, ctx.run_id, writes=[write_result(spark, table, paths[table], before[table]) for table in TARGETS]
    )
    result.counts["bronze batches"] = batches
    result.counts.update({f"references {outcome}": count for outcome, count in sorted(outcomes.items())})
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, None, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
