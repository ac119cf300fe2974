"""Every ingestion killed with SIGKILL half-way (a real spark-submit process) and re-run: no partial and no
duplicate data. The job is stopped by a fail point right after one of its commits, where a crash hurts most:
some tables (or the batch's quarantine) committed, the rest and the stream checkpoint not."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from helpers import DEMO_CONF_FILE, DEMO_PROJECT, run_step
from lakehouse.install.datasets import logstalgia_access_log
from lakehouse.scenario.sources import load_source_databases
from lakehouse.services import postgres_loading as loading
from lakehouse.services.postgres import PostgresServer
from lakehouse.storage.catalog import read_table
from lakehouse.storage.faults import PAUSE_AFTER_COMMIT, PAUSE_MARKER

pytestmark = pytest.mark.e2e


def conf_file(config, tmp_path) -> Path:
    """The test's configuration as a file a separate spark-submit process can read."""
    conf = yaml.safe_load(DEMO_CONF_FILE.read_text())
    conf["paths"] = {"warehouse": config.warehouse, "landing": config.landing}
    conf["catalog"] = {"metastore": config.catalog.metastore}
    conf["postgres"] = {
        "host": config.postgres.host,
        "port": config.postgres.port,
        "data_dir": config.postgres.data_dir,
    }
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def kill_after_commit(step: str, table: str, config, tmp_path, *step_args: str) -> None:
    """Run ``step`` with spark-submit until it has committed to ``table``, then SIGKILL its process group."""
    marker = tmp_path / f"paused-{step}"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PAUSE_AFTER_COMMIT: table,
        PAUSE_MARKER: str(marker),
    }
    log = open(tmp_path / f"{step}.log", "w")
    process = subprocess.Popen(
        ["spark-submit", "jobs/run.py", step, "--conf-file", str(conf_file(config, tmp_path)), *step_args],
        cwd=DEMO_PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        while not marker.exists():
            if process.poll() is not None:
                pytest.fail(
                    f"{step} ended ({process.returncode}) before pausing: "
                    f"{(tmp_path / f'{step}.log').read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{step} did not reach its commit to {table} in 300 s")
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL


def test_access_log_ingestion_killed_after_its_commit_lands_each_line_once(spark, config, tmp_path):
    landing = Path(config.landing_path("access_logs"))
    landing.mkdir(parents=True)
    shutil.copy(logstalgia_access_log(), landing / "access.log")
    kill_after_commit("ingest_access_logs", "bronze.access_logs", config, tmp_path)
    assert read_table(spark, config, "bronze.access_logs").count() == 3260  # committed, checkpoint not

    run_step(spark, config, "ingest_access_logs")  # replays the batch: its transaction was already committed
    bronze = read_table(spark, config, "bronze.access_logs")
    assert bronze.count() == 3260
    assert bronze.select("run_id").distinct().count() == 1  # the killed run's rows, not a second copy


def test_snapshot_ingestion_killed_between_tables_leaves_whole_snapshots(spark, config, pg_server, tmp_path):
    load_source_databases(config)
    appdb = config.project.source("appdb")
    kill_after_commit("ingest_appdb", "bronze.appdb_users", config, tmp_path)
    assert read_table(spark, config, "bronze.appdb_users").count() > 0

    run_step(spark, config, "ingest_appdb")
    server = PostgresServer.from_config(config)
    for table in appdb.tables:
        bronze = read_table(spark, config, table.bronze_name)
        assert bronze.select("_snapshot_id").distinct().count() == 1, table.name
        assert bronze.count() == loading.row_count(server, appdb, table), table.name


def test_image_validation_killed_between_quarantine_and_images_commits_is_replayed_once(spark, config, tmp_path):
    from datetime import datetime, timezone

    from lakehouse.scenario.app_db import write_app_database

    landing = Path(config.landing)
    uploads = [(p, 1, datetime(2026, 11, 1, tzinfo=timezone.utc)) for p in range(1, 121)]
    db = write_app_database(
        uploads, 3, landing / "objects" / "photos", landing / "image_manifests", seed=4, bad_object_rate=0.1
    )
    bad = sum(db.bad_objects.values())
    run_step(spark, config, "ingest_photos")
    kill_after_commit("silver.images", "silver.images_quarantine", config, tmp_path)
    assert read_table(spark, config, "silver.images_quarantine").count() == bad
    assert read_table(spark, config, "silver.images").count() == 0

    run_step(spark, config, "silver.images")
    assert read_table(spark, config, "silver.images_quarantine").count() == bad  # not twice
    references = read_table(spark, config, "silver.image_references")
    assert references.count() == len(uploads) - bad
    assert references.where(F.col("content_hash").isNull()).count() == 0


def test_silver_killed_between_its_commit_and_its_checkpoint_adds_nothing_twice(spark, config, tmp_path):
    from lakehouse.scenario.app_events import write_app_event_logs

    logs = write_app_event_logs(Path(config.landing_path("app_events")), seed=6, scale=0.05, days=1)
    run_step(spark, config, "ingest_app_events")
    # silver.events commits its quarantine, then itself; the stream's checkpoint would come next
    kill_after_commit("silver.events", "silver.events", config, tmp_path)
    committed = {t: read_table(spark, config, t).count() for t in ("silver.events", "silver.events_quarantine")}
    assert committed["silver.events"] == logs.valid_events  # the batch is in, its checkpoint is not

    replayed = run_step(spark, config, "silver.events")  # the batch comes again: both commits are skipped
    assert replayed.counts["bronze.app_events batches"] == 1
    events = read_table(spark, config, "silver.events")
    assert events.count() == committed["silver.events"] == events.select("event_id").distinct().count()
    assert read_table(spark, config, "silver.events_quarantine").count() == committed["silver.events_quarantine"]
    assert committed["silver.events_quarantine"] == logs.total_bad_lines + logs.duplicate_lines
