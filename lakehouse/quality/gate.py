"""Run a table's suite with Great Expectations (Spark data source, ValidationDefinition, Checkpoint).

The rows a ``quarantine`` rule rejects are selected with the condition Great Expectations itself
reports for that rule (``unexpected_index_query``), so the rule is written once, in the suite file.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse import quality as _quality  # noqa: F401  (sets GX environment before import)
from lakehouse.quality.suites import Rule, Suite, SuiteError

# Counts and the failing rows' condition for every rule; with samples (for the Data Docs site) also a few
# failing values and their counts, which cost Great Expectations two more Spark jobs per row-level rule.
RESULT_FORMAT = {"result_format": "SUMMARY", "return_unexpected_index_query": True, "partial_unexpected_count": 5}
RESULT_FORMAT_WITHOUT_SAMPLES = {
    "result_format": "BASIC",
    "return_unexpected_index_query": True,
    "partial_unexpected_count": 0,
}


class QualityGateError(RuntimeError):
    """A ``fail`` rule failed: nothing was published. ``report`` holds every rule's outcome (the failed
    row-level rules' conditions select the rows that failed them)."""

    def __init__(self, message: str, report: "GateReport | None" = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class RuleOutcome:
    """What one rule found."""

    rule: Rule
    success: bool
    rows_checked: int | None
    rows_failing: int | None
    observed: str | None
    condition: str | None  # Spark SQL selecting the failing rows (row-level rules that failed)


@dataclass(frozen=True)
class GateReport:
    """Every rule's outcome for one validation of one table."""

    table: str
    rows_checked: int
    outcomes: tuple[RuleOutcome, ...]
    docs_index: str | None = None

    def failures(self, action: str) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.success and o.rule.action == action]

    @property
    def passed(self) -> bool:
        """False when any ``fail`` rule failed."""
        return not self.failures("fail")

    def describe_failures(self) -> str:
        return "; ".join(
            f"{o.rule.name} ({o.rule.expectation}): "
            f"{o.rows_failing if o.rows_failing is not None else o.observed} failing"
            for o in self.failures("fail")
        )


@lru_cache(maxsize=None)
def _file_context(root: str):
    """A file-backed GX context under ``root`` (it keeps suites, results and the Data Docs site)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.variables.save()
    return context


def build_data_docs(root: str) -> Path:
    """Render the static Data Docs site under ``root`` from every stored validation result."""
    _file_context(root).build_data_docs()
    return data_docs_index(root)


def data_docs_index(root: str) -> Path:
    """Where the static Data Docs site's index page is written."""
    return Path(root) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def resolve_runtime_kwargs(rule: Rule, previous_rows: int | None, now: datetime) -> dict:
    """Turn ``*_ratio_of_previous`` and ``max_age_hours`` into the bounds GX understands."""
    runtime = rule.runtime_kwargs
    resolved: dict = {}
    if "max_age_hours" in runtime:
        oldest = now - timedelta(hours=float(runtime["max_age_hours"]))
        resolved["min_value"] = oldest.replace(tzinfo=None)
    if previous_rows is not None:
        if "min_ratio_of_previous" in runtime:
            resolved["min_value"] = int(previous_rows * float(runtime["min_ratio_of_previous"]))
        if "max_ratio_of_previous" in runtime:
            resolved["max_value"] = int(previous_rows * float(runtime["max_ratio_of_previous"])) + 1
    elif {"min_ratio_of_previous", "max_ratio_of_previous"} & set(runtime):
        resolved["min_value"] = 0  # first version: nothing to compare with
    return resolved


