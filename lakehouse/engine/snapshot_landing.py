"""Database tables -> bronze snapshots: read (JDBC, pg_dump or CSV), type, fingerprint, land once.

Whatever way a table is read, its rows are typed to the columns declared in
``schemas/bronze/<source>/<table>.yaml``; a row that does not fit (wrong field count, a value that
does not cast) goes to the table's quarantine with the reason (a row with a value that does not cast
keeps every field, as text, in JSON, so silver can tell its key). The snapshot id is a fingerprint of
the content, so the three ways give the same id for the same rows, and landing a snapshot whose
content equals the table's latest one is a no-op. Each snapshot commits with a Delta transaction whose
version is the bronze table's version before it, so a run killed between its commits and re-run lands
nothing twice, and content that comes back (A, B, A, B) lands every time it changes.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.sources import DatabaseSource, SourceTable
from lakehouse.project.tables import TableDeclaration
from lakehouse.sources import pg_copy
from lakehouse.storage import quarantine
from lakehouse.storage.catalog import current_version
from lakehouse.storage.delta_log import commits_after, is_partitioned
from lakehouse.storage.publish import publish_rows
from lakehouse.storage.writer import Commit, SchemaMismatchError, Transaction, ensure_table

ERROR = "__error"  # a reason found while reading (e.g. a malformed line), before typing
RAW_RECORD = "value"  # the row's raw text when the reader has it


@dataclass(frozen=True)
class RawSnapshot:
    """One table as read from its source, not yet typed.

    ``rows`` has one column per source column (strings from files, typed from JDBC) and may have
    ``__error`` and ``value`` (the raw line).
    """

    table: SourceTable
    rows: DataFrame
    source: str
    taken_at: datetime
    cached: DataFrame | None = None  # a persisted input several snapshots share (a dump's lines)

    def release(self) -> None:
        """Drop the shared cached input (after every snapshot read from it was landed)."""
        if self.cached is not None:
            self.cached.unpersist()


@dataclass(frozen=True)
class SnapshotResult:
    """What landing one snapshot did."""

    table: str
    snapshot_id: str
    landed: bool
    rows: int
    quarantined: int
    version: int | None


# ---------------------------------------------------------------- readers


def read_jdbc(spark: SparkSession, source: DatabaseSource, table: SourceTable, options: dict[str, str]) -> RawSnapshot:
    """A live snapshot over JDBC with the connection ``options`` (:func:`lakehouse.sources.jdbc.read_options`);
    split into ``partitions`` parallel range reads when the table declares a ``partition_column``."""
    from lakehouse.project.schemas import load_schema
    from lakehouse.sources.jdbc import custom_schema, engine_for, qualified_name, redact_url

    url = options["url"]
    engine = engine_for(url)
    qualified = qualified_name(url, table.name, source.schema)
    taken_at = datetime.now(timezone.utc)
    reader = spark.read.format("jdbc").options(**options)
    declared = [(f.name, f.dataType.simpleString()) for f in load_schema(table.columns_file).fields]
    as_read = custom_schema(url, declared, table.partition_column)  # SQLite: text first, typed like every source
    if as_read:
        reader = reader.option("customSchema", as_read)
    if table.partition_column:
        column = engine.quote(table.partition_column)
        bounds = (
            spark.read.format("jdbc")
            .options(**options)
            .option("query", f"SELECT min({column}) AS lo, max({column}) AS hi FROM {qualified}")
            .load()
            .first()
        )
        if bounds is not None and bounds.lo is not None:
            reader = (
                reader.option("partitionColumn", table.partition_column)
                .option("lowerBound", str(bounds.lo))
                .option("upperBound", str(bounds.hi))
                .option("numPartitions", str(table.partitions))
            )
    rows = reader.option("dbtable", qualified).load()
    where = redact_url(url).split("?")[0]  # a URL may hold credentials: never in a stamp
    shown = f"{source.schema}.{table.name}" if source.schema else table.name
    return RawSnapshot(table, rows, f"{where}?table={shown}", taken_at)


def file_time(spark: SparkSession, path: str) -> datetime:
    """Modification time of a file on any Hadoop filesystem (the snapshot time of a dump or export)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hadoop_path):
        raise FileNotFoundError(f"no such file: {path}")
    return datetime.fromtimestamp(fs.getFileStatus(hadoop_path).getModificationTime() / 1000, tz=timezone.utc)


