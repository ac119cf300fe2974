"""Table-to-table lineage, read back from the job/run/inputs every commit records in ``userMetadata``."""

from __future__ import annotations

from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.catalog import current_version
from lakehouse.config import LakehouseConfig
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


def _producing_commit(spark: SparkSession, path: str, version: int):
    """The newest commit at or before ``version`` that a job recorded (skips e.g. table creation)."""
    commits = (
        DeltaTable.forPath(spark, path)
        .history()
        .where(F.col("version") <= version)
        .where(F.col("userMetadata").isNotNull())
        .orderBy(F.col("version").desc())
        .limit(1)
        .collect()
    )
    return commits[0] if commits else None


def table_lineage(spark: SparkSession, config: LakehouseConfig, table: str, version: int | None = None) -> LineageNode:
    """The lineage tree of ``table`` at ``version`` (default latest), down to bronze's source files."""
    declaration = config.table(table)
    path = config.table_path(declaration.name)
    version = current_version(spark, path) if version is None else version
    if version is None:
        raise ValueError(f"{declaration.name} does not exist yet")
    node = LineageNode(declaration.name, version)
    commit = _producing_commit(spark, path, version)
    if commit is not None:
        meta = commit_metadata(commit.userMetadata)
        node.job, node.run_id = meta.get("job"), meta.get("run_id")
        for upstream, upstream_version in sorted((meta.get("inputs") or {}).items()):
            if upstream_version is not None and upstream != declaration.name:
                node.inputs.append(table_lineage(spark, config, upstream, int(upstream_version)))
    if "source_file" in declaration.schema.names and not node.inputs:
        files = (
            spark.read.format("delta").option("versionAsOf", version).load(path)
            .select("source_file").distinct().orderBy("source_file")
        )
        node.source_files = files.count()
        node.source_file_sample = [r.source_file for r in files.limit(SOURCE_FILE_SAMPLE).collect()]
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
