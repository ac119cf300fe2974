"""Steps and jobs run as users run them: plain spark-submit and the lakehouse command, in their own processes."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import DEMO_CONF_FILE, DEMO_PROJECT
from lakehouse.project import load_project
from lakehouse.scenario.app_events import write_app_event_logs

BIN = Path(sys.executable).parent


def env_with_venv():
    """The environment of an activated virtual environment (its bin/ first on PATH)."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def write_conf(tmp_path):
    conf = yaml.safe_load(DEMO_CONF_FILE.read_text())
    conf["paths"] = {"warehouse": str(tmp_path / "warehouse"), "landing": str(tmp_path / "landing")}
    conf["catalog"] = {"metastore": "in-memory"}
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


@pytest.mark.e2e
def test_spark_submit_runs_a_step_with_delta(tmp_path):
    logs = write_app_event_logs(tmp_path / "landing" / "app_events", seed=5, scale=0.05, days=1)
    conf = write_conf(tmp_path)
    completed = subprocess.run(
        ["spark-submit", "jobs/run.py", "ingest_app_events", "--conf-file", str(conf)],
        cwd=DEMO_PROJECT,
        env=env_with_venv(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"bronze.app_events: committed version 1, +{logs.lines} rows" in completed.stdout
    assert (tmp_path / "warehouse" / "bronze" / "app_events" / "_delta_log").is_dir()


def test_cli_lists_steps_and_jobs_and_shows_each_ones_help():
    listed = subprocess.run([BIN / "lakehouse", "steps"], capture_output=True, text=True, check=True, cwd=DEMO_PROJECT)
    for step in load_project(DEMO_PROJECT).steps:
        assert step.name in listed.stdout
    options = {
        "ingest_app_events": "--source-dir",
        "ingest_photos": "--source-dir",
        "ingest_nycflights13": "--dump-file",
        "silver.image_predictions": "retrain (default False)",
        "gold.daily_active_users": "--conf-file",
    }
    for step, option in options.items():
        helped = subprocess.run(
            [BIN / "lakehouse", "step", step, "--help"], capture_output=True, text=True, check=True, cwd=DEMO_PROJECT
        )
        assert option in helped.stdout and "--conf-file" in helped.stdout, step
    jobs = subprocess.run([BIN / "lakehouse", "jobs"], capture_output=True, text=True, check=True, cwd=DEMO_PROJECT)
    assert "pipeline" in jobs.stdout and "train_popularity" in jobs.stdout
    helped = subprocess.run(
        [BIN / "lakehouse", "job", "train_popularity", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=DEMO_PROJECT,
    )
    assert "--loader" in helped.stdout
    unknown = subprocess.run([BIN / "lakehouse", "job", "nope"], capture_output=True, text=True, cwd=DEMO_PROJECT)
    assert unknown.returncode == 2 and "no job 'nope'" in unknown.stderr


@pytest.mark.e2e
def test_mlflow_ui_command_serves_the_tracking_store(tmp_path):
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [BIN / "lakehouse", "mlflow-ui", "--conf-file", str(write_conf(tmp_path)), "--port", str(port)],
        env=env_with_venv(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the server starts workers of its own: stop them all together
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "MLflow UI did not answer within 90 s"
                time.sleep(1)
        assert (tmp_path / "warehouse" / "_mlflow" / "mlflow.db").is_file()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
