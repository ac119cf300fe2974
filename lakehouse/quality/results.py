"""Append a gate's outcome, one row per rule, to ``quality.results``."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.tables import RESULTS_TABLE
from lakehouse.quality.gate import GateReport, RuleOutcome
from lakehouse.storage.local_rows import local_rows
from lakehouse.storage.writer import Commit, WriteResult, append_rows

RESULTS = RESULTS_TABLE


def outcome_label(outcome: RuleOutcome) -> str:
    """passed, or what the rule's action did about the failure."""
    if outcome.success:
        return "passed"
    return {"warn": "warned", "quarantine": "quarantined", "fail": "failed"}[outcome.rule.action]


def record_results(
    spark: SparkSession,
    config: LakehouseConfig,
    report: GateReport,
    commit: Commit,
    version_checked: int | None,
) -> WriteResult:
    """Append one ``quality.results`` row per rule of ``report`` (idempotent with the commit's transaction)."""
    checked_at = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [
        (
            commit.run_id,
            commit.job,
            report.table,
            version_checked,
            checked_at,
            o.rule.name,
            o.rule.expectation,
            o.rule.action,
            o.rows_checked,
            o.rows_failing,
            o.success,
            outcome_label(o),
            o.observed,
        )
        for o in report.outcomes
    ]
    df = local_rows(spark, rows, RESULTS.schema)  # one partition: one file per append
    return append_rows(spark, config, RESULTS, df, commit)
