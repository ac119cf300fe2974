"""Log files -> bronze, incrementally: only files that arrived since the last run, each line exactly once.

Structured Streaming's file source with ``availableNow`` and a checkpoint (the open-source Auto
Loader) finds the new files, gzip and rotated files included; each micro-batch is published with a
transaction so that a run killed half-way and re-run lands nothing twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.catalog import current_version
from lakehouse.job import JobContext, JobResult
from lakehouse.publish import publish_rows
from lakehouse.streams import for_each_new_batch, text_file_lines
from lakehouse.tables import TableDeclaration
from lakehouse.writer import Commit, Transaction, check_schema, ensure_table, write_result

LineTransform = Callable[[DataFrame], DataFrame]


def check_landing_folder(source_dir: str, hint: str) -> None:
    """Raise ``FileNotFoundError`` (with ``hint``) when a local landing folder does not exist."""
    if "://" not in source_dir and not source_dir.startswith("file:") and not Path(source_dir).is_dir():
        raise FileNotFoundError(f"no landing folder {source_dir}: {hint}")


def ingest_new_lines(
    ctx: JobContext,
    target: TableDeclaration,
    source_dir: str,
    transform: LineTransform | None = None,
    rescued_column: str | None = None,
) -> JobResult:
    """Land every line of the files new in ``source_dir`` into ``target`` (one micro-batch per run's files).

    ``transform`` turns the raw lines (``value``, ``source_file``, ``source_modified_at``) into the
    table's columns before ``ingest_time`` and ``run_id`` are added; by default lines land as they are.
    Rows with a non-null ``rescued_column`` (a parse error) are counted as rescued lines.
    """
    spark, config = ctx.spark, ctx.config
    path = ensure_table(spark, config, target)
    before = current_version(spark, path)
    counts = {"lines read": 0, "lines rescued": 0}

    def land(batch: DataFrame, transaction: Transaction) -> None:
        rows = transform(batch) if transform else batch
        rows = rows.withColumn("ingest_time", F.current_timestamp()).withColumn("run_id", F.lit(ctx.run_id))
        rows = check_schema(rows, target).persist()  # the plan publish_rows caches: parsed once, counted twice
        try:
            result = publish_rows(spark, config, target, rows, Commit(ctx.job_name, ctx.run_id, transaction=transaction))
            counts["lines read"] += result.rows_in
            if rescued_column:
                counts["lines rescued"] += rows.where(F.col(rescued_column).isNotNull()).count()
        finally:
            rows.unpersist()

    batches = for_each_new_batch(
        text_file_lines(spark, source_dir), config.checkpoint_path(ctx.job_name), ctx.job_name, land
    )
    result = JobResult(ctx.job_name, ctx.run_id, writes=[write_result(spark, target, path, before)])
    result.counts["file batches"] = batches
    result.counts.update(counts if rescued_column else {"lines read": counts["lines read"]})
    return result
