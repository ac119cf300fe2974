"""Shared fixtures: one SparkSession for the whole suite, and throw-away warehouses."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

pytest.register_assert_rewrite("helpers")

from helpers import DEMO_BUILD_TABLES, DEMO_CONF_FILE, build_tables  # noqa: E402 (after register_assert_rewrite)
from lakehouse.project.config import LakehouseConfig, load_config  # noqa: E402

# Every other JVM the suite starts (spark-submit, the SQL server, beeline, S3Proxy, the cluster's daemons and
# executors; the workers' own sessions excepted, see `spark` below) compiles with C1 only: on test-sized data
# a short-lived JVM spends more CPU optimising hot code than running it, and the suite is CPU-bound on 2 cores.
# tests/test_orchestration.py, interleaved: 278-310 CPU-s with C1 only, 337-350 with tiered compilation; the same 12
# Delta merges and reads took 36% less JVM CPU (141 s -> 90 s). A setting of the user's own (or CI's) is left alone.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1")

# The suite's own PostgreSQL (started once, on a free port, in a folder the server account can enter).
_PG_DATA_DIR = Path(tempfile.mkdtemp(prefix="lakehouse-test-pg-"))
_PG_DATA_DIR.chmod(0o755)
atexit.register(shutil.rmtree, _PG_DATA_DIR, True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_PG_PORT = _free_port()


def make_config(root: Path, data_docs: bool = False) -> LakehouseConfig:
    """``conf/local.yaml`` with its warehouse and landing folders moved under ``root`` and the suite's
    PostgreSQL server as the application database, and an in-memory catalog. The gates run; their Data Docs
    site is rendered only with ``data_docs`` (a second a job, and only two tests look at it)."""
    config = load_config(
        DEMO_CONF_FILE,
        environ={
            "LAKEHOUSE_WAREHOUSE": str(root / "warehouse"),
            "LAKEHOUSE_LANDING": str(root / "landing"),
            "LAKEHOUSE_PG_PORT": str(_PG_PORT),
            "LAKEHOUSE_PG_DATA_DIR": str(_PG_DATA_DIR / "data"),
            # Each process its own catalog: the suite's tests use many warehouses in one session.
            # tests/test_sql_server.py covers the shared metastore.
            "LAKEHOUSE_METASTORE": "in-memory",
        },
    )
    return replace(config, quality=replace(config.quality, data_docs=data_docs))


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL on 127.0.0.1 for the whole suite (initdb + pg_ctl), stopped at the end."""
    from lakehouse.services import postgres

    server = postgres.start(postgres.PostgresServer(_PG_DATA_DIR / "data", _PG_PORT))
    yield server
    postgres.stop(server)


@pytest.fixture(scope="session")
def session_config(tmp_path_factory) -> LakehouseConfig:
    return make_config(tmp_path_factory.mktemp("session"))


@pytest.fixture(scope="session")
def spark(session_config):
    """The one SparkSession of the suite (starting one costs seconds; tests share it)."""
    from lakehouse.engine.session import get_spark
    from lakehouse.services.spark_conf import JIT_OPTIONS

    # This JVM lives as long as its worker and runs most of its pipelines: it compiles as users' JVMs do (tiered,
    # the project's thresholds; a flag on the command line wins over JAVA_TOOL_OPTIONS' C1 only). Measured on
    # tests/test_silver_snapshots.py, interleaved: 126 and 127 s against 158 and 142 s, at the same CPU time; the
    # whole suite from a clean clone: 24 min against 33 and 37 min (2,867 worker-s against 3,922 and 4,338).
    tiered = {"spark.driver.defaultJavaOptions": f"{JIT_OPTIONS} -XX:TieredStopAtLevel=4"}
    session = get_spark(session_config, app_name="lakehouse-tests", extra_conf=tiered)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def demo_lakehouse(spark, tmp_path_factory, pg_server):
    """The demo lakehouse, built once per worker: the scenario's sources (scale 1, 7 days) staged into a fresh
    landing folder and PostgreSQL, and every step :data:`helpers.DEMO_BUILD_TABLES` need run in the suite's
    session. Returns ``(config, {step: JobResult})``. The files using it run on one worker (see
    :func:`pytest_xdist_make_scheduler`), so the suite builds it once."""
    from lakehouse.scenario.sources import stage_sources

    config = make_config(tmp_path_factory.mktemp("demo"))
    config = replace(config, privacy=replace(config.privacy, key_file=str(tmp_path_factory.mktemp("key") / "key")))
    stage_sources(config)
    return config, build_tables(spark, config, *DEMO_BUILD_TABLES)


@pytest.fixture
def config(tmp_path) -> LakehouseConfig:
    """A fresh, empty warehouse and landing folder for one test."""
    return make_config(tmp_path)


# Files that take minutes go first, so that xdist's two workers finish together rather than one waiting on a
# long file handed out last. `--no-loadscope-reorder` (pytest.ini) makes xdist hand files out in this
# collection order; by default it sends the files with the most tests first, which put these last.
SLOW_FILES_FIRST = (
    "test_demo_lakehouse_e2e.py",
    "test_cluster.py",
    "test_orchestration.py",
    "test_source_crashes.py",
    "test_object_storage.py",
    "test_sources_databases.py",
    "test_silver_snapshots.py",
    "test_versioning.py",
    "test_user_project.py",
    "test_pipeline_e2e.py",
)


# Files that read the shared demo build run on the same worker, one after the other, as if they were one file.
SHARED_DEMO_BUILD = ("test_demo_lakehouse_e2e.py", "test_cluster.py")


def pytest_xdist_make_scheduler(config, log):
    """xdist's ``--dist loadfile`` (pytest.ini), with the files of :data:`SHARED_DEMO_BUILD` handed out together."""
    from xdist.scheduler import LoadFileScheduling

    if config.getoption("dist") != "loadfile":
        return None  # another distribution asked for on the command line: xdist's own

    class SharedBuildScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SHARED_DEMO_BUILD[0] if Path(scope).name in SHARED_DEMO_BUILD else scope

    return SharedBuildScheduling(config, log)


def pytest_collection_modifyitems(items):
    rank = {name: position for position, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order
