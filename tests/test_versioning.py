"""Tags, history, diffs, restore and retention on real Delta tables."""

import json
import os
import time
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from helpers import demo_table
from lakehouse.project.config import RetentionConfig
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.writer import Commit, append_rows, insert_new_rows, overwrite_table
from lakehouse.versioning.diff import diff_versions
from lakehouse.versioning.history import table_history
from lakehouse.versioning.restore import RestoreRefused, restore_table
from lakehouse.versioning.retention import plan_vacuum, vacuum_table
from lakehouse.versioning.tags import (
    TagError,
    create_tag,
    delete_tag,
    list_tags,
    read_tagged,
    register_tag_views,
    resolve_tag,
)

GOLD = demo_table("gold.user_activity_daily")
SILVER = demo_table("silver.events")


def activity(spark, rows):
    """gold rows from {user_key: n_events}."""
    return spark.createDataFrame([(user, date(2026, 11, 1), 1, n, n, 0, 0, 0) for user, n in rows.items()], GOLD.schema)


def gold_versions(spark, config, *contents):
    """Overwrite gold once per mapping; return the versions written."""
    return [
        overwrite_table(spark, config, GOLD, activity(spark, c), Commit("job", f"run-{i}")).version
        for i, c in enumerate(contents)
    ]


def age_removal(spark, path, removed_by, hours):
    """Rewrite commit ``removed_by`` so the files it removed look removed ``hours`` ago (log and disk)."""
    commit = Path(path) / "_delta_log" / f"{removed_by:020d}.json"
    then = time.time() - hours * 3600
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    for action in actions:
        if "remove" in action:
            action["remove"]["deletionTimestamp"] = int(then * 1000)
            os.utime(Path(path) / action["remove"]["path"], (then, then))
    commit.write_text("\n".join(json.dumps(a) for a in actions) + "\n")
    (commit.parent / f".{commit.name}.crc").unlink(missing_ok=True)  # the local file system's checksum
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


def users(df):
    return sorted((r.user_key, r.n_events) for r in df.collect())


def test_tags_read_by_version_tag_sql_and_survive_a_new_session(spark, config):
    v1, v2 = gold_versions(spark, config, {1: 1, 2: 2}, {1: 1, 2: 2, 3: 3})
    create_tag(spark, config, GOLD.name, "train-2026-11-20", version=v1, note="baseline")
    create_tag(spark, config, GOLD.name, "latest-good")
    assert resolve_tag(spark, config, GOLD.name, "latest-good") == v2
    assert list_tags(None, config) == list_tags(spark, config)  # delta-rs, no JVM: what a training process reads
    assert users(read_tagged(spark, config, GOLD.name, "train-2026-11-20")) == [(1, 1), (2, 2)]
    assert spark.sql("SELECT count(*) FROM gold.user_activity_daily__train_2026_11_20").first()[0] == 2
    assert spark.sql(f"SELECT count(*) FROM gold.user_activity_daily VERSION AS OF {v1}").first()[0] == 2

    # tags live in the ops.tags Delta table: a fresh catalog gets them back
    spark.sql("DROP VIEW IF EXISTS gold.user_activity_daily__train_2026_11_20")
    register_tag_views(spark, config)
    assert spark.sql("SELECT count(*) FROM gold.user_activity_daily__train_2026_11_20").first()[0] == 2
    assert [(t.tag, t.version, t.note) for t in list_tags(spark, config, GOLD.name)] == [
        ("train-2026-11-20", v1, "baseline"),
        ("latest-good", v2, None),
    ]

    with pytest.raises(TagError, match="already has tag"):
        create_tag(spark, config, GOLD.name, "latest-good", version=v1)
    with pytest.raises(TagError, match="versions 0..2, not 9"):
        create_tag(spark, config, GOLD.name, "future", version=9)
    with pytest.raises(TagError, match="bad tag name"):
        create_tag(spark, config, GOLD.name, "no spaces")
    delete_tag(spark, config, GOLD.name, "latest-good")
    with pytest.raises(TagError, match="its tags: train-2026-11-20"):
        resolve_tag(spark, config, GOLD.name, "latest-good")
    with pytest.raises(TagError, match="its tags: train-2026-11-20"):
        resolve_tag(None, config, GOLD.name, "latest-good")  # the deleted row stays deleted for delta-rs too


def test_history_shows_operation_run_and_rows_added_and_removed(spark, config):
    overwrite_table(spark, config, GOLD, activity(spark, {1: 1, 2: 2}), Commit("build", "run-a"))
    append_rows(spark, config, GOLD, activity(spark, {3: 3}), Commit("build", "run-b"))
    overwrite_table(spark, config, GOLD, activity(spark, {4: 4}), Commit("build", "run-c"))
    history = table_history(spark, config, GOLD.name)
    assert [v.version for v in history] == [3, 2, 1, 0]
    latest, appended, first = history[0], history[1], history[2]
    assert (latest.run_id, latest.rows_added, latest.rows_removed, latest.rows_total) == ("run-c", 1, 3, 1)
    assert (appended.operation, appended.rows_added, appended.rows_removed, appended.rows_total) == ("WRITE", 1, 0, 3)
    assert (first.job, first.rows_added, first.rows_total) == ("build", 2, 2)


