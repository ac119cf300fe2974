"""Incremental, exactly-once processing with Structured Streaming's ``availableNow`` trigger.

A checkpoint remembers which files (or which versions of an upstream Delta table) were processed;
each run handles only what arrived since, then stops: the open-source counterpart of Databricks'
Auto Loader. Each micro-batch is handed to a function together with a :class:`Transaction` that is
the same when the batch is replayed after a crash, so idempotent writes commit it exactly once.
"""

from __future__ import annotations

import re
from typing import Callable

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamReader

from lakehouse.storage.writer import Transaction

BatchHandler = Callable[[DataFrame, Transaction], None]


def text_file_lines(spark: SparkSession, source_dir: str, file_glob: str | None = None) -> DataFrame:
    """A stream of the lines of the files arriving in ``source_dir`` (gzip read transparently).

    Columns: ``value`` (the line), ``source_file`` and ``source_modified_at`` (of the file).
    """
    reader: DataStreamReader = spark.readStream.format("text")
    if file_glob:
        reader = reader.option("pathGlobFilter", file_glob)
    return reader.load(source_dir).select(
        "value",
        F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.file_modification_time").alias("source_modified_at"),
    )


def whole_files(spark: SparkSession, source_dir: str, file_glob: str | None = None) -> DataFrame:
    """A stream of the files arriving in ``source_dir``, one row per file: ``content`` (bytes),
    ``source_file`` and ``source_modified_at``. For files parsed as a whole (manifests)."""
    reader: DataStreamReader = spark.readStream.format("binaryFile").schema(
        "path string, modificationTime timestamp, length bigint, content binary"
    )
    if file_glob:
        reader = reader.option("pathGlobFilter", file_glob)
    return reader.load(source_dir).select(
        "content",
        F.col("path").alias("source_file"),
        F.col("modificationTime").alias("source_modified_at"),
    )


def delta_table_changes(spark: SparkSession, table_path: str) -> DataFrame:
    """A stream of the rows appended to the Delta table at ``table_path``."""
    return spark.readStream.format("delta").load(table_path)


def for_each_new_batch(stream: DataFrame, checkpoint: str, query_name: str, handle_batch: BatchHandler) -> int:
    """Run ``handle_batch`` on everything new in ``stream`` since the last run; return the batch count.

    The transaction handed over is ``(query_name:query id, batch id)``: stable across replays of the
    same micro-batch, and new if the checkpoint is deleted (its query id changes), so reprocessing
    from scratch is never mistaken for a replay.
    """
    spark = stream.sparkSession
    handled: list[int] = []
    raised: list[BaseException] = []

    def on_batch(batch: DataFrame, batch_id: int) -> None:
        query_id = next(q.id for q in spark.streams.active if q.name == query_name)
        try:
            handle_batch(batch, Transaction(app_id=f"{query_name}:{query_id}", version=batch_id))
        except BaseException as exc:
            raised.append(exc)  # the handler's own error, whole (the query only passes on its text)
            raise
        handled.append(batch_id)

    query = (
        stream.writeStream.queryName(query_name)
        .foreachBatch(on_batch)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination()
    except StreamingQueryException as exc:
        if raised and isinstance(raised[-1], Exception):
            raise raised[-1] from exc
        raise StreamFailed(f"{query_name} stopped: {root_cause(exc)}") from exc
    return len(handled)


class StreamFailed(RuntimeError):
    """A micro-batch failed; its checkpoint was not advanced, so the next run replays it."""


def root_cause(error: Exception) -> str:
    """The innermost ``SomeError: message`` line of a streaming failure (often a Python traceback)."""
    causes = re.findall(r"^\s*(\w+(?:Error|Exception|Failed): .+)$", str(error), flags=re.MULTILINE)
    return causes[-1].strip() if causes else str(error).splitlines()[0]


class BatchFailed(RuntimeError):
    """A batch of new files did not land; the message names the files and how to go on without one."""
