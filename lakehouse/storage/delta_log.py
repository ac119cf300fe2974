"""A table's version and its recent commits, read from its transaction log by Delta's own ``DeltaLog``
without running a Spark job.

``DeltaTable.history()`` answers the same questions through a DataFrame, and each call costs a Spark job
(about 0.35 s on a 2-core machine, measured 2026-12-02). The writer asks them two or three times per commit,
and the pipeline hundreds of times per run. ``DeltaLog.update()`` lists the log from its last checkpoint
(through the table's own file system, so s3a works as local paths do) and reads the state from the checksum
file Delta writes with each commit; ``getChanges`` reads only the commit files asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class CommitSummary:
    """One commit as its ``commitInfo`` action records it."""

    version: int
    operation: str | None
    operation_metrics: dict[str, str] = field(default_factory=dict)
    operation_parameters: dict[str, str] = field(default_factory=dict)
    user_metadata: str | None = None
    added_files: tuple[str, ...] = ()  # absolute paths of the data files it added (when asked for)
    files_have_deletions: bool = False  # some added file carries a deletion vector (rows not in it alone)


def _delta_log(spark: SparkSession, path: str):
    return spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)


def _snapshot(spark: SparkSession, path: str):
    """The table's latest snapshot, after listing its log (version -1 when there is no table)."""
    none = spark._jvm.scala.Option.empty()
    return _delta_log(spark, path).update(False, none, none)


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The latest committed version of the Delta table at ``path``; ``None`` when none is there."""
    version = _snapshot(spark, path).version()
    return None if version < 0 else int(version)


def file_count(spark: SparkSession, path: str) -> int:
    """How many data files the latest version of the table at ``path`` holds (0 when it has no version):
    from the commit's checksum file when Delta wrote one, else from the table's state."""
    snapshot = _snapshot(spark, path)
    if snapshot.version() < 0:
        return 0
    checksum = snapshot.checksumOpt()  # numOfFiles() would rebuild the table's state (Spark jobs) to count them
    return int(checksum.get().numFiles() if checksum.isDefined() else snapshot.numOfFiles())


def commits_after(spark: SparkSession, path: str, version: int | None, with_files: bool = False) -> list[CommitSummary]:
    """The commits after ``version`` (all of them for ``None``), oldest first, from their commit files;
    ``with_files`` also lists the data files each one added."""
    start = 0 if version is None else version + 1
    latest = latest_version(spark, path)
    if latest is None or latest < start:
        return []
    log = _delta_log(spark, path)
    changes = log.getChanges(start, spark._jvm.scala.Option.empty(), False)
    summaries = []
    while changes.hasNext():
        entry = changes.next()
        actions = entry._2().iterator()
        info: dict = {}
        added: list[str] = []
        deletions = False
        while actions.hasNext():
            action = actions.next()
            kind = action.getClass().getSimpleName()
            if kind == "CommitInfo":
                info = json.loads(action.json()).get("commitInfo", {})
                if not with_files:
                    break
            elif kind == "AddFile" and with_files:
                added.append(action.absolutePath(log).toString())
                deletions = deletions or action.deletionVector() is not None
        summaries.append(
            CommitSummary(
                version=int(entry._1()),
                operation=info.get("operation"),
                operation_metrics=dict(info.get("operationMetrics") or {}),
                operation_parameters=dict(info.get("operationParameters") or {}),
                user_metadata=info.get("userMetadata"),
                added_files=tuple(added),
                files_have_deletions=deletions,
            )
        )
    return summaries


def is_partitioned(spark: SparkSession, path: str) -> bool:
    """Whether the table at ``path`` (which must exist) has partition columns."""
    return not _snapshot(spark, path).metadata().partitionColumns().isEmpty()
