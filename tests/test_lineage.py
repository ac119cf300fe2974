"""Lineage: table versions back to source files, and MLflow runs pinned to the versions they read."""

import os
from datetime import date, datetime

import mlflow
import pytest

from helpers import demo_table, sorted_rows
from lakehouse.lineage.mlflow_runs import (
    TrainingFrame,
    configure_mlflow,
    log_frame_input,
    log_table_input,
    log_training_frame,
    record_training_frame,
    reproduce,
    run_inputs,
)
from lakehouse.lineage.tables import format_lineage, table_lineage
from lakehouse.storage.catalog import current_version
from lakehouse.storage.writer import Commit, append_rows, ensure_table, insert_new_rows, overwrite_table

BRONZE, SILVER, GOLD = (demo_table(n) for n in ("bronze.app_events", "silver.events", "gold.user_activity_daily"))
T = datetime(2026, 11, 1)


def build_chain(spark, config):
    """bronze <- 2 files, silver built from bronze@1, gold from silver@1, each commit naming its inputs."""
    lines = spark.createDataFrame(
        [
            ("{}", None, n, f"file:/landing/{name}", T, T, "run-b")
            for n, name in enumerate(("a.jsonl", "b.jsonl.gz", "a.jsonl"))
        ],
        BRONZE.schema,
    )
    bronze_version = append_rows(spark, config, BRONZE, lines, Commit("ingest_app_events", "run-b")).version
    events = spark.createDataFrame([("e1", 1, "view", 1, T, T.date(), "file:/landing/a.jsonl", T)], SILVER.schema)
    silver_version = insert_new_rows(
        spark, config, SILVER, events, Commit("build_silver_events", "run-s", {BRONZE.name: bronze_version})
    ).version
    activity = spark.createDataFrame([(1, date(2026, 11, 1), 20758, 1, 0, 1, 0, 0)], GOLD.schema)
    gold_version = overwrite_table(
        spark, config, GOLD, activity, Commit("build_gold_user_activity", "run-g", {SILVER.name: silver_version})
    ).version
    return bronze_version, silver_version, gold_version


def test_gold_version_traces_back_to_bronze_and_source_files(spark, config):
    bronze_version, silver_version, gold_version = build_chain(spark, config)
    node = table_lineage(spark, config, GOLD.name)
    assert (node.table, node.version, node.job, node.run_id) == (
        GOLD.name,
        gold_version,
        "build_gold_user_activity",
        "run-g",
    )
    (silver,) = node.inputs
    assert (silver.table, silver.version, silver.run_id) == (SILVER.name, silver_version, "run-s")
    (bronze,) = silver.inputs
    assert (bronze.table, bronze.version, bronze.job) == (BRONZE.name, bronze_version, "ingest_app_events")
    assert bronze.source_files == 2 and bronze.source_file_sample == [
        "file:/landing/a.jsonl",
        "file:/landing/b.jsonl.gz",
    ]
    text = format_lineage(node)
    assert f"<- {SILVER.name}@{silver_version}" in text and "<- 2 source files" in text
    assert table_lineage(None, config, GOLD.name) == node  # read with delta-rs, as a training process does


def test_training_run_records_versions_and_reproduces_its_frame(spark, config):
    configure_mlflow(config, experiment="test-lineage")
    _, _, gold_version = build_chain(spark, config)
    overwrite_table(spark, config, GOLD, spark.createDataFrame([], GOLD.schema), Commit("later", "run-x"))
    empty_version = 0  # the version CREATE TABLE made of silver.events_quarantine: version 0 must stay 0
    quarantine = ensure_table(spark, config, SILVER.quarantine)
    assert current_version(spark, quarantine) == empty_version

    frame = TrainingFrame(GOLD.name, gold_version, columns=("user_key", "n_events", "n_views"), where="n_events > 0")
    with mlflow.start_run() as run:
        trained_on = log_training_frame(spark, config, frame)
        side = spark.read.format("delta").option("versionAsOf", empty_version).load(quarantine)
        log_table_input(side, config, SILVER.quarantine.name, empty_version, context="audit")
    with mlflow.start_run() as unread:  # the same record made without reading the table (no Spark)
        record_training_frame(config, frame)
        log_frame_input(config, TrainingFrame(SILVER.quarantine.name, empty_version), context="audit")
    assert run_inputs(unread.info.run_id) == run_inputs(run.info.run_id)
    assert sorted_rows(reproduce(spark, config, unread.info.run_id)) == [(1, 1, 1)]

    inputs = {i["name"]: i for i in run_inputs(run.info.run_id)}
    assert inputs[f"{GOLD.name}@v{gold_version}"]["version"] == gold_version
    assert inputs[f"{GOLD.name}@v{gold_version}"]["context"] == "training"
    assert inputs[f"{SILVER.quarantine.name}@v0"]["version"] == 0  # not "latest"
    assert inputs[f"{SILVER.quarantine.name}@v0"]["path"] == quarantine

    rebuilt = reproduce(spark, config, run.info.run_id)
    assert rebuilt.columns == trained_on.columns
    assert sorted_rows(rebuilt) == sorted_rows(trained_on) == [(1, 1, 1)]
    assert current_version(spark, config.table_path(GOLD.name)) > gold_version  # the table moved on; the run did not


def test_reproduce_needs_a_recorded_frame(spark, config):
    configure_mlflow(config, experiment="test-lineage-empty")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
    with pytest.raises(ValueError, match="recorded no training frame"):
        reproduce(spark, config, run.info.run_id)


def test_configuring_mlflow_does_not_leak_its_store_to_child_processes(config, monkeypatch):
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; a child job with its own --conf-file must not
    inherit this process's store (the variable overrides the configuration)."""
    from helpers import DEMO_CONF_FILE
    from lakehouse.project.config import load_config

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configure_mlflow(config)
    assert mlflow.get_tracking_uri() == config.mlflow_tracking_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert load_config(DEMO_CONF_FILE).mlflow_tracking_uri != config.mlflow_tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/mlflow.db")  # a user's own choice stays
    configure_mlflow(config)
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:////elsewhere/mlflow.db"
