"""Quality gates on real Delta tables with Great Expectations doing the validation."""

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from helpers import demo_table
from lakehouse.quality.gate import QualityGateError, data_docs_index
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.publish import publish_rows, publish_table, quality_root, staging_path
from lakehouse.storage.writer import Commit

SILVER = demo_table("silver.events")
GOLD = demo_table("gold.user_activity_daily")
T = datetime(2026, 11, 1, 12, 0, 0)


def events(spark, *rows):
    """silver.events rows from (event_id, event_type, event_time) triples."""
    return spark.createDataFrame(
        [(eid, 7, kind, 1, when, when.date(), "file:/a.jsonl", T) for eid, kind, when in rows], SILVER.schema
    )


def activity(spark, n_events_by_user):
    return spark.createDataFrame(
        [(user, date(2026, 11, 1), 20758, n, n, 0, 0, 0) for user, n in n_events_by_user.items()], GOLD.schema
    )


def results(spark, config, run_id):
    rows = read_table(spark, config, "quality.results").where(F.col("run_id") == run_id).collect()
    return {row.rule: row for row in rows}


def test_quarantine_uses_the_rules_conditions_and_loses_nothing(spark, config):
    config = replace(config, quality=replace(config.quality, data_docs=True))  # this test reads the site
    df = events(
        spark,
        ("e1", "view", T),
        ("e2", "dance", T),  # event_type_known
        ("e3", "view", datetime(1999, 1, 1)),  # event_time_plausible
        ("e4", "like", T),
    )
    published = publish_rows(spark, config, SILVER, df, Commit("test", "run-q"), mode="insert_new")
    kept = read_table(spark, config, SILVER.name)
    quarantined = read_table(spark, config, SILVER.quarantine.name)
    assert published.rows_in == 4 == kept.count() + quarantined.count()
    assert sorted(r.event_id for r in kept.collect()) == ["e1", "e4"]
    reasons = {r.rule: r.reason for r in quarantined.collect()}
    assert reasons == {
        "event_type_known": "expectation_failed:event_type_known",
        "event_time_plausible": "expectation_failed:event_time_plausible",
    }
    assert '"event_id":"e2"' in quarantined.where(F.col("rule") == "event_type_known").first().record

    outcome = results(spark, config, "run-q")
    assert outcome["event_type_known"].outcome == "quarantined" and outcome["event_type_known"].rows_failing == 1
    assert outcome["event_id_not_null"].outcome == "passed"
    assert outcome["events_fresh"].outcome == "warned"  # 2026-11-01 is long past: a warning, rows kept
    assert {r.version_checked for r in outcome.values()} == {published.write.version}
    assert Path(data_docs_index(quality_root(config))).is_file()


def test_a_failing_fail_rule_publishes_nothing(spark, config):
    publish_rows(spark, config, SILVER, events(spark, ("e1", "view", T)), Commit("test", "run-1"), mode="insert_new")
    version = current_version(spark, config.table_path(SILVER.name))
    duplicates = events(spark, ("e2", "view", T), ("e2", "like", T))
    with pytest.raises(QualityGateError, match="event_id_unique_in_batch"):
        publish_rows(spark, config, SILVER, duplicates, Commit("test", "run-2"), mode="insert_new")
    assert current_version(spark, config.table_path(SILVER.name)) == version
    assert [r.event_id for r in read_table(spark, config, SILVER.name).collect()] == ["e1"]
    failed = results(spark, config, "run-2")["event_id_unique_in_batch"]
    assert (failed.outcome, failed.success, failed.version_checked) == ("failed", False, None)


def test_write_audit_publish_keeps_the_published_version_when_the_audit_fails(spark, config):
    good = publish_table(spark, config, GOLD, activity(spark, {1: 3, 2: 5}), Commit("test", "wap-1"))
    published_version = good.write.version

    with pytest.raises(QualityGateError, match="at_least_one_event"):
        publish_table(spark, config, GOLD, activity(spark, {1: 3, 2: 0}), Commit("test", "wap-2"))
    with pytest.raises(QualityGateError, match="row_count_near_previous_version") as refused:
        publish_table(spark, config, GOLD, activity(spark, {u: 1 for u in range(10)}), Commit("test", "wap-3"))
    # the refused contents are left to look at, where the error says
    staged = staging_path(config, GOLD)
    assert staged in str(refused.value)
    assert spark.read.format("delta").load(staged).count() == 10

    # readers still see exactly the audited version, by path and by name
    assert current_version(spark, config.table_path(GOLD.name)) == published_version
    assert sorted((r.user_key, r.n_events) for r in spark.table(GOLD.name).collect()) == [(1, 3), (2, 5)]
    refused = results(spark, config, "wap-3")["row_count_near_previous_version"]
    assert (refused.outcome, refused.version_checked, refused.observed) == ("failed", None, "10")
    assert results(spark, config, "wap-1")["row_count_near_previous_version"].outcome == "passed"

    again = publish_table(spark, config, GOLD, activity(spark, {1: 4, 2: 5, 3: 1}), Commit("test", "wap-4"))
    assert again.write.version == published_version + 1


def test_a_batch_refused_then_replayed_records_both_attempts(spark, config):
    from lakehouse.storage.writer import Transaction

    batch = Commit("test", "run-r1", transaction=Transaction("replay-app", 0))
    with pytest.raises(QualityGateError):
        publish_rows(
            spark, config, SILVER, events(spark, ("e1", "view", T), ("e1", "like", T)), batch, mode="insert_new"
        )
    fixed = publish_rows(
        spark, config, SILVER, events(spark, ("e1", "view", T)), replace(batch, run_id="run-r2"), mode="insert_new"
    )
    assert fixed.write.committed
    assert results(spark, config, "run-r1")["event_id_unique_in_batch"].outcome == "failed"
    assert results(spark, config, "run-r2")["event_id_unique_in_batch"].outcome == "passed"
