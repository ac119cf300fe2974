"""Shared fixtures: one SparkSession for the whole suite, and throw-away warehouses."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.register_assert_rewrite("helpers")

from lakehouse.config import LakehouseConfig, load_config
from lakehouse.paths import DEFAULT_CONF_FILE


def make_config(root: Path) -> LakehouseConfig:
    """``conf/local.yaml`` with its warehouse and landing folders moved under ``root``."""
    return load_config(
        DEFAULT_CONF_FILE,
        environ={"LAKEHOUSE_WAREHOUSE": str(root / "warehouse"), "LAKEHOUSE_LANDING": str(root / "landing")},
    )


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
