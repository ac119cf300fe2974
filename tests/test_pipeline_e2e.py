"""The thin path end to end on real files and real Delta tables: logs -> bronze -> silver -> gold -> tensors."""

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from helpers import demo_table, run_step
from lakehouse.engine import orchestration
from lakehouse.loaders.columns import UnsupportedColumnError
from lakehouse.loaders.petastorm_loader import petastorm_dataloader
from lakehouse.quality import gate
from lakehouse.quality.gate import data_docs_index
from lakehouse.scenario.app_events import BAD_LINE_KINDS, write_app_event_logs
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.publish import quality_root
from lakehouse.storage.writer import Commit, overwrite_table
from lakehouse.versioning.history import table_history

pytestmark = pytest.mark.e2e

GOLD_COLUMNS = ["user_key", "day_index", "n_events", "n_logins", "n_views", "n_likes", "n_uploads"]


def run_pipeline(spark, config):
    """Every step gold.user_activity_daily needs, through the orchestrator (forced: the test re-runs them)."""
    outcomes = orchestration.run_pipeline(
        spark, config, selected=["gold.user_activity_daily"], force=True, progress=lambda line: None
    )
    assert not orchestration.failures(outcomes)


def versions(spark, config, *tables):
    return {table: current_version(spark, config.table_path(table)) for table in tables}


def generate(config, **kwargs):
    return write_app_event_logs(
        Path(config.landing_path("app_events")), seed=3, scale=0.1, bad_line_rate=0.05, duplicate_rate=0.05, **kwargs
    )


def test_a_job_that_ran_a_pipeline_does_not_render_the_data_docs_again(config, monkeypatch):
    """``make demo``: the pipeline job's ``run_pipeline`` renders the site once; the job does not render it again."""
    from lakehouse.engine.job import JobResult, run_job
    from lakehouse.storage.writer import WriteResult

    config = replace(config, quality=replace(config.quality, data_docs=True))
    renders = []
    monkeypatch.setattr(gate, "build_data_docs", renders.append)

    def job(rendered):
        wrote = [WriteResult("gold.user_activity_daily", 1, 5, True)]
        return lambda ctx, args: JobResult(ctx.job_name, ctx.run_id, wrote, data_docs_rendered=rendered)

    run_job("pipeline", job(rendered=True), config=config)
    assert renders == []
    run_job("another", job(rendered=False), config=config)
    assert renders == [quality_root(config)]


