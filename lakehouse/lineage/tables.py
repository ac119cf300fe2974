"""Table-to-table lineage, read back from the job/run/inputs every commit records in ``userMetadata``."""

from __future__ import annotations

from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.project.config import LakehouseConfig
from lakehouse.storage.catalog import current_version
from lakehouse.versioning.history import commit_metadata

SOURCE_FILE_SAMPLE = 5


@dataclass
class LineageNode:
    """One table version, the commit that produced it, and what it was built from."""

    table: str
    version: int
    job: str | None = None
    run_id: str | None = None
    inputs: list["LineageNode"] = field(default_factory=list)
    source_files: int | None = None
    source_file_sample: list[str] = field(default_factory=list)


class _SparkLog:
    """The Delta log and files read through Spark (any file system the session reaches)."""

    def __init__(self, spark: SparkSession):
        self.spark = spark

    def latest(self, config: LakehouseConfig, table: str) -> int | None:
        return current_version(self.spark, config.table_path(table))

    def producing_metadata(self, config: LakehouseConfig, table: str, version: int) -> str | None:
        commits = (
            DeltaTable.forPath(self.spark, config.table_path(table))
            .history()
            .where(F.col("version") <= version)
            .where(F.col("userMetadata").isNotNull())
            .orderBy(F.col("version").desc())
            .limit(1)
            .collect()
        )
        return commits[0].userMetadata if commits else None

    def source_files(self, config: LakehouseConfig, table: str, version: int) -> list[str]:
        files = (
            self.spark.read.format("delta")
            .option("versionAsOf", version)
            .load(config.table_path(table))
            .where(F.col("source_file").isNotNull())
            .select("source_file")
            .distinct()
            .orderBy("source_file")
        )
        return [r.source_file for r in files.collect()]


class _DeltaRsLog:
    """The same, read with delta-rs and pyarrow: no JVM (local tables)."""

    def latest(self, config: LakehouseConfig, table: str) -> int | None:
        from lakehouse.loaders.delta_files import latest_version

        try:
            return latest_version(config, table)
        except FileNotFoundError:
            return None

    def producing_metadata(self, config: LakehouseConfig, table: str, version: int) -> str | None:
        from lakehouse.loaders.delta_files import open_delta_table

        commits = open_delta_table(config.table_path(table)).history()
        recorded = [c for c in commits if c.get("version", -1) <= version and c.get("userMetadata")]
        return max(recorded, key=lambda c: c["version"])["userMetadata"] if recorded else None

    def source_files(self, config: LakehouseConfig, table: str, version: int) -> list[str]:
        from lakehouse.loaders.delta_files import read_version

        column = read_version(config, table, version, ["source_file"]).column("source_file")
        return sorted(name for name in set(column.to_pylist()) if name is not None)


def table_lineage(
    spark: SparkSession | None, config: LakehouseConfig, table: str, version: int | None = None
) -> LineageNode:
    """The lineage tree of ``table`` at ``version`` (default latest), down to bronze's source files.
    Producing commits are the newest at or before each version that a job recorded (which skips e.g. table
    creation). ``spark`` ``None``: read with delta-rs, in a process that has no JVM (a training job)."""
    return _lineage(_SparkLog(spark) if spark is not None else _DeltaRsLog(), config, table, version)


def _lineage(log, config: LakehouseConfig, table: str, version: int | None) -> LineageNode:
    declaration = config.table(table)
    version = log.latest(config, declaration.name) if version is None else version
    if version is None:
        raise ValueError(f"{declaration.name} does not exist yet")
    node = LineageNode(declaration.name, version)
    metadata = log.producing_metadata(config, declaration.name, version)
    if metadata is not None:
        meta = commit_metadata(metadata)
        node.job, node.run_id = meta.get("job"), meta.get("run_id")
        for upstream, upstream_version in sorted((meta.get("inputs") or {}).items()):
            if upstream_version is not None and upstream != declaration.name:
                node.inputs.append(_lineage(log, config, upstream, int(upstream_version)))
    if "source_file" in declaration.schema.names and not node.inputs:
        files = log.source_files(config, declaration.name, version)
        node.source_files = len(files)
        node.source_file_sample = files[:SOURCE_FILE_SAMPLE]
    return node


def format_lineage(node: LineageNode, depth: int = 0) -> str:
    """The tree as indented text: each upstream one level deeper, marked ``<-``."""
    pad = "    " * depth
    made_by = f"  ({node.job}, run {node.run_id})" if node.job else ""
    lines = [f"{pad}{'<- ' if depth else ''}{node.table}@{node.version}{made_by}"]
    lines += [format_lineage(upstream, depth + 1) for upstream in node.inputs]
    if node.source_files is not None:
        inner = "    " * (depth + 1)
        lines.append(f"{inner}<- {node.source_files} source files, e.g.")
        lines += [f"{inner}     {name}" for name in node.source_file_sample]
    return "\n".join(lines)
