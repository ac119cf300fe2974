"""Land a file source (``kind: files``) in its bronze table: only files new since the last run, each line
exactly once, parsed by the source's format or rescued raw with the reason.

Structured Streaming's ``binaryFile`` source with ``availableNow`` and a checkpoint (the open-source Auto
Loader) finds the new files under the source's folder (sub-folders too, gzip and rotated files
included); :mod:`lakehouse.sources.formats` splits them into lines and parses them, so no input can stop
the job: a damaged compressed file lands what it could read plus a file-level row with the reason. Each
micro-batch is published with a transaction, so a run killed half-way and re-run lands nothing twice.

A batch that still fails (a quality rule with action ``fail`` refused it, the warehouse refused the commit)
is tried again by every run until it lands, never skipped in silence: the job stops with
:class:`BatchFailed`, naming the batch's files (and which of them hold the rows a rule refused). A file can
then be set aside (:func:`set_aside`, ``lakehouse source set-aside``): moved out of the source's folder into
``_set_aside/`` beside it and recorded in ``ops.set_aside``; the batch lands without it.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.engine.job import JobContext, JobResult
from lakehouse.project import file_format
from lakehouse.project.sources import FileSource, expand
from lakehouse.project.steps import Step
from lakehouse.storage.catalog import current_version
from lakehouse.storage.publish import publish_rows
from lakehouse.storage.streams import BatchFailed, for_each_new_batch
from lakehouse.storage.writer import Commit, Transaction, check_schema, ensure_table, write_result

# Spark's binaryFile source holds a file in one byte array: it cannot hand over more than this.
MAX_FILE_BYTES = (1 << 31) - 1024


def landing_folder_exists(spark: SparkSession, folder: str, hint: str) -> bool:
    """Whether ``folder`` is there to be read. A local folder that does not exist is a mistake:
    ``FileNotFoundError`` with ``hint``. On object storage (``s3a://...``) a folder is only the prefix of its
    objects, so there is none until the first object arrives: nothing to read yet, not an error."""
    if "://" not in folder or folder.startswith("file:"):
        local = Path(folder.removeprefix("file:"))  # file:///a/b -> ///a/b, which is /a/b
        if not local.is_dir():
            raise FileNotFoundError(f"no folder {local}: {hint}")
        return True
    path = spark._jvm.org.apache.hadoop.fs.Path(folder)
    if path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(path):
        return True
    print(f"  {folder}: no object there yet, nothing to land")
    return False


def new_files(spark: SparkSession, folder: str, file_glob: str | None = None) -> DataFrame:
    """A stream of the files arriving under ``folder`` (one row per file: path, modificationTime, length,
    content; the content is read only when a batch asks for it). A file that went missing since it was
    listed (set aside) is skipped when its batch is replayed."""
    reader = (
        spark.readStream.format("binaryFile")
        .schema("path string, modificationTime timestamp, length bigint, content binary")
        .option("recursiveFileLookup", "true")
        .option("ignoreMissingFiles", "true")
    )
    if file_glob:
        reader = reader.option("pathGlobFilter", file_glob)
    return reader.load(folder)


def too_large(files: DataFrame, run_id: str, bronze_columns: list[str]) -> DataFrame:
    """One rescued row per file too large to read (``file_too_large:<bytes>``), in bronze's columns."""
    values = {
        "parse_error": F.concat(F.lit("file_too_large:"), F.col("length").cast("string")),
        "source_file": F.col("path"),
        "source_modified_at": F.col("modificationTime"),
        "ingest_time": F.current_timestamp(),
        "run_id": F.lit(run_id),
    }
    return files.select(*[values.get(c, F.lit(None)).alias(c) for c in bronze_columns])


def failed_batch_message(step: str, source: FileSource, files: list[str], rows: DataFrame, error: Exception) -> str:
    """What a user needs when a batch cannot land: why, which files, which of them hold refused rows, what to do."""
    from lakehouse.quality.gate import QualityGateError
    from lakehouse.storage.streams import root_cause

    culprits: list[str] = []
    if isinstance(error, QualityGateError) and error.report is not None:
        for outcome in error.report.failures("fail"):
            if outcome.condition:
                found = rows.where(F.coalesce(F.expr(outcome.condition), F.lit(False))).select("source_file").distinct()
                culprits += [row.source_file for row in found.collect() if row.source_file not in culprits]
    shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    lines = [f"{step}: a batch of {len(files)} new file(s) did not land: {root_cause(error)}", f"  files: {shown}"]
    if culprits:
        lines.append(f"  the refused rows are in: {', '.join(culprits)}")
    example = culprits[0] if culprits else files[0] if files else "FILE"
    lines.append(
        "  every run tries this batch again until it lands: fix the cause, or set a file aside (moved out of the "
        f"folder and recorded in ops.set_aside): lakehouse source set-aside {source.name} {example} --reason '...'"
    )
    return "\n".join(lines)


def set_aside(spark: SparkSession, config, source: FileSource, file: str, reason: str, by: str) -> str:
    """Move ``file`` (a file of ``source``'s folder) to ``_set_aside/<source>/<time>/`` beside the folder and
    record it in ``ops.set_aside``; returns where it went. A batch holding it then lands without it."""
    from lakehouse.project.tables import SET_ASIDE_TABLE
    from lakehouse.storage.writer import Commit as WriterCommit
    from lakehouse.storage.writer import append_rows

    folder = expand(source.path, config).removeprefix("file:").rstrip("/")
    local = file.removeprefix("file:")
    if "://" in folder or "://" in local:
        raise ValueError(
            "set-aside moves local files only; on object storage move the object with the store's tools "
            "(the batch lands without it) and record it yourself"
        )
    path = Path(local).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    if not path.is_relative_to(Path(folder).resolve()):
        raise ValueError(f"{path} is not under {source.name}'s folder {folder}")
    stamp = datetime.now(timezone.utc)
    target = (
        Path(folder).parent
        / "_set_aside"
        / source.name
        / stamp.strftime("%Y%m%dT%H%M%SZ")
        / path.relative_to(Path(folder).resolve())
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)
    row = (source.name, f"file:{path}", f"file:{target}", reason, stamp.replace(tzinfo=None), by)
    append_rows(
        spark,
        config,
        SET_ASIDE_TABLE,
        spark.createDataFrame([row], SET_ASIDE_TABLE.schema),
        WriterCommit("set-aside", by),
    )
    return str(target)


def ingest_files(ctx: JobContext, step: Step) -> JobResult:
    """Land what is new in the file source behind ``step`` (see the module doc)."""
    from lakehouse.sources.formats import parse_lines, read_files

    spark, config = ctx.spark, ctx.config
    source: FileSource = config.project.source(step.source)
    target = config.table(source.bronze_name)
    fmt = file_format(source)
    folder = ctx.options.source_dir or expand(source.path, config)
    hint = f"put the {source.format} files there, or change 'path' in {source.file}"
    ready = landing_folder_exists(spark, folder, hint)
    path = ensure_table(spark, config, target)
    before = current_version(spark, path)
    counts = {"files": 0, "lines read": 0, "lines rescued": 0}

    def land(batch: DataFrame, transaction: Transaction) -> None:
        files = sorted(row.path for row in batch.select("path").collect())  # listing only: no content read
        readable = batch.where(F.col("length") <= MAX_FILE_BYTES)  # binaryFile filters on length before reading
        rows = parse_lines(read_files(spark, readable, fmt), fmt)
        rows = rows.withColumn("ingest_time", F.current_timestamp()).withColumn("run_id", F.lit(ctx.run_id))
        rows = check_schema(rows, target)
        huge = batch.where(F.col("length") > MAX_FILE_BYTES)
        rows = rows.unionByName(too_large(huge, ctx.run_id, rows.columns)).persist()
        try:
            try:
                result = publish_rows(
                    spark, config, target, rows, Commit(ctx.job_name, ctx.run_id, transaction=transaction)
                )
            except Exception as exc:  # noqa: BLE001 - whatever refused the batch, say which files it holds
                raise BatchFailed(failed_batch_message(ctx.job_name, source, files, rows, exc)) from exc
            counts["lines rescued"] += rows.where(F.col("parse_error").isNotNull()).count()
        finally:
            rows.unpersist()
        counts["files"] += len(files)
        counts["lines read"] += result.rows_in

    checkpoint = config.checkpoint_path(ctx.job_name)
    batches = for_each_new_batch(new_files(spark, folder, source.files), checkpoint, ctx.job_name, land) if ready else 0
    result = JobResult(ctx.job_name, ctx.run_id, writes=[write_result(spark, target, path, before)])
    result.counts.update({"file batches": batches, **counts})
    return result
