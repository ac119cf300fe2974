"""The generated Airflow DAG: current with the declarations, and loaded by Airflow's own DagBag.

Airflow is not one of the project's dependencies (its pins clash with ours); the test installs it once
into a virtual environment of its own (tool_venvs.py, pinned) and skips, saying why, only where it cannot.
"""

import json
import subprocess

import pytest

from helpers import DEMO_PROJECT
from lakehouse.project import load_project
from lakehouse.project.dag import AIRFLOW_DAG_ID, render_airflow_dag
from tool_venvs import ToolUnavailable, pinned_venv

AIRFLOW_VERSION = "3.1.3"
DAG_FILE = DEMO_PROJECT / "dags" / "lakehouse_pipeline.py"

LOAD_DAG = """
import json, sys
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dag = bag.dags.get(sys.argv[2])
print(json.dumps({
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids), "command": t.bash_command} for t in dag.tasks}
             if dag else None,
}))
"""


@pytest.fixture(scope="module")
def airflow_python():
    try:
        return pinned_venv("apache-airflow", AIRFLOW_VERSION) / "bin" / "python"
    except ToolUnavailable as unavailable:
        pytest.skip(str(unavailable))


def test_the_shipped_dag_file_is_the_current_graph():
    assert DAG_FILE.read_text() == render_airflow_dag(load_project(DEMO_PROJECT)), (
        "dags/lakehouse_pipeline.py is stale: run `lakehouse dag --airflow dags/lakehouse_pipeline.py`"
    )


def test_airflow_loads_the_dag_with_one_task_per_step_and_the_derived_dependencies(airflow_python, tmp_path):
    home = tmp_path / "airflow-home"
    loaded = subprocess.run(
        [str(airflow_python), "-c", LOAD_DAG, str(DAG_FILE.parent), AIRFLOW_DAG_ID],
        capture_output=True,
        text=True,
        timeout=300,
        env={"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    found = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    steps = load_project(DEMO_PROJECT).steps
    assert set(found["tasks"]) == {step.name for step in steps}
    for step in steps:
        task = found["tasks"][step.name]
        assert task["upstream"] == sorted(step.upstream_steps), step.name
        assert f"run --select {step.name} --no-upstream" in task["command"] and "--project" in task["command"]
