"""Named versions (tags) of tables, kept in the ``ops.tags`` Delta table so they survive restarts."""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.tables import TAGS_TABLE
from lakehouse.storage.catalog import current_version, read_table, table_exists
from lakehouse.storage.writer import Commit, ensure_table, insert_new_rows
from lakehouse.versioning.views import drop_tag_view, register_tag_view

TAGS = TAGS_TABLE
TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class TagError(ValueError):
    """A tag is malformed, unknown, taken, or points at a version that does not exist."""


@dataclass(frozen=True)
class Tag:
    table: str
    tag: str
    version: int
    created_at: datetime
    created_by: str | None
    note: str | None


def _tags_frame(spark: SparkSession, config: LakehouseConfig):
    path = config.table_path(TAGS.name)
    return spark.read.format("delta").load(path) if table_exists(spark, path) else None


def _tags_without_spark(config: LakehouseConfig, table: str | None) -> list[Tag]:
    from lakehouse.loaders.delta_files import read_version

    try:
        rows = read_version(config, TAGS.name).to_pylist()
    except FileNotFoundError:  # no tag was ever made
        return []
    name = config.table(table).name if table is not None else None
    rows = sorted(
        (r for r in rows if name is None or r["table_name"] == name),
        key=lambda r: (r["table_name"], r["version"], r["tag"]),
    )
    return [Tag(r["table_name"], r["tag"], r["version"], r["created_at"], r["created_by"], r["note"]) for r in rows]


def list_tags(spark: SparkSession | None, config: LakehouseConfig, table: str | None = None) -> list[Tag]:
    """Every tag (of ``table`` only, when given), oldest version first. ``spark`` ``None``: read
    ``ops.tags`` with delta-rs, in a process that has no JVM (a training job)."""
    if spark is None:
        return _tags_without_spark(config, table)
    frame = _tags_frame(spark, config)
    if frame is None:
        return []
    if table is not None:
        frame = frame.where(F.col("table_name") == config.table(table).name)
    rows = frame.orderBy("table_name", "version", "tag").collect()
    return [Tag(r.table_name, r.tag, r.version, r.created_at, r.created_by, r.note) for r in rows]


def resolve_tag(spark: SparkSession | None, config: LakehouseConfig, table: str, tag: str) -> int:
    """The version ``tag`` points at; ``TagError`` naming the table's tags when there is no such tag.
    ``spark`` ``None``: without a JVM (see :func:`list_tags`)."""
    tags = list_tags(spark, config, table)
    for found in tags:
        if found.tag == tag:
            return found.version
    known = ", ".join(t.tag for t in tags) or "none"
    raise TagError(f"{table} has no tag {tag!r} (its tags: {known})")


def read_tagged(spark: SparkSession, config: LakehouseConfig, table: str, tag: str) -> DataFrame:
    """``table`` as it was at the version ``tag`` names."""
    return read_table(spark, config, table, version=resolve_tag(spark, config, table, tag))


def create_tag(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str,
    tag: str,
    version: int | None = None,
    note: str | None = None,
    created_by: str | None = None,
) -> Tag:
    """Name ``version`` (default: the latest) of ``table``. Tags are immutable: a taken name is an error."""
    declaration = config.table(table)
    if not TAG_NAME.match(tag):
        raise TagError(f"bad tag name {tag!r}: letters, digits, '.', '_' and '-', starting with a letter or digit")
    latest = current_version(spark, config.table_path(declaration.name))
    if latest is None:
        raise TagError(f"{declaration.name} does not exist yet")
    version = latest if version is None else int(version)
    if not 0 <= version <= latest:
        raise TagError(f"{declaration.name} has versions 0..{latest}, not {version}")
    existing = {t.tag: t for t in list_tags(spark, config, declaration.name)}
    if tag in existing:
        raise TagError(f"{declaration.name} already has tag {tag!r} (version {existing[tag].version}); delete it first")
    created = Tag(
        declaration.name,
        tag,
        version,
        datetime.now(timezone.utc).replace(tzinfo=None),
        created_by or getpass.getuser(),
        note,
    )
    row = spark.createDataFrame([tuple(created.__dict__.values())], TAGS.schema)
    result = insert_new_rows(spark, config, TAGS, row, Commit("tag", f"tag:{declaration.name}:{tag}"))
    if not result.rows_written:  # a concurrent writer took the name between our check and the MERGE
        raise TagError(f"{declaration.name} already has tag {tag!r}")
    register_tag_view(spark, config, created)
    return created


def delete_tag(spark: SparkSession, config: LakehouseConfig, table: str, tag: str) -> None:
    """Remove a tag (the version itself stays until retention removes it)."""
    resolve_tag(spark, config, table, tag)
    path = ensure_table(spark, config, TAGS)
    DeltaTable.forPath(spark, path).delete((F.col("table_name") == config.table(table).name) & (F.col("tag") == tag))
    drop_tag_view(spark, config.table(table), tag)


def register_tag_views(spark: SparkSession, config: LakehouseConfig) -> list[str]:
    """A view for every tag in ``ops.tags``."""
    return [register_tag_view(spark, config, tag) for tag in list_tags(spark, config)]