def validate(
    df: DataFrame,
    suite: Suite,
    quality_root: str,
    previous_rows: int | None = None,
    now: datetime | None = None,
    build_docs: bool = True,
    failing_samples: bool = True,
) -> GateReport:
    """Validate ``df`` against ``suite`` with a GX Checkpoint and return every rule's outcome.

    ``previous_rows`` is the row count of the table's previous version (for ratio bounds).
    The Checkpoint also updates the Data Docs site under ``quality_root`` when ``build_docs``; the stored
    results list a few failing values per rule when ``failing_samples`` (what the site shows).
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    now = now or datetime.now(timezone.utc)
    context = _file_context(quality_root)
    name = suite.table
    expectations = [rule.to_expectation(**resolve_runtime_kwargs(rule, previous_rows, now)) for rule in suite.rules]
    gx_suite = context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
    # persist=False: callers hand over DataFrames they persisted themselves (and unpersist after); GX's own
    # persist would cache a second copy and never release it
    source = context.data_sources.add_or_update_spark(name="lakehouse", persist=False)
    asset = source.get_asset(name) if name in source.get_asset_names() else source.add_dataframe_asset(name=name)
    try:
        batch_definition = asset.get_batch_definition("whole")
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite)
    )
    actions = [UpdateDataDocsAction(name="update_data_docs")] if build_docs else []
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=actions,
            result_format=RESULT_FORMAT if failing_samples else RESULT_FORMAT_WITHOUT_SAMPLES,
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": df})
    (validation,) = result.run_results.values()
    by_rule = {r.expectation_config.meta["rule"]: r for r in validation.results}
    outcomes = tuple(_outcome(rule, by_rule[rule.name]) for rule in suite.rules)
    rows = next((o.rows_checked for o in outcomes if o.rows_checked is not None), None)
    return GateReport(
        table=name,
        rows_checked=rows if rows is not None else df.count(),
        outcomes=outcomes,
        docs_index=str(data_docs_index(quality_root)) if build_docs else None,
    )


def _outcome(rule: Rule, result) -> RuleOutcome:
    details = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        raise SuiteError(
            f"rule {rule.name!r} ({rule.expectation}) could not run: {result.exception_info['exception_message']}"
        )
    condition = None
    if not result.success and rule.action == "quarantine":
        condition = failing_rows_condition(rule, details.get("unexpected_index_query"))
    elif not result.success and rule.action == "fail" and details.get("unexpected_index_query"):
        try:  # which rows a refused batch's failing rule found (to name their files): best effort
            condition = failing_rows_condition(rule, details.get("unexpected_index_query"))
        except SuiteError:
            condition = None
    observed = details.get("observed_value")
    return RuleOutcome(
        rule=rule,
        success=bool(result.success),
        rows_checked=details.get("element_count"),
        rows_failing=details.get("unexpected_count"),
        observed=None if observed is None else json.dumps(observed, default=str),
        condition=condition,
    )


def failing_rows_condition(rule: Rule, query: str | None) -> str:
    """Extract the SQL condition from GX's ``df.filter(F.expr('<condition>'))`` for a failed rule."""
    try:
        call = ast.parse(query or "", mode="eval").body
        (inner,) = call.args
        (literal,) = inner.args
        if (
            call.func.attr == "filter"
            and inner.func.attr == "expr"
            and isinstance(literal, ast.Constant)
            and isinstance(literal.value, str)
        ):
            return literal.value
    except (SyntaxError, ValueError, AttributeError):
        pass
    raise SuiteError(f"rule {rule.name!r}: Great Expectations gave no usable row condition ({query!r})")


def split_quarantined(df: DataFrame, report: GateReport) -> tuple[DataFrame, DataFrame]:
    """``(kept, flagged)``: ``flagged`` are the rows failing any quarantine rule, with the rule names.

    ``flagged`` has the columns of ``df`` plus ``failed_rules`` (array of rule names, suite order).
    Every row of ``df`` is in exactly one of the two.
    """
    failed = report.failures("quarantine")
    if not failed:
        return df, df.limit(0).withColumn("failed_rules", F.array().cast("array<string>"))
    checks: list[Column] = [F.when(F.coalesce(F.expr(o.condition), F.lit(False)), F.lit(o.rule.name)) for o in failed]
    tagged = df.withColumn("failed_rules", F.filter(F.array(*checks), lambda name: name.isNotNull()))
    is_flagged = F.size("failed_rules") > 0
    return tagged.where(~is_flagged).drop("failed_rules"), tagged.where(is_flagged)
