"""The project-managed PostgreSQL: lifecycle, errors that say what to do."""

import os
from dataclasses import replace
from pathlib import Path

import pytest

from lakehouse.services import postgres
from lakehouse.services.postgres import PostgresError, PostgresServer


def test_the_suite_server_answers_sql_and_reports_errors_clearly(pg_server):
    assert postgres.is_running(pg_server)
    assert postgres.psql(pg_server, "postgres", "SELECT 40 + 2").strip() == "42"
    assert postgres.psql(pg_server, "postgres", "SHOW listen_addresses").strip() == "127.0.0.1"
    with pytest.raises(PostgresError, match="syntax error"):
        postgres.psql(pg_server, "postgres", "SELEC 1")
    assert postgres.start(pg_server) == pg_server  # already running: nothing to do


def test_a_server_the_project_does_not_manage_is_never_started_or_stopped(config):
    external = PostgresServer.from_config(replace(config, postgres=replace(config.postgres, data_dir=None)))
    with pytest.raises(PostgresError, match="not managed by the project"):
        postgres.stop(external)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the data folder to the postgres account")
def test_a_data_folder_the_server_account_cannot_reach_is_refused_with_advice(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(PostgresError, match="LAKEHOUSE_PG_DATA_DIR"):
        postgres.start(PostgresServer(private / "data", 1))


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the data folder to the postgres account")
def test_a_configured_data_folder_out_of_reach_moves_to_a_stable_stand_in(config, tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    moved = replace(config, postgres=replace(config.postgres, data_dir=str(private / "pg")))
    server = PostgresServer.from_config(moved)
    assert server.data_dir.parent.parent == Path("/var/tmp") and server.data_dir.name == "pg"
    assert PostgresServer.from_config(moved).data_dir == server.data_dir  # stop/status find the same server
    assert PostgresServer.from_config(config).data_dir == Path(config.postgres.data_dir)  # reachable: kept
