"""lakehouse run: dependency order, content-based skipping, failure that blocks only descendants, resume."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import DEMO_PROJECT
from lakehouse.engine import definitions
from lakehouse.engine.orchestration import failures, run_pipeline, select_steps
from lakehouse.project import load_project
from lakehouse.scenario.app_events import write_app_event_logs
from lakehouse.storage.catalog import read_table
from lakehouse.transforms.privacy import KEY_VARIABLE

SELECTED = ["gold.user_activity_daily", "silver.access_requests"]
ACCESS_LINE = '10.0.0.{n} - - [10/Oct/2026:13:55:36 +0000] "GET /page/{n} HTTP/1.1" 200 {n} "-" "Mozilla/5.0"'


def test_selection_takes_upstreams_and_optionally_downstreams():
    steps = list(load_project(DEMO_PROJECT).steps)
    names = [step.name for step in select_steps(steps, SELECTED)]
    assert sorted(names) == sorted(
        [
            "ingest_app_events",
            "ingest_access_logs",
            "silver.events",
            "gold.user_activity_daily",
            "silver.access_requests",
        ]
    )
    position = {name: i for i, name in enumerate(names)}
    assert position["ingest_app_events"] < position["silver.events"] < position["gold.user_activity_daily"]
    assert position["ingest_access_logs"] < position["silver.access_requests"]
    downstream = {step.name for step in select_steps(steps, ["silver.events"], upstream=False, downstream=True)}
    assert downstream == {
        "silver.events",
        "gold.user_activity_daily",
        "gold.daily_active_users",
        "gold.photo_popularity_training",
    }
    with pytest.raises(KeyError, match="no step or table 'gold.nope'"):
        select_steps(steps, ["gold.nope"])


def statuses(outcomes):
    return {outcome.step.name: outcome.status for outcome in outcomes}


@pytest.mark.e2e
def test_only_what_changed_reruns_a_failure_blocks_its_descendants_and_the_next_run_resumes(spark, config, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, "test-pseudonym-key-0123456789")
    config = replace(config, quality=replace(config.quality, data_docs=False))
    landing = Path(config.landing_path("app_events"))
    access = Path(config.landing_path("access_logs"))
    access.mkdir(parents=True)
    (access / "access.log").write_text("\n".join(ACCESS_LINE.format(n=n) for n in range(1, 6)) + "\n")
    write_app_event_logs(landing, seed=3, scale=0.02, days=1, first_day=0)

    def run():
        return run_pipeline(spark, config, selected=SELECTED, progress=lambda line: None)

    first = run()
    assert set(statuses(first).values()) == {"succeeded"} and len(first) == 5

    write_app_event_logs(landing, seed=3, scale=0.02, days=1, first_day=1)  # a new day of one source
    touched = run()  # the sources are asked what is new; only what depends on the new day runs
    assert statuses(touched) == {
        "ingest_app_events": "succeeded",
        "ingest_access_logs": "succeeded",
        "silver.events": "succeeded",
        "gold.user_activity_daily": "succeeded",
        "silver.access_requests": "skipped",
    }
    assert next(o for o in touched if o.step.name == "ingest_access_logs").rows_written == 0
    silver_events = next(o for o in touched if o.step.name == "silver.events")
    assert silver_events.reason == "inputs changed: bronze.app_events v1->v2"

    run_definition = definitions.run_definition

    def broken(ctx, step):
        if step.name == "silver.events":
            raise RuntimeError("the cluster went away")
        return run_definition(ctx, step)

    write_app_event_logs(landing, seed=3, scale=0.02, days=1, first_day=2)
    (access / "access-2.log").write_text(ACCESS_LINE.format(n=7) + "\n")
    monkeypatch.setattr(definitions, "run_definition", broken)
    failed = run()
    assert statuses(failed) == {
        "ingest_app_events": "succeeded",
        "ingest_access_logs": "succeeded",
        "silver.events": "failed",
        "gold.user_activity_daily": "blocked",
        "silver.access_requests": "succeeded",  # independent branch
    }
    report = failures(failed)
    assert "silver.events failed: RuntimeError: the cluster went away" in report
    assert "not run because of it: gold.user_activity_daily" in report

    monkeypatch.undo()
    monkeypatch.setenv(KEY_VARIABLE, "test-pseudonym-key-0123456789")
    resumed = run()
    assert statuses(resumed) == {
        "ingest_app_events": "succeeded",
        "ingest_access_logs": "succeeded",
        "silver.events": "succeeded",
        "gold.user_activity_daily": "succeeded",
        "silver.access_requests": "skipped",
    }
    forced = run_pipeline(
        spark, config, selected=["gold.user_activity_daily"], upstream=False, force=True, progress=lambda line: None
    )
    assert [(o.step.name, o.status, o.reason) for o in forced] == [("gold.user_activity_daily", "succeeded", "forced")]

    runs = read_table(spark, config, "ops.runs")
    assert runs.count() == 4 * 5 + 1
    failure = runs.where("status = 'failed'").first()
    assert failure.step == "silver.events" and "the cluster went away" in failure.error
    assert json.loads(failure.inputs) == {"bronze.app_events": 3}
    gold = runs.where("step = 'gold.user_activity_daily' AND status = 'succeeded'").orderBy("ended_at").collect()
    assert [json.loads(row.outputs)["gold.user_activity_daily"] for row in gold] == [1, 2, 3, 4]


@pytest.mark.e2e
def test_two_runs_at_once_share_their_steps_and_lose_or_repeat_nothing(spark, config, tmp_path):
    import os
    import subprocess
    import sys

    from helpers import write_conf_file

    key = "test-pseudonym-key-0123456789"
    logs = write_app_event_logs(Path(config.landing_path("app_events")), seed=4, scale=0.02, days=2, first_day=0)
    conf = write_conf_file(config, tmp_path / "run.yaml", quality={"enabled": True, "data_docs": False})
    command = [
        str(Path(sys.executable).parent / "lakehouse"),
        "run",
        "--select",
        "gold.user_activity_daily",
        "--conf-file",
        str(conf),
    ]
    runs = [
        subprocess.Popen(
            command, env={**os.environ, KEY_VARIABLE: key}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    printed = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], printed

    assert read_table(spark, config, "bronze.app_events").count() == logs.lines  # each line landed once
    events = read_table(spark, config, "silver.events")
    assert events.count() == events.select("event_id").distinct().count() > 0
    records = read_table(spark, config, "ops.runs").collect()
    assert len({row.run_id for row in records}) == 2
    for step in ("silver.events", "gold.user_activity_daily"):
        # one run did the work; the other waited for the step's lock and found it done
        assert sorted(row.status for row in records if row.step == step) == ["skipped", "succeeded"], printed
    landed = [row.rows_written for row in records if row.step == "ingest_app_events"]
    assert sorted(landed) == [0, logs.lines]
