"""Land image references from manifests (CSV or JSON lines: URI, label, metadata) into bronze.image_refs: new manifests only, exactly once; the objects stay where they are."""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.catalog import current_version
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.publish import publish_rows
from lakehouse.sources.log_files import check_landing_folder
from lakehouse.sources.manifests import manifest_lines
from lakehouse.streams import for_each_new_batch, whole_files
from lakehouse.tables import get_table
from lakehouse.writer import Commit, Transaction, ensure_table, write_result

JOB_NAME = "ingest_image_manifests"
TARGET = get_table("bronze.image_refs")
MANIFEST_GLOB = "*.{csv,jsonl,json}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-dir", help="landing folder of the manifests (default: <landing>/image_manifests)")


def reference_rows(files: DataFrame) -> DataFrame:
    """One row per manifest line (``content``/``source_file``/``source_modified_at`` in, bronze columns out)."""
    return files.select(
        F.explode(manifest_lines(F.col("content"), F.col("source_file"))).alias("line"),
        "source_file",
        "source_modified_at",
    ).select("line.*", "source_file", "source_modified_at")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    spark, config = ctx.spark, ctx.config
    source_dir = getattr(args, "source_dir", None) or config.landing_path("image_manifests")
    check_landing_folder(source_dir, "write a manifest there, or run the main job (`make demo`)")
    path = ensure_table(spark, config, TARGET)
    before = current_version(spark, path)
    counts = {"manifest lines": 0}

    def land(batch: DataFrame, transaction: Transaction) -> None:
        rows = reference_rows(batch).withColumn("ingest_time", F.current_timestamp()).withColumn(
            "run_id", F.lit(ctx.run_id)
        )
        result = publish_rows(spark, config, TARGET, rows, Commit(ctx.job_name, ctx.run_id, transaction=transaction))
        counts["manifest lines"] += result.rows_in

    batches = for_each_new_batch(
        whole_files(spark, source_dir, MANIFEST_GLOB), config.checkpoint_path(JOB_NAME), JOB_NAME, land
    )
    result = JobResult(JOB_NAME, ctx.run_id, writes=[write_result(spark, TARGET, path, before)])
    result.counts.update({"manifest batches": batches, **counts})
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
