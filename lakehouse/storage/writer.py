"""The one place tables are created and committed to.

Every write goes through here so that every table is created from its declaration (schema,
partitioning, Delta properties), every incoming DataFrame is checked against the declared schema,
and every commit records which job run made it and which input versions it read (Delta's
``userMetadata``), which ``DESCRIBE HISTORY`` and the lineage tools read back.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.tables import TableDeclaration
from lakehouse.storage import faults
from lakehouse.storage.catalog import current_version, register_table, table_exists
from lakehouse.storage.delta_log import commits_after
from lakehouse.storage.idempotent_append import NOT_APPLICABLE, append_once

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
TXN_APP_ID_CONF = "spark.databricks.delta.write.txnAppId"
TXN_VERSION_CONF = "spark.databricks.delta.write.txnVersion"


class SchemaMismatchError(ValueError):
    """A DataFrame does not have the columns and types its table declares."""


@dataclass(frozen=True)
class Transaction:
    """An idempotent write's identity: a replay with the same app id and version commits nothing."""

    app_id: str
    version: int


@dataclass(frozen=True)
class Commit:
    """Who commits and from what: recorded in every commit's ``userMetadata``.

    ``inputs`` maps each upstream table to the version read; ``transaction`` makes the write idempotent.
    """

    job: str
    run_id: str
    inputs: Mapping[str, int | None] = field(default_factory=dict)
    transaction: Transaction | None = None

    def message(self) -> str:
        """The JSON stored in ``userMetadata``: job, run id and the input versions read."""
        return json.dumps({"job": self.job, "run_id": self.run_id, "inputs": dict(self.inputs)}, sort_keys=True)


@dataclass(frozen=True)
class WriteResult:
    """What one write did to one table."""

    table: str
    version: int | None
    rows_written: int
    committed: bool


def ensure_table(
    spark: SparkSession, config: LakehouseConfig, declaration: TableDeclaration, schema: T.StructType | None = None
) -> str:
    """Create the table from its declaration if it does not exist; register its name; return its path.

    A table whose declaration has no columns (a definition without a schema file) is created with
    ``schema``, the columns its definition produced.
    """
    path = config.table_path(declaration.name)
    columns = declaration.schema or schema
    exists = table_exists(spark, path)
    if columns is None and not exists:
        raise SchemaMismatchError(
            f"{declaration.name} has no schema file and was never written: nothing to create it from"
        )
    if exists:  # createIfNotExists would be a no-op, at the cost of a Spark command (a fixed cost of every write)
        register_table(spark, declaration, path)
        return path
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(columns).comment(declaration.description)
    if declaration.partition_by:
        builder = builder.partitionedBy(*declaration.partition_by)
    properties = {"delta.logRetentionDuration": f"interval {config.retention.log_days} days", **declaration.properties}
    for key, value in properties.items():
        builder = builder.property(key, value)
    builder.execute()
    register_table(spark, declaration, path)
    return path


def check_schema(df: DataFrame, declaration: TableDeclaration) -> DataFrame:
    """Return ``df`` with the declared column order; raise ``SchemaMismatchError`` on any difference.

    A table declared without columns (a definition without a schema file) takes ``df`` as it is.
    """
    if declaration.schema is None:
        return df
    declared = {f.name: f.dataType for f in declaration.schema.fields}
    actual = {f.name: f.dataType for f in df.schema.fields}
    problems = [f"missing column {name!r}" for name in declared if name not in actual]
    problems += [f"undeclared column {name!r}" for name in actual if name not in declared]
    problems += [
        f"column {name!r} is {actual[name].simpleString()}, declared {declared[name].simpleString()}"
        for name in declared
        if name in actual and actual[name] != declared[name]
    ]
    if problems:
        raise SchemaMismatchError(f"{declaration.name} ({declaration.schema_origin}): " + "; ".join(problems))
    return df.select(*declared)


def writer_options(commit: Commit) -> dict[str, str]:
    """Delta writer options carrying the commit's metadata and transaction.

    Options rather than session settings for DataFrame writes: a micro-batch DataFrame inside
    ``foreachBatch`` belongs to a cloned session that does not see settings made on the outer one.
    """
    options = {"userMetadata": commit.message()}
    if commit.transaction is not None:
        options["txnAppId"] = commit.transaction.app_id
        options["txnVersion"] = str(commit.transaction.version)
    return options


