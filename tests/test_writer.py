"""The shared writer on real Delta tables."""

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from helpers import demo_table
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.writer import (
    Commit,
    SchemaMismatchError,
    Transaction,
    append_rows,
    check_schema,
    ensure_table,
    insert_new_rows,
    overwrite_table,
)

GOLD = demo_table("gold.user_activity_daily")
COLUMNS = (
    "user_key bigint, event_date date, day_index int, n_events bigint, n_logins bigint, n_views bigint, "
    "n_likes bigint, n_uploads bigint"
)


def activity(spark, *user_keys):
    return spark.createDataFrame([(u, date(2026, 11, 1), 1, 1, 1, 0, 0, 0) for u in user_keys], COLUMNS)


def test_schema_mismatch_names_the_table_file_and_columns(spark):
    df = activity(spark, 1).drop("n_likes").withColumn("extra", F.lit(1))
    with pytest.raises(SchemaMismatchError) as error:
        check_schema(df.withColumn("user_key", df.user_key.cast("int")), GOLD)
    message = str(error.value)
    assert "gold/user_activity_daily.yaml" in message
    assert "missing column 'n_likes'" in message and "undeclared column 'extra'" in message
    assert "'user_key' is int, declared bigint" in message


def test_overwrite_keeps_history_and_records_job_and_inputs(spark, config):
    first = overwrite_table(spark, config, GOLD, activity(spark, 1, 2), Commit("job_a", "run-1", {"silver.events": 0}))
    second = overwrite_table(spark, config, GOLD, activity(spark, 3), Commit("job_a", "run-2"))
    assert (first.version, first.rows_written, second.version, second.rows_written) == (1, 2, 2, 1)
    assert read_table(spark, config, GOLD.name).count() == 1
    assert read_table(spark, config, GOLD.name, version=first.version).count() == 2
    history = DeltaTable.forPath(spark, config.table_path(GOLD.name)).history().orderBy("version").collect()
    assert json.loads(history[1].userMetadata) == {"inputs": {"silver.events": 0}, "job": "job_a", "run_id": "run-1"}
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{config.table_path(GOLD.name)}`").first()
    assert properties.description == GOLD.description
    assert spark.table(GOLD.name).count() == 1  # registered by name


def test_a_replayed_transaction_commits_nothing(spark, config):
    commit = Commit("job", "run", transaction=Transaction("test-app", 0))
    first = append_rows(spark, config, GOLD, activity(spark, 1), commit)
    replay = append_rows(spark, config, GOLD, activity(spark, 1), commit)
    nxt = append_rows(
        spark, config, GOLD, activity(spark, 2), Commit("job", "run", transaction=Transaction("test-app", 1))
    )
    assert first.committed and not replay.committed and nxt.committed
    assert read_table(spark, config, GOLD.name).count() == 2
    assert spark.conf.get("spark.databricks.delta.write.txnAppId", None) is None  # settings are cleaned up


def test_a_transactional_append_reads_the_checksum_and_agrees_with_deltas_own_lookup(spark, config):
    """The append with a transaction commits through ``idempotent_append`` (the checksum file, no rebuilt table
    state); what it commits is an ordinary Delta WRITE whose transaction the DataFrame writer honours, and the
    other way round. Without a checksum file the writer's own lookup decides."""
    from lakehouse.storage.delta_log import _snapshot, commits_after

    def in_transaction(version, run_id="r"):
        return Commit("job", run_id, transaction=Transaction("a", version))

    path = config.table_path(GOLD.name)
    ensure_table(spark, config, GOLD)
    before = _snapshot(spark, path)
    first = append_rows(spark, config, GOLD, activity(spark, 1, 2), in_transaction(3, "r1"))
    assert first.committed and first.rows_written == 2
    assert not before.stateReconstructionTriggered()  # the version the append read was never rebuilt
    (commit,) = commits_after(spark, path, first.version - 1)
    assert (commit.operation, commit.operation_metrics["numOutputRows"]) == ("WRITE", "2")
    assert json.loads(commit.user_metadata)["run_id"] == "r1"

    # Delta's DataFrame writer sees the transaction: versions up to 3 are replays, 4 is new.
    replayed = activity(spark, 9).write.format("delta").options(txnAppId="a", txnVersion="3").mode("append")
    replayed.save(path)
    assert current_version(spark, path) == first.version
    activity(spark, 4).write.format("delta").options(txnAppId="a", txnVersion="4").mode("append").save(path)
    # ... and the checksum path sees the writer's: version 4 is a replay, an older one too.
    for version in (4, 2):
        again = append_rows(spark, config, GOLD, activity(spark, 9), in_transaction(version))
        assert not again.committed

    # No checksum file for the latest version: the writer's lookup decides, and is as right.
    latest = current_version(spark, path)
    Path(path, "_delta_log", f"{latest:020d}.crc").unlink()
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    assert _snapshot(spark, path).checksumOpt().isEmpty()  # so these appends take the writer's path
    replay = append_rows(spark, config, GOLD, activity(spark, 9), in_transaction(4))
    new = append_rows(spark, config, GOLD, activity(spark, 5), in_transaction(5))
    assert not replay.committed and new.committed
    assert sorted(r.user_key for r in read_table(spark, config, GOLD.name).collect()) == [1, 2, 4, 5]


def test_insert_new_rows_only_inserts_unknown_keys(spark, config):
    keyed = replace(GOLD, keys=("user_key",))
    insert_new_rows(spark, config, keyed, activity(spark, 1, 2), Commit("job", "run"))
    result = insert_new_rows(spark, config, keyed, activity(spark, 2, 3), Commit("job", "run"))
    assert result.rows_written == 1
    assert sorted(r.user_key for r in read_table(spark, config, GOLD.name).collect()) == [1, 2, 3]
    assert current_version(spark, config.table_path(GOLD.name)) == 2


def test_the_log_reader_agrees_with_delta_history_including_a_commit_made_outside_the_writer(spark, config):
    """``lakehouse.storage.delta_log`` (no Spark job) against ``DESCRIBE HISTORY`` on the same table. (Commits by
    another process: tests/test_orchestration.py's two runs at once decide on each other's.)"""
    from lakehouse.storage.delta_log import commits_after, file_count, latest_version

    path = config.table_path(GOLD.name)
    assert (
        latest_version(spark, path) is None and commits_after(spark, path, None) == [] and file_count(spark, path) == 0
    )
    ensure_table(spark, config, GOLD)  # version 0 alone: its commit is the table's only one
    assert [(c.version, c.operation) for c in commits_after(spark, path, None)] == [(0, "CREATE TABLE")]
    overwrite_table(spark, config, GOLD, activity(spark, 1, 2, 3), Commit("t", "r1"))
    append_rows(spark, config, GOLD, activity(spark, 4), Commit("t", "r2"))
    activity(spark, 5, 6).write.format("delta").mode("append").save(path)  # not through the writer
    history = {row.version: row for row in DeltaTable.forPath(spark, path).history().collect()}
    assert latest_version(spark, path) == max(history) == current_version(spark, path)
    commits = commits_after(spark, path, 0)
    assert [c.version for c in commits] == sorted(v for v in history if v > 0)
    for commit in commits:
        assert commit.operation == history[commit.version].operation
        assert commit.operation_metrics == dict(history[commit.version].operationMetrics)
    assert json.loads(commits[-2].user_metadata)["run_id"] == "r2" and commits[-1].user_metadata is None
    assert file_count(spark, path) == len(spark.read.format("delta").load(path).inputFiles())


def test_local_rows_are_the_rows_create_data_frame_makes(spark):
    from datetime import datetime

    from lakehouse.project.tables import RESULTS_TABLE
    from lakehouse.storage.local_rows import local_rows

    schema = RESULTS_TABLE.schema
    odd_text = 'a "quote", a \\ backslash, a\nnew line, \u00e9, \u2028, \x01'
    rows = [
        ("run-1", "job", "silver.events", 3, datetime(2026, 12, 7, 13, 4, 5, 123456), "rule", "expect_x", "warn")
        + (10, 0, True, "passed", None),
        ("run-2", odd_text, "t", None, datetime(2026, 1, 2, 3, 4, 5), "r", "e", "fail", None, None, False, "failed")
        + (odd_text,),
    ]
    made = local_rows(spark, rows, schema)
    assert made.schema.simpleString() == schema.simpleString()
    assert made.rdd.getNumPartitions() == 1  # one file per append
    assert made.collect() == spark.createDataFrame(rows, schema).collect()
