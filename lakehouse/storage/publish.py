"""The shared writer jobs hand their results to: quality gate, quarantine, commit, results.

- :func:`publish_rows` (bronze and silver increments): validate the rows, move the rows failing a
  ``quarantine`` rule to the table's quarantine table, stop on a failing ``fail`` rule, commit the rest.
- :func:`publish_table` (gold, write-audit-publish): stage the new contents (computed once, held by Spark),
  audit the staged rows, and only then overwrite the published table with them; a failing audit leaves it
  untouched and writes the refused contents to a staging table to look at.

Either way every rule's outcome is appended to ``quality.results``, and for every validated table
``rows in = rows kept + rows quarantined``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import reduce
from typing import Callable, Union

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.install.paths import CACHE_DIR
from lakehouse.project.config import LakehouseConfig
from lakehouse.project.tables import TableDeclaration
from lakehouse.quality.gate import GateReport, QualityGateError, split_quarantined, validate
from lakehouse.quality.results import record_results
from lakehouse.quality.suites import load_suite
from lakehouse.storage import quarantine
from lakehouse.storage.catalog import current_version
from lakehouse.storage.writer import (
    Commit,
    WriteResult,
    append_rows,
    check_schema,
    ensure_table,
    insert_new_rows,
    overwrite_table,
)

MODES = ("append", "insert_new")
# A custom commit step (e.g. a MERGE): (spark, config, declaration, kept rows, commit) -> WriteResult.
Writer = Callable[[SparkSession, LakehouseConfig, TableDeclaration, DataFrame, Commit], WriteResult]


@dataclass(frozen=True)
class PublishResult:
    """What publishing did: the table write, the quarantine write and the gate's report."""

    write: WriteResult
    quarantine: WriteResult | None
    report: GateReport | None
    rows_in: int
    rows_quarantined: int


def quality_root(config: LakehouseConfig) -> str:
    """Folder of the Great Expectations project (suites run, results, Data Docs): beside the warehouse, or
    on this machine (``.cache/quality/<warehouse hash>``) when the warehouse is on object storage, which
    Great Expectations' file stores cannot write. The results themselves are in ``quality.results`` either way."""
    warehouse = config.warehouse.removeprefix("file:")
    if "://" in warehouse:
        return str(CACHE_DIR / "quality" / hashlib.sha1(warehouse.encode()).hexdigest()[:10])
    return config.warehouse + "/_quality"


def staging_path(config: LakehouseConfig, declaration: TableDeclaration) -> str:
    """Where write-audit-publish leaves the contents an audit refused, to be looked at."""
    return f"{config.warehouse}/_staging/{declaration.layer}/{declaration.short_name}"


def gate_rejects(flagged: DataFrame, commit: Commit) -> DataFrame:
    """Gate-flagged rows as quarantine rows (:mod:`lakehouse.storage.quarantine`): the row as JSON, the rules it failed
    (the first as the rule), the commit's inputs as the source."""
    source = ", ".join(f"{table}@{version}" for table, version in sorted(commit.inputs.items())) or None
    reason = F.concat(F.lit("expectation_failed:"), F.array_join("failed_rules", ","))
    protocol = quarantine.reject(reason, rule=F.element_at("failed_rules", 1))
    marked = flagged.select(*[c for c in flagged.columns if c != "failed_rules"], *protocol.values())
    return quarantine.quarantine_rows(marked, "expectation", source, commit.run_id)


def _gate(
    spark: SparkSession,
    config: LakehouseConfig,
    declaration: TableDeclaration,
    df: DataFrame,
    commit: Commit,
    previous_rows: int | None = None,
) -> tuple[GateReport | None, DataFrame, DataFrame | None]:
    """Validate; on a failed ``fail`` rule record the results and raise. Returns (report, kept, flagged)."""
    suite = load_suite(declaration, columns=df.columns)
    if suite is None or not suite.rules or not config.quality.enabled:
        return None, df, None
    report = validate(
        df,
        suite,
        quality_root(config),
        previous_rows=previous_rows,
        build_docs=config.quality.data_docs and config.quality.docs_per_validation,
        failing_samples=config.quality.data_docs,
    )
    if not report.passed:
        # A refused attempt is logged on its own (no transaction): the replay that follows must still
        # be able to record its results under the batch's transaction.
        record_results(spark, config, report, replace(commit, transaction=None), version_checked=None)
        raise QualityGateError(f"{declaration.name}: not published, failed rules: {report.describe_failures()}", report)
    kept, flagged = split_quarantined(df, report)
    return report, kept, (flagged if report.failures("quarantine") else None)