def read_pg_dump(
    spark: SparkSession, dump_path: str, database: DatabaseSource, tables: list[SourceTable]
) -> list[RawSnapshot]:
    """The wanted tables' rows from a plain-format ``pg_dump`` file; a wanted table missing from the dump
    is an error naming the tables it does hold."""
    taken_at = file_time(spark, dump_path)
    lines = pg_copy.numbered_lines(spark, dump_path)
    try:
        blocks = pg_copy.find_blocks(lines, dump_path)
    except pg_copy.DumpFormatError:
        lines.unpersist()
        raise
    snapshots = []
    for table in tables:
        qualified = f"{database.schema or 'public'}.{table.name}"
        if qualified not in blocks:
            lines.unpersist()
            raise pg_copy.DumpFormatError(
                f"{dump_path} holds no COPY block for {qualified}; it holds: {', '.join(blocks) or 'none'}"
            )
        rows = pg_copy.block_rows(lines, blocks[qualified]).withColumnRenamed("__error", ERROR)
        snapshots.append(RawSnapshot(table, rows, f"pg_dump:{dump_path}#{qualified}", taken_at, cached=lines))
    return snapshots


def read_csv_export(spark: SparkSession, csv_path: str, database: DatabaseSource, table: SourceTable) -> RawSnapshot:
    """One table's CSV export with a header row (PostgreSQL's ``COPY ... CSV``: quotes doubled inside quoted
    fields, which may hold newlines); every value read as text, ``csv_null_value`` as NULL. A record with
    the wrong number of fields keeps its raw text with ``malformed_csv_row``."""
    taken_at = file_time(spark, csv_path)
    header_line = spark.read.text(csv_path).first()
    if header_line is None:
        raise pg_copy.DumpFormatError(f"{csv_path} is empty: a CSV export needs a header row")
    names = next(csv.reader([header_line.value]))
    schema = T.StructType([T.StructField(name, T.StringType()) for name in names])
    schema = schema.add(T.StructField(RAW_RECORD, T.StringType()))
    rows = (
        spark.read.schema(schema)
        .option("header", "true")
        .option("enforceSchema", "false")
        .option("nullValue", database.csv_null_value)
        .option("multiLine", "true")
        .option("escape", '"')
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", RAW_RECORD)
        .csv(csv_path)
    )
    rows = rows.withColumn(ERROR, F.when(F.col(RAW_RECORD).isNotNull(), F.lit("malformed_csv_row")))
    return RawSnapshot(table, rows, f"csv:{csv_path}", taken_at)


# ---------------------------------------------------------------- typing and fingerprint


def check_columns(raw: RawSnapshot, declaration: TableDeclaration) -> None:
    """The source must have exactly the declared columns (any order); otherwise name the difference."""
    declared = declaration.source_schema.names
    present = [c for c in raw.rows.columns if c not in (ERROR, RAW_RECORD)]
    missing = [c for c in declared if c not in present]
    extra = [c for c in present if c not in declared]
    if missing or extra:
        detail = "; ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"not declared {extra} (add them to schemas/{declaration.schema_file})" if extra else "",
            )
            if part
        )
        raise SchemaMismatchError(f"{raw.source}: columns differ from {declaration.name}: {detail}")


def typed_rows(raw: RawSnapshot, declaration: TableDeclaration) -> DataFrame:
    """The raw rows with every declared column cast to its type and ``__error`` naming the first problem
    (a reader's error, or ``bad_value:<column>`` when a non-null value does not cast)."""
    check_columns(raw, declaration)
    rows = raw.rows
    if ERROR not in rows.columns:
        rows = rows.withColumn(ERROR, F.lit(None).cast("string"))
    if RAW_RECORD not in rows.columns:
        rows = rows.withColumn(RAW_RECORD, F.lit(None).cast("string"))
    fields = declaration.source_schema.fields
    casts = {f.name: F.col(f.name).try_cast(f.dataType) for f in fields}
    first_bad_value: Column | None = None
    for f in fields:
        does_not_cast = F.col(f.name).isNotNull() & casts[f.name].isNull()
        reason = F.lit(f"bad_value:{f.name}")
        first_bad_value = (
            F.when(does_not_cast, reason) if first_bad_value is None else first_bad_value.when(does_not_cast, reason)
        )
    error = F.coalesce(F.col(ERROR), first_bad_value)
    # Kept only for rows going to quarantine (the snapshot is cached: no copy of every line). A row the
    # reader could split keeps its fields as text in JSON, so silver can hold its key (see silver snapshots).
    # named fields (a cast alone would be named col1, col2, ...) and nulls kept: the record is the row
    fields_as_json = F.to_json(
        F.struct(*[F.col(f.name).cast("string").alias(f.name) for f in fields]), {"ignoreNullFields": "false"}
    )
    record = F.when(
        error.isNotNull(),
        F.when(F.col(ERROR).isNull(), fields_as_json).otherwise(F.coalesce(F.col(RAW_RECORD), fields_as_json)),
    )
    return rows.select(
        *[casts[f.name].alias(f.name) for f in fields],
        error.alias(ERROR),
        record.alias(RAW_RECORD),
    )


