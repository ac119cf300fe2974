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
from lakehouse.writer import Commit, Transaction, ensure_table, write_result

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
) -> JobResult:
    """Land every line of the files new in ``source_dir`` into ``target`` (one micro-batch per run's files).

    ``transform`` turns the raw lines (``value``, ``source_file``, ``source_modified_at``) into the
    table's columns before ``ingest_time`` and ``run_id`` are added; by default lines land as they are.
    """
    spark, config = ctx.spark, ctx.config
    path = ensure_table(spark, config, target)
    before = current_version(spark, path)
    lines_read = 0

    def land(batch: DataFrame, transaction: Transaction) -> None:
        nonlocal lines_read
        rows = transform(batch) if transform else batch
        rows = rows.withColumn("ingest_time", F.current_timestamp()).withColumn("run_id", F.lit(ctx.run_id))
        result = publish_rows(spark, config, target, rows, Commit(ctx.job_name, ctx.run_id, transaction=transaction))
        lines_read += result.rows_in

    batches = for_each_new_batch(
        text_file_lines(spark, source_dir), config.checkpoint_path(ctx.job_name), ctx.job_name, land
    )
    result = JobResult(ctx.job_name, ctx.run_id, writes=[write_result(spark, target, path, before)])
    result.counts.update({"file batches": batches, "lines read": lines_read})
    return result
