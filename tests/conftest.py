"""Shared fixtures: one SparkSession for the whole suite, and throw-away warehouses."""

from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

pytest.register_assert_rewrite("helpers")

from helpers import DEMO_CONF_FILE
from lakehouse.config import LakehouseConfig, load_config


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
    from lakehouse import postgres

    server = postgres.start(postgres.PostgresServer(_PG_DATA_DIR / "data", _PG_PORT))
    yield server
    postgres.stop(server)


@pytest.fixture(scope="session")
def session_config(tmp_path_factory) -> LakehouseConfig:
    return make_config(tmp_path_factory.mktemp("session"))


@pytest.fixture(scope="session")
def spark(session_config):
    """The one SparkSession of the suite (starting one costs seconds; tests share it)."""
    from lakehouse.session import get_spark

    session = get_spark(session_config, app_name="lakehouse-tests")
    yield session
    session.stop()


@pytest.fixture
def config(tmp_path) -> LakehouseConfig:
    """A fresh, empty warehouse and landing folder for one test."""
    return make_config(tmp_path)
