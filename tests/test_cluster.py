"""The demo pipeline on a real Spark standalone cluster (a master and two workers on 127.0.0.1, from pyspark's own
classes) submitted with ``spark-submit --master spark://...``: the gold tables it builds equal, row for row, the ones
the suite's shared demo build (conftest.py's ``demo_lakehouse``, local mode) made from the same sources."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, FloatType

from conftest import _free_port, make_config
from helpers import DEMO_BUILD_TABLES, DEMO_PROJECT, write_conf_file
from lakehouse.engine.orchestration import select_steps
from lakehouse.services import cluster
from lakehouse.storage.catalog import read_table

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
# The gold tables submitted to the cluster: both kinds of file source (JSON lines, access logs), incremental
# streaming silver with its checkpoints, and gold aggregations shuffled across both executors: 6 steps. The
# popularity table's 10 steps (the database by JDBC, the images, the classifier) are left to the local-mode tests:
# on the cluster they made this test take 367 s.
ON_CLUSTER = ("gold.user_activity_daily", "gold.http_status_daily")
assert set(ON_CLUSTER) <= set(DEMO_BUILD_TABLES)  # the shared build has them to compare with


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
    spark, demo_lakehouse, standalone, tmp_path
):
    local, _ = demo_lakehouse
    # The same sources (landing folder, databases, pseudonym key) and scenario, another warehouse.
    on_cluster = replace(make_config(tmp_path / "cluster"), landing=local.landing, privacy=local.privacy)
    conf_file = write_conf_file(  # everything else as in conf/local.yaml (2 shuffle partitions = 2 cores)
        on_cluster,
        tmp_path / "cluster.yaml",
        scenario={"seed": local.scenario.seed, "scale": local.scenario.scale},
        quality={"enabled": True, "data_docs": False},
    )
    log = tmp_path / "spark-submit.log"
    with open(log, "w") as output:
        submitted = subprocess.run(
            [
                str(BIN / "spark-submit"),
                *standalone.submit_options(),
                "--executor-memory",
                "1g",  # + the secret file
                str(DEMO_PROJECT / "jobs" / "pipeline.py"),
                "--conf-file",
                str(conf_file),
                "--skip-training",
                "--select",
                *ON_CLUSTER,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"),
            timeout=1800,
        )
    assert submitted.returncode == 0, log.read_text()[-8000:]

    # It ran on the cluster: the master lists the finished application, and both workers ran executors of it.
    applications = cluster.master_state(standalone)["completedapps"]
    assert [app["name"] for app in applications] == ["pipeline"]
    for worker in ("worker-0", "worker-1"):
        assert (standalone.state_dir / "work" / worker / applications[0]["id"]).is_dir(), worker

    steps = select_steps(list(local.project.steps), list(ON_CLUSTER))  # the selection and what it needs
    gold_tables = sorted({table for step in steps for table in step.outputs if table.startswith("gold.")})
    for table in gold_tables:
        built_locally = comparable(read_table(spark, local, table))
        built_on_cluster = comparable(read_table(spark, on_cluster, table))
        assert built_locally.count() > 0, table
        assert built_on_cluster.count() == built_locally.count(), table
        assert built_on_cluster.exceptAll(built_locally).count() == 0, table
        assert built_locally.exceptAll(built_on_cluster).count() == 0, table
