"""A table's versions: what each commit did, which job run made it, and rows added and removed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.project.config import LakehouseConfig
from lakehouse.storage.writer import rows_added

REMOVED_ROW_METRICS = ("numTargetRowsDeleted", "numDeletedRows")


@dataclass(frozen=True)
class VersionInfo:
    version: int
    timestamp: datetime
    operation: str
    job: str | None
    run_id: str | None
    inputs: dict
    rows_added: int | None
    rows_removed: int | None
    rows_total: int


def commit_metadata(user_metadata: str | None) -> dict:
    """The job/run/inputs JSON the writer stores in ``userMetadata`` ({} for foreign commits)."""
    try:
        parsed = json.loads(user_metadata) if user_metadata else {}
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def rows_at(spark: SparkSession, path: str, version: int) -> int:
    """Row count of one version (Delta answers from its file statistics, without a scan)."""
    return spark.read.format("delta").option("versionAsOf", version).load(path).count()


def table_history(
    spark: SparkSession, config: LakehouseConfig, table: str, limit: int | None = None
) -> list[VersionInfo]:
    """Newest version first. Rows removed by an overwrite or restore are the previous version's rows."""
    path = config.table_path(config.table(table).name)
    commits = DeltaTable.forPath(spark, path).history(limit).orderBy("version").collect()
    history, previous_total = [], None
    for commit in commits:
        metrics = commit.operationMetrics or {}
        meta = commit_metadata(commit.userMetadata)
        total = rows_at(spark, path, commit.version)
        added = rows_added(metrics)
        removed = next((int(metrics[m]) for m in REMOVED_ROW_METRICS if metrics.get(m) is not None), None)
        replaces_all = commit.operation == "RESTORE" or (commit.operationParameters or {}).get("mode") == "Overwrite"
        if previous_total is not None and replaces_all:
            added, removed = total, previous_total
        if added is None and previous_total is not None:
            added = max(total - previous_total, 0)
        history.append(
            VersionInfo(
                version=commit.version,
                timestamp=commit.timestamp,
                operation=commit.operation,
                job=meta.get("job"),
                run_id=meta.get("run_id"),
                inputs=meta.get("inputs") or {},
                rows_added=added,
                rows_removed=removed if removed is not None else (0 if previous_total is not None else None),
                rows_total=total,
            )
        )
        previous_total = total
    return list(reversed(history))


def format_history(history: list[VersionInfo]) -> str:
    header = f"{'version':>7}  {'timestamp':<19}  {'operation':<22} {'added':>8} {'removed':>8} {'rows':>9}  job / run"
    lines = [header, "-" * len(header)]
    for v in history:

        def num(x):
            return "-" if x is None else f"{x:,}"

        who = f"{v.job or '-'} / {v.run_id or '-'}"
        lines.append(
            f"{v.version:>7}  {v.timestamp:%Y-%m-%d %H:%M:%S}  {v.operation:<22} {num(v.rows_added):>8} "
            f"{num(v.rows_removed):>8} {v.rows_total:>9,}  {who}"
        )
    return "\n".join(lines)