@contextmanager
def commit_context(spark: SparkSession, commit: Commit) -> Iterator[None]:
    """Session settings for the commits ``spark`` itself makes inside (MERGE, RESTORE): metadata and
    transaction. DataFrame writes take :func:`writer_options` instead."""
    settings = {USER_METADATA_CONF: commit.message()}
    if commit.transaction is not None:
        settings[TXN_APP_ID_CONF] = commit.transaction.app_id
        settings[TXN_VERSION_CONF] = str(commit.transaction.version)
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in settings:
            spark.conf.unset(key)


# Delta's operation metrics name added rows differently per operation; MERGE reports both names
# (numOutputRows counting rewritten rows too), so the inserted count comes first.
ADDED_ROW_METRICS = ("numTargetRowsInserted", "numOutputRows")


def rows_added(metrics: Mapping[str, str] | None) -> int | None:
    """Rows a commit added, from its operation metrics; ``None`` when it reports none."""
    for name in ADDED_ROW_METRICS:
        if (metrics or {}).get(name) is not None:
            return int(metrics[name])
    return None


def write_result(spark: SparkSession, declaration: TableDeclaration, path: str, before: int | None) -> WriteResult:
    """Describe what the commits after version ``before`` did to the table at ``path`` (its version now,
    the rows they added), from their commit files."""
    if not table_exists(spark, path):
        return WriteResult(declaration.name, None, 0, False)
    new = commits_after(spark, path, before)
    after = new[-1].version if new else current_version(spark, path)
    rows = sum(rows_added(commit.operation_metrics) or 0 for commit in new)
    return WriteResult(declaration.name, after, rows, after != before)


def _save(spark, config, declaration: TableDeclaration, df: DataFrame, commit: Commit, mode: str) -> WriteResult:
    rows = check_schema(df, declaration)
    path = ensure_table(spark, config, declaration, schema=rows.schema)
    before = current_version(spark, path)
    done = NOT_APPLICABLE
    if mode == "append" and commit.transaction is not None:
        # The transaction's version from the table's checksum, not from a rebuilt table state (1 s a write).
        done = append_once(rows, path, commit.transaction.app_id, commit.transaction.version, commit.message())
    if done == NOT_APPLICABLE:
        options = writer_options(commit)
        if declaration.schema is None and mode == "overwrite":
            options["overwriteSchema"] = "true"  # its columns are whatever its definition produces now
        rows.write.format("delta").options(**options).mode(mode).save(path)
    faults.after_commit(declaration.name)
    return write_result(spark, declaration, path, before)


def overwrite_table(
    spark: SparkSession,
    config: LakehouseConfig,
    declaration: TableDeclaration,
    df: DataFrame,
    commit: Commit,
) -> WriteResult:
    """Replace the table's contents in one commit (the old version stays readable by time travel)."""
    return _save(spark, config, declaration, df, commit, "overwrite")


def append_rows(
    spark: SparkSession,
    config: LakehouseConfig,
    declaration: TableDeclaration,
    df: DataFrame,
    commit: Commit,
) -> WriteResult:
    """Append rows in one commit; with a transaction, a replay of the same write commits nothing."""
    return _save(spark, config, declaration, df, commit, "append")


def insert_new_rows(
    spark: SparkSession,
    config: LakehouseConfig,
    declaration: TableDeclaration,
    df: DataFrame,
    commit: Commit,
) -> WriteResult:
    """MERGE ``df`` into the table, inserting only rows whose declared keys are not there yet.

    ``df`` must hold at most one row per key. MERGE (not a blind append) so that Delta's conflict
    detection protects the keys against a concurrent writer.
    """
    if not declaration.keys:
        raise ValueError(f"{declaration.name} declares no keys to merge on")
    rows = check_schema(df, declaration)
    path = ensure_table(spark, config, declaration, schema=rows.schema)
    before = current_version(spark, path)
    condition = " AND ".join(f"target.{key} = source.{key}" for key in declaration.keys)
    with commit_context(spark, commit):
        (
            DeltaTable.forPath(spark, path)
            .alias("target")
            .merge(rows.alias("source"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )
    faults.after_commit(declaration.name)
    return write_result(spark, declaration, path, before)