def publish_rows(
    spark: SparkSession,
    config: LakehouseConfig,
    declaration: TableDeclaration,
    df: DataFrame,
    commit: Commit,
    mode: Union[str, Writer] = "append",
    rejected: DataFrame | None = None,
    commit_empty: bool = False,
) -> PublishResult:
    """Gate ``df`` and commit it (``append``, ``insert_new`` = MERGE on the declared keys, or a
    :data:`Writer` function that commits the kept rows its own way).

    ``rejected`` holds rows the caller already turned away (e.g. unparseable lines), in the quarantine
    schema; they go to the quarantine table in the same commit as the gate's own rejects. With a
    ``commit.transaction``, a replay after a crash commits nothing twice. No rows, no commit, unless
    ``commit_empty`` (a caller whose transaction versions follow the table's own versions needs one).
    """
    if not callable(mode) and mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} or a writer function")
    df = check_schema(df, declaration)
    cached_by_caller = df.storageLevel != StorageLevel.NONE  # the caller cached this very plan: reuse it
    if not cached_by_caller:
        df.persist()
    try:
        rows_in = df.count()
        report, kept, flagged = _gate(spark, config, declaration, df, commit) if rows_in else (None, df, None)
        parts = [rejected] if rejected is not None else []
        if flagged is not None:
            parts.append(gate_rejects(flagged, commit))
        quarantine_write = None
        rows_quarantined = 0
        if parts:
            to_quarantine = reduce(DataFrame.unionByName, parts).persist()
            rows_quarantined = to_quarantine.count()
            # Quarantine first: a crash between the two commits replays the batch, which then skips
            # this commit (same transaction) and classifies the rest exactly as before. Nothing to
            # quarantine, no commit (an empty append would still cost a Delta commit).
            if rows_quarantined:
                quarantine_write = append_rows(spark, config, declaration.quarantine, to_quarantine, commit)
            to_quarantine.unpersist()
        writer = mode if callable(mode) else append_rows if mode == "append" else insert_new_rows
        if rows_in or callable(mode) or commit_empty:  # a custom writer applies even an empty snapshot (it deletes)
            write = writer(spark, config, declaration, kept, commit)
        else:  # nothing new: no empty commit
            path = ensure_table(spark, config, declaration, schema=df.schema)
            write = WriteResult(declaration.name, current_version(spark, path), 0, False)
        if report is not None:
            record_results(spark, config, report, commit, version_checked=write.version)
        return PublishResult(write, quarantine_write, report, rows_in, rows_quarantined)
    finally:
        if not cached_by_caller:
            df.unpersist()


def publish_table(
    spark: SparkSession,
    config: LakehouseConfig,
    declaration: TableDeclaration,
    df: DataFrame,
    commit: Commit,
    rejected: DataFrame | None = None,
) -> PublishResult:
    """Write-audit-publish: stage ``df``, audit the staged rows, then replace the published table with them.

    The staged rows are computed once and held by Spark (in memory, spilling to local disk); the audit and
    the commit both read them. Readers never see unaudited data: until the audit passes, the published
    version is the old one. A failing ``fail`` rule raises :class:`QualityGateError`, leaves the published
    table untouched and overwrites :func:`staging_path` with the refused contents (named in the error).
    ``rejected`` holds rows the caller turned away, in the quarantine schema (appended with the gate's).
    """
    # Staged in Spark's storage, not in a Delta table: that cost a second write, its commit and a read back
    # of every gold table (about 1.2 s of a 7-9 s gold step here, measured 2026-12-07). Should a block be
    # lost, a rebuild gives the same rows: gold is computed from pinned input versions (tests/test_demo_lakehouse_e2e.py
    # checks it byte for byte).
    staged = check_schema(df, declaration).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _audit_and_publish(spark, config, declaration, staged, commit, rejected)
    except QualityGateError as refused:
        where = staging_path(config, declaration)
        staged.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(where)
        raise QualityGateError(f"{refused}; the refused contents are in {where}", refused.report) from refused
    finally:
        staged.unpersist()


def _audit_and_publish(
    spark, config, declaration: TableDeclaration, staged: DataFrame, commit: Commit, rejected: DataFrame | None
) -> PublishResult:
    published_path = config.table_path(declaration.name)
    previous_version = current_version(spark, published_path)
    previous_rows = spark.read.format("delta").load(published_path).count() if previous_version is not None else None
    rows_in = staged.count()
    report, kept, flagged = _gate(spark, config, declaration, staged, commit, previous_rows=previous_rows)
    quarantine_write = None
    rows_quarantined = 0
    parts = [
        part for part in (rejected, gate_rejects(flagged, commit) if flagged is not None else None) if part is not None
    ]
    if parts:
        to_quarantine = reduce(DataFrame.unionByName, parts)
        quarantine_write = append_rows(spark, config, declaration.quarantine, to_quarantine, commit)
        rows_quarantined = quarantine_write.rows_written
    write = overwrite_table(spark, config, declaration, kept, commit)
    if report is not None:
        record_results(spark, config, report, commit, version_checked=write.version)
    return PublishResult(write, quarantine_write, report, rows_in, rows_quarantined)
