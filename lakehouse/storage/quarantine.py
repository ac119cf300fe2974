"""The one quarantine protocol: how a builder says a row is turned away, and the row the quarantine keeps.

A builder returns its rows with a ``_reject_reason`` column (null: the row is good). Rows with a reason go
to the table's quarantine table (``<table>_quarantine``, columns in ``lakehouse/builtin/schemas/quarantine.yaml``)
as one row each: what to keep of the row (``_reject_record`` if the builder gives it, else the row as JSON),
the reason, the rule that turned it away (``_reject_rule``, else the builder's name), where it came from
(``_reject_source``, else the builder's inputs), when, and by which run. Nothing else builds quarantine rows.

What a quarantine keeps must be as private as the table it guards: a builder whose raw input holds personal
values gives a ``_reject_record`` with them masked or pseudonymised.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

REASON = "_reject_reason"
RECORD = "_reject_record"
RULE = "_reject_rule"
SOURCE = "_reject_source"
PROTOCOL_COLUMNS = (REASON, RECORD, RULE, SOURCE)
QUARANTINE_COLUMNS = ("record", "reason", "rule", "source", "quarantined_at", "run_id")


def _or_default(df: DataFrame, column: str, default: Column) -> Column:
    return F.coalesce(F.col(column).cast("string"), default) if column in df.columns else default


def data_columns(df: DataFrame) -> list[str]:
    """The columns of ``df`` that are data, not the protocol's."""
    return [c for c in df.columns if c not in PROTOCOL_COLUMNS]


def accepted(df: DataFrame) -> DataFrame:
    """The good rows of ``df`` (no ``_reject_reason``), without the protocol's columns."""
    rows = df.where(F.col(REASON).isNull()) if REASON in df.columns else df
    return rows.select(*data_columns(df))


def quarantine_rows(df: DataFrame, rule: str, source: str | None, run_id: str) -> DataFrame:
    """The rejected rows of ``df`` as quarantine rows (see the module doc)."""
    record = F.to_json(F.struct(*[F.col(c) for c in data_columns(df)]))
    return df.where(F.col(REASON).isNotNull()).select(
        _or_default(df, RECORD, record).alias("record"),
        F.col(REASON).cast("string").alias("reason"),
        _or_default(df, RULE, F.lit(rule)).alias("rule"),
        _or_default(df, SOURCE, F.lit(source).cast("string")).alias("source"),
        F.current_timestamp().alias("quarantined_at"),
        F.lit(run_id).alias("run_id"),
    )


def reject(
    reason: Column, record: Column | None = None, rule: str | Column | None = None, source: Column | None = None
) -> dict[str, Column]:
    """The protocol's columns for a builder's ``select``: ``df.select(*cols, *reject(...).values())``."""
    columns = {REASON: reason.cast("string").alias(REASON)}
    if record is not None:
        columns[RECORD] = F.when(reason.isNotNull(), record).cast("string").alias(RECORD)
    if rule is not None:
        columns[RULE] = (F.lit(rule) if isinstance(rule, str) else rule).cast("string").alias(RULE)
    if source is not None:
        columns[SOURCE] = source.cast("string").alias(SOURCE)
    return columns
