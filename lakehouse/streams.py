"""Incremental, exactly-once processing with Structured Streaming's ``availableNow`` trigger.

A checkpoint remembers which files (or which Delta versions of an upstream table) were processed;
each run handles only what arrived since, then stops. This is the open-source counterpart of
Databricks' Auto Loader. A run killed half-way is replayed from the checkpoint on the next run.
"""

from __future__ import annotations

from typing import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.writer import Transaction

BatchHandler = Callable[[DataFrame, Transaction], None]


def land_text_files(
    spark: SparkSession,
    source_dir: str,
    table_path: str,
    checkpoint: str,
    extra_columns: dict[str, Column],
    file_glob: str | None = None,
) -> int:
    """Append every line of the files new in ``source_dir`` to the Delta table at ``table_path``.

    Each row gets the line (``value``), its file (``source_file``), that file's modification time
    and ``extra_columns``. Gzip files (``.gz``) are read transparently. Returns the lines landed.
    Delta's streaming sink commits each micro-batch exactly once, keyed by the checkpoint.
    """
    reader = spark.readStream.format("text")
    if file_glob:
        reader = reader.option("pathGlobFilter", file_glob)
    lines = reader.load(source_dir).select(
        "value",
        F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.file_modification_time").alias("source_modified_at"),
        *[column.alias(name) for name, column in extra_columns.items()],
    )
    query = (
        lines.writeStream.format("delta")
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start(table_path)
    )
    query.awaitTermination()
    _raise_if_failed(query)
    return sum(progress.get("numInputRows", 0) for progress in query.recentProgress)


def process_new_versions(
    spark: SparkSession,
    source_table_path: str,
    checkpoint: str,
    query_name: str,
    handle_batch: BatchHandler,
) -> int:
    """Call ``handle_batch`` on the rows appended to an upstream Delta table since the last run.

    ``handle_batch`` receives the rows and a :class:`Transaction` to pass to every write it makes:
    the transaction is stable across replays of the same micro-batch (streaming query id + batch id),
    so a batch replayed after a crash commits nothing twice. Returns the number of batches handled.
    """
    handled = []

    def on_batch(batch: DataFrame, batch_id: int) -> None:
        query_id = next(q.id for q in spark.streams.active if q.name == query_name)
        handle_batch(batch, Transaction(app_id=f"{query_name}:{query_id}", version=batch_id))
        handled.append(batch_id)

    query = (
        spark.readStream.format("delta")
        .load(source_table_path)
        .writeStream.queryName(query_name)
        .foreachBatch(on_batch)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    _raise_if_failed(query)
    return len(handled)


def _raise_if_failed(query) -> None:
    error = query.exception()
    if error is not None:
        raise RuntimeError(f"streaming query {query.name or query.id} failed: {error}")