def test_logs_to_tensors_reconcile_rerun_and_time_travel(spark, config, monkeypatch):
    config = replace(config, quality=replace(config.quality, data_docs=True))  # this test reads the site
    logs = generate(config, days=2)
    renders, render = [], gate.build_data_docs
    monkeypatch.setattr(gate, "build_data_docs", lambda root: renders.append(root) or render(root))
    run_pipeline(spark, config)
    monkeypatch.undo()
    # the run renders the Data Docs site once, at its end (not once per step, nor per validation)
    assert renders == [quality_root(config)]

    bronze = read_table(spark, config, "bronze.app_events")
    silver = read_table(spark, config, "silver.events")
    quarantine = read_table(spark, config, "silver.events_quarantine")
    # nothing lost: every line lands in bronze, and every bronze row is in silver or in quarantine
    assert bronze.count() == logs.lines
    assert silver.count() + quarantine.count() == logs.lines
    assert silver.count() == logs.valid_events
    assert silver.select("event_id").distinct().count() == silver.count()
    reasons = Counter({row.reason: row["count"] for row in quarantine.groupBy("reason").count().collect()})
    expected = Counter()
    for kind, count in logs.bad_lines.items():
        expected[BAD_LINE_KINDS[kind]] += count
    expected["duplicate_event_id"] = logs.duplicate_lines
    assert reasons == +expected
    assert bronze.where(F.col("source_file").endswith(".gz")).count() > 0  # rotated files were read
    assert quarantine.where(F.col("source").isNull()).count() == 0
    assert data_docs_index(quality_root(config)).is_file()

    # every gate left its results: bronze warned about the empty lines (and kept them)
    results = read_table(spark, config, "quality.results")
    assert {r.table_name for r in results.select("table_name").distinct().collect()} == {
        "bronze.app_events",
        "silver.events",
        "gold.user_activity_daily",
    }
    empty_lines = results.where(F.col("rule") == "lines_not_empty").first()
    assert (empty_lines.outcome, empty_lines.rows_failing) == ("warned", logs.bad_lines["empty_line"])
    assert results.where(F.col("outcome") == "failed").count() == 0

    # a re-run with no new files changes nothing upstream of gold
    tables = ("bronze.app_events", "silver.events", "silver.events_quarantine")
    before = versions(spark, config, *tables)
    run_pipeline(spark, config)
    assert versions(spark, config, *tables) == before
    assert read_table(spark, config, "silver.events").count() == logs.valid_events

    # a new day of logs: only its lines are ingested, and the old version stays readable
    new_day = generate(config, days=1, first_day=2)
    run_pipeline(spark, config)
    assert read_table(spark, config, "bronze.app_events").count() == logs.lines + new_day.lines
    assert read_table(spark, config, "silver.events").count() == logs.valid_events + new_day.valid_events
    old = read_table(spark, config, "silver.events", version=before["silver.events"])
    assert old.count() == logs.valid_events
    by_sql = spark.sql(f"SELECT count(*) FROM silver.events VERSION AS OF {before['silver.events']}").first()[0]
    assert by_sql == logs.valid_events

    # gold equals what the transform makes of silver, and the loader yields exactly the gold rows
    gold = read_table(spark, config, "gold.user_activity_daily")
    assert gold.agg(F.sum("n_events")).first()[0] == read_table(spark, config, "silver.events").count()
    loaded = []
    with petastorm_dataloader(spark, config, "gold.user_activity_daily", columns=GOLD_COLUMNS, batch_size=64) as loader:
        for batch in loader:
            assert all(batch[name].dtype.is_floating_point is False for name in GOLD_COLUMNS)
            loaded += list(zip(*(batch[name].tolist() for name in GOLD_COLUMNS)))
    expected_rows = [tuple(row) for row in gold.select(*GOLD_COLUMNS).collect()]
    assert sorted(loaded) == sorted(expected_rows)


def test_loader_names_columns_it_cannot_turn_into_tensors(spark, config):
    gold = demo_table("gold.user_activity_daily")
    overwrite_table(spark, config, gold, spark.createDataFrame([], gold.schema), Commit("test", "run"))
    with pytest.raises(UnsupportedColumnError, match=r"event_date \(date\)"):
        with petastorm_dataloader(spark, config, "gold.user_activity_daily", columns=["user_key", "event_date"]):
            pass


def test_a_silver_batch_that_dies_between_its_commits_is_replayed_exactly_once(spark, config, monkeypatch):
    import lakehouse.storage.publish as publish

    logs = generate(config, days=1)
    run_step(spark, config, "ingest_app_events")

    def killed(*args, **kwargs):
        raise RuntimeError("killed between the quarantine commit and the silver commit")

    monkeypatch.setattr(publish, "insert_new_rows", killed)
    with pytest.raises(RuntimeError, match="killed between"):
        run_step(spark, config, "silver.events")
    quarantined_before_crash = read_table(spark, config, "silver.events_quarantine").count()
    assert quarantined_before_crash == logs.total_bad_lines + logs.duplicate_lines
    assert read_table(spark, config, "silver.events").count() == 0

    monkeypatch.undo()
    run_step(spark, config, "silver.events")
    assert read_table(spark, config, "silver.events_quarantine").count() == quarantined_before_crash  # not twice
    assert read_table(spark, config, "silver.events").count() == logs.valid_events
    # every commit carries its job, run and transaction (micro-batch writes included)
    for table, job in (("bronze.app_events", "ingest_app_events"), ("silver.events_quarantine", "silver.events")):
        latest = table_history(spark, config, table, limit=1)[0]
        assert latest.job == job and latest.run_id.startswith(job)