def test_keyed_diff_counts_added_removed_changed(spark, config):
    v1, v2 = gold_versions(spark, config, {1: 1, 2: 2, 3: 3}, {1: 1, 2: 5, 4: 4})
    diff = diff_versions(spark, config, GOLD.name, v1, v2)
    assert diff.method == "keyed comparison"
    assert diff.counts() == {"added": 1, "removed": 1, "changed": 1}
    assert users(diff.added) == [(4, 4)] and users(diff.removed) == [(3, 3)]
    change = diff.changed.first()
    assert (change.user_key, change.before.n_events, change.after.n_events) == (2, 2, 5)
    assert diff_versions(spark, config, GOLD.name, v2, v1).counts() == {"added": 1, "removed": 1, "changed": 1}


def test_change_feed_diff_nets_out_changes_per_key(spark, config):
    def events(*ids):
        return spark.createDataFrame(
            [(i, 7, "view", 1, datetime(2026, 11, 1), date(2026, 11, 1), "f", datetime(2026, 11, 1)) for i in ids],
            SILVER.schema,
        )

    start = insert_new_rows(spark, config, SILVER, events("a", "b", "c"), Commit("job", "r1")).version
    insert_new_rows(spark, config, SILVER, events("d", "e"), Commit("job", "r2"))
    table = DeltaTable.forPath(spark, config.table_path(SILVER.name))
    table.delete("event_id IN ('a', 'e')")  # e: added then removed -> not in the diff
    table.update("event_id = 'b'", {"user_key": F.lit(8)})  # b: changed
    end = current_version(spark, config.table_path(SILVER.name))
    diff = diff_versions(spark, config, SILVER.name, start, end)
    assert diff.method == "change data feed"
    assert diff.counts() == {"added": 1, "removed": 1, "changed": 1}
    assert [r.event_id for r in diff.added.collect()] == ["d"]
    assert [r.event_id for r in diff.removed.collect()] == ["a"]
    change = diff.changed.first()
    assert (change.event_id, change.before.user_key, change.after.user_key) == ("b", 7, 8)


def test_restore_is_a_new_version_and_respects_tags(spark, config):
    v1, v2, v3 = gold_versions(spark, config, {1: 1}, {1: 1, 2: 2}, {1: 1, 2: 2, 3: 3})
    create_tag(spark, config, GOLD.name, "release", version=v2)
    with pytest.raises(RestoreRefused, match="release@2"):
        restore_table(spark, config, GOLD.name, version=v1)
    assert current_version(spark, config.table_path(GOLD.name)) == v3
    restored = restore_table(spark, config, GOLD.name, tag="release")
    assert restored == v3 + 1
    assert users(read_table(spark, config, GOLD.name)) == [(1, 1), (2, 2)]
    forced = restore_table(spark, config, GOLD.name, version=v1, force=True)
    assert users(read_table(spark, config, GOLD.name)) == [(1, 1)]
    assert users(read_table(spark, config, GOLD.name, version=v3)) == [(1, 1), (2, 2), (3, 3)]  # history intact
    assert table_history(spark, config, GOLD.name, limit=1)[0].operation == "RESTORE" and forced == restored + 1


def test_vacuum_keeps_tagged_versions_and_drops_untagged_old_ones(spark, config):
    config = replace(config, retention=RetentionConfig({"default": 0.0}))
    v1, v2, v3 = gold_versions(spark, config, {1: 1}, {2: 2}, {3: 3})
    # Delta's retention has a granularity of hours: make v1's files look removed three hours ago.
    age_removal(spark, config.table_path(GOLD.name), removed_by=v2, hours=3)
    create_tag(spark, config, GOLD.name, "keep-me", version=v2)
    plan = vacuum_table(spark, config, GOLD.name)
    assert plan.protected_tags == ("keep-me",) and plan.retention_hours == 2.0  # 1 h margin, rounded up
    assert users(read_tagged(spark, config, GOLD.name, "keep-me")) == [(2, 2)]
    assert users(read_table(spark, config, GOLD.name)) == [(3, 3)]
    with pytest.raises(Exception, match="(?i)not.?found|does not exist|FileNotFound|FAILED_READ_FILE"):
        read_table(spark, config, GOLD.name, version=v1).collect()


def test_vacuum_policy_comes_from_conf_per_layer(spark, config):
    gold_versions(spark, config, {1: 1})
    assert plan_vacuum(spark, config, GOLD.name).retention_hours == config.retention.hours_for("gold") == 2160.0
