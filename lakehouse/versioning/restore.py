"""Roll a table back to an earlier version or tag, as a new version (history is never rewritten)."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.engine.job import new_run_id
from lakehouse.project.config import LakehouseConfig
from lakehouse.storage.catalog import current_version
from lakehouse.storage.writer import Commit, commit_context
from lakehouse.versioning.tags import list_tags, resolve_tag


class RestoreRefused(RuntimeError):
    """The restore would move the table behind a tagged version; ``force`` overrides."""


def restore_table(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str,
    version: int | None = None,
    tag: str | None = None,
    force: bool = False,
) -> int:
    """Make ``version`` (or the tag's version) the table's content again; return the new version.

    Refused when a tag points past the target (the tagged version would no longer be what readers
    get, which is usually a mistake): pass ``force=True`` to restore anyway. Tagged versions stay
    readable either way: a restore is a new commit.
    """
    declaration = config.table(table)
    if (version is None) == (tag is None):
        raise ValueError("give a version or a tag to restore to")
    if tag is not None:
        version = resolve_tag(spark, config, declaration.name, tag)
    path = config.table_path(declaration.name)
    latest = current_version(spark, path)
    if latest is None or not 0 <= version <= latest:
        raise ValueError(f"{declaration.name} has no version {version} (latest: {latest})")
    later_tags = [t for t in list_tags(spark, config, declaration.name) if t.version > version]
    if later_tags and not force:
        named = ", ".join(f"{t.tag}@{t.version}" for t in later_tags)
        raise RestoreRefused(
            f"{declaration.name}: tags point past version {version} ({named}); restore with force to do it anyway"
        )
    commit = Commit("restore", new_run_id("restore"), {declaration.name: version})
    with commit_context(spark, commit):
        DeltaTable.forPath(spark, path).restoreToVersion(version)
    return current_version(spark, path)