def fingerprint(typed: DataFrame, columns: list[str]) -> tuple[str, int, int]:
    """``(snapshot id, good rows, bad rows)``: an order-independent hash of the typed good rows and the
    raw text of the bad ones. The same rows give the same id whichever way they were read."""
    row_text = F.when(F.col(ERROR).isNull(), F.to_json(F.struct(*columns))).otherwise(
        F.concat(F.lit("bad:"), F.col(RAW_RECORD))
    )
    as_decimal = lambda h: h.cast("decimal(38,0)")  # noqa: E731 - sums of 64-bit hashes overflow a long
    stats = typed.select(
        F.count(F.when(F.col(ERROR).isNull(), 1)).alias("good"),
        F.count(F.col(ERROR)).alias("bad"),
        F.sum(as_decimal(F.xxhash64(row_text))).alias("h1"),
        F.sum(as_decimal(F.xxhash64(F.lit("second"), row_text))).alias("h2"),
    ).first()
    digest = hashlib.sha256(f"{stats.good}|{stats.bad}|{stats.h1}|{stats.h2}".encode()).hexdigest()[:20]
    return digest, int(stats.good), int(stats.bad)


def latest_snapshot_id(spark: SparkSession, path: str) -> str | None:
    """The snapshot id most recently landed in the table at ``path`` (None for an empty table).

    A landing is one append: when the table's latest commit is one that added rows, the files it added hold
    that snapshot alone, and reading one row of them answers. After anything else (a restore, a delete, an
    empty snapshot's commit) the whole table is asked, as it always was before."""
    version = current_version(spark, path)
    if version is None:
        return None
    last = commits_after(spark, path, version - 1, with_files=True)[-1]  # (or a newer one, another writer's)
    appended = last.operation == "WRITE" and last.operation_parameters.get("mode") == "Append"
    if appended and last.added_files and not last.files_have_deletions and not is_partitioned(spark, path):
        row = (
            spark.read.parquet(*last.added_files)
            .select("_snapshot_id")
            .where(F.col("_snapshot_id").isNotNull())
            .first()
        )
        if row is not None:
            return row._snapshot_id
    latest = (
        spark.read.format("delta")
        .load(path)
        .groupBy("_snapshot_id")
        .agg(F.max("_ingest_time").alias("landed"))
        .orderBy(F.desc("landed"))
        .first()
    )
    return latest._snapshot_id if latest else None


# ---------------------------------------------------------------- landing


def land_snapshot(
    spark: SparkSession, config: LakehouseConfig, raw: RawSnapshot, job: str, run_id: str
) -> SnapshotResult:
    """Type, fingerprint and land one snapshot (no-op when its content equals the latest snapshot's)."""
    declaration = config.table(raw.table.bronze_name)
    path = ensure_table(spark, config, declaration)
    columns = declaration.source_schema.names
    typed = typed_rows(raw, declaration).persist()
    try:
        snapshot_id, good, bad = fingerprint(typed, columns)
        previous = latest_snapshot_id(spark, path)
        if previous == snapshot_id:
            return SnapshotResult(declaration.name, snapshot_id, False, 0, 0, current_version(spark, path))
        stamps = {
            "_snapshot_id": F.lit(snapshot_id),
            "_snapshot_time": F.lit(raw.taken_at).cast("timestamp"),
            "_source": F.lit(raw.source),
            "_ingest_time": F.current_timestamp(),
            "_run_id": F.lit(run_id),
        }
        good_rows = typed.where(F.col(ERROR).isNull()).select(*columns, *[c.alias(n) for n, c in stamps.items()])
        protocol = quarantine.reject(F.col(ERROR), record=F.col(RAW_RECORD))
        rejected = quarantine.quarantine_rows(
            typed.select(*columns, *protocol.values()), "snapshot_read", f"{raw.source}@{snapshot_id}", run_id
        )
        # The version the table has before this snapshot: increasing, and the same when a crashed landing is
        # replayed (its quarantine commit, made first, is then skipped; the bronze append is not yet there).
        transaction = Transaction(app_id=f"{declaration.name}:snapshots", version=current_version(spark, path))
        result = publish_rows(
            spark,
            config,
            declaration,
            good_rows,
            Commit(job, run_id, transaction=transaction),
            rejected=rejected if bad else None,
            commit_empty=True,  # the next snapshot's transaction follows it
        )
        return SnapshotResult(
            declaration.name,
            snapshot_id,
            True,
            result.rows_in - result.rows_quarantined + bad,
            result.rows_quarantined,
            result.write.version,
        )
    finally:
        typed.unpersist()
