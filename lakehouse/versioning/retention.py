"""VACUUM with a per-layer policy from ``conf/`` that never deletes files a tagged version needs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.project.config import LakehouseConfig
from lakehouse.storage.catalog import current_version, table_exists
from lakehouse.versioning.tags import list_tags

# Files a later commit removes carry the time that commit prepared its actions; a writer that started
# before the tagged version was committed can stamp them slightly earlier. Keep this much more.
DEFAULT_MARGIN_HOURS = 1.0
# Delta 4 refuses retentions under 7 days unless told the caller knows (the plan is that knowledge),
# and by default ignores any non-zero retention argument in favour of a table property.
VACUUM_CONF = {
    "spark.databricks.delta.retentionDurationCheck.enabled": "false",
    "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false",
}


@dataclass(frozen=True)
class VacuumPlan:
    table: str
    policy_hours: float
    retention_hours: float
    protected_tags: tuple[str, ...]


def first_removal_after(spark: SparkSession, path: str, version: int) -> int | None:
    """Earliest ``deletionTimestamp`` (ms) of a file removed by a commit after ``version``, from the log."""
    latest = current_version(spark, path)
    commits = [f"{path}/_delta_log/{v:020d}.json" for v in range(version + 1, (latest or version) + 1)]
    if not commits:
        return None
    log = spark.read.json(commits)
    if "remove" not in log.columns:
        return None
    return log.select(F.min("remove.deletionTimestamp")).first()[0]


def plan_vacuum(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str,
    now: datetime | None = None,
    margin_hours: float = DEFAULT_MARGIN_HOURS,
) -> VacuumPlan:
    """The retention to vacuum ``table`` with: the layer's policy, stretched to keep every tagged version.

    VACUUM deletes files whose removal is older than the retention. A tagged version's files can only
    have been removed by later commits, so the retention must reach back (plus a margin) to the first
    removal after the oldest tagged version, read from the log; files removed before it may go.
    """
    declaration = config.table(table)
    path = config.table_path(declaration.name)
    policy = config.retention.hours_for(declaration.layer)
    tags = list_tags(spark, config, declaration.name)
    retention = policy
    if tags:
        removed_ms = first_removal_after(spark, path, min(t.version for t in tags))
        if removed_ms is not None:
            now_ms = (now or datetime.now(timezone.utc)).timestamp() * 1000
            retention = max(policy, (now_ms - removed_ms) / 3_600_000 + margin_hours)
    # Delta rounds the retention to whole hours; rounding down could delete a tagged version's files.
    retention = float(math.ceil(retention))
    return VacuumPlan(declaration.name, policy, retention, tuple(t.tag for t in tags))


def vacuum_table(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str,
    dry_run: bool = False,
    margin_hours: float = DEFAULT_MARGIN_HOURS,
) -> VacuumPlan:
    """VACUUM ``table`` by :func:`plan_vacuum`; with ``dry_run`` only return the plan."""
    path = config.table_path(config.table(table).name)
    if not table_exists(spark, path):
        raise ValueError(f"{table} does not exist yet")
    plan = plan_vacuum(spark, config, table, margin_hours=margin_hours)
    if dry_run:
        return plan
    previous = {key: spark.conf.get(key, None) for key in VACUUM_CONF}
    for key, value in VACUUM_CONF.items():
        spark.conf.set(key, value)
    try:
        DeltaTable.forPath(spark, path).vacuum(plan.retention_hours)
    finally:
        for key, value in previous.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)
    return plan
