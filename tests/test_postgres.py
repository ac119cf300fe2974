"""The project-managed PostgreSQL: lifecycle, errors that say what to do."""

import os
from dataclasses import replace

import pytest

from lakehouse import postgres
from lakehouse.postgres import PostgresError, PostgresServer


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
