"""Assertions and small tables shared by tests.

pyspark 4.1's ``assertDataFrameEqual`` insists on pyarrow >= 15, but Petastorm needs pyarrow 14
(see README, "Pinned versions"), so DataFrames are compared here on their schema and sorted rows.
"""

from pathlib import Path

from pyspark.sql import DataFrame

DEMO_PROJECT = Path(__file__).resolve().parents[1]  # the repository root is the demo scenario's project
DEMO_CONF_FILE = DEMO_PROJECT / "conf" / "local.yaml"
# The gold tables the suite's shared demo build (conftest.py's ``demo_lakehouse``) builds, with all they need.
DEMO_BUILD_TABLES = ("gold.photo_popularity_training", "gold.user_activity_daily", "gold.http_status_daily")


def sorted_rows(df: DataFrame) -> list[tuple]:
    return sorted((tuple(row) for row in df.collect()), key=repr)


def assert_same_rows(actual: DataFrame, expected: DataFrame, check_types: bool = True) -> None:
    """Same column names (and types), and the same rows in any order, duplicates counted."""
    assert actual.columns == expected.columns, f"columns {actual.columns} != {expected.columns}"
    if check_types:
        actual_types = [f.dataType for f in actual.schema.fields]
        expected_types = [f.dataType for f in expected.schema.fields]
        assert actual_types == expected_types, f"types {actual_types} != {expected_types}"
    assert sorted_rows(actual) == sorted_rows(expected)


def write_loader_versions(spark, config):
    """Three versions of gold.user_activity_daily in three files each: v1 users 0..299 (overwritten
    next), v2 users 1000..1499, v3 = v2 + users 1500..1599 appended. Returns (v2, v3)."""
    from datetime import date

    from lakehouse.storage.writer import Commit, append_rows, overwrite_table

    gold = demo_table("gold.user_activity_daily")

    def rows(users):
        return spark.createDataFrame(
            [(u, date(2026, 11, 1), u % 7, u % 5 + 1, 1, u % 3, 0, 0) for u in users], gold.schema
        ).repartition(3)

    overwrite_table(spark, config, gold, rows(range(300)), Commit("t", "r1"))
    v2 = overwrite_table(spark, config, gold, rows(range(1000, 1500)), Commit("t", "r2")).version
    v3 = append_rows(spark, config, gold, rows(range(1500, 1600)), Commit("t", "r3")).version
    return v2, v3


def write_conf_file(config, path, **sections):
    """``config`` as a YAML file another process can read (``--conf-file``): conf/local.yaml with this
    config's folders, PostgreSQL server and catalog; ``sections`` replace whole sections."""
    from pathlib import Path

    import yaml

    conf = yaml.safe_load(DEMO_CONF_FILE.read_text())
    conf["paths"] = {"warehouse": config.warehouse, "landing": config.landing}
    conf["postgres"] = {
        "host": config.postgres.host,
        "port": config.postgres.port,
        "data_dir": config.postgres.data_dir,
    }
    conf["catalog"] = {"metastore": config.catalog.metastore, "database": config.catalog.database}
    conf["privacy"] = {"key_file": config.privacy.key_file}
    conf.update(sections)
    Path(path).write_text(yaml.safe_dump(conf))
    return Path(path)


def demo_table(name: str):
    """The declaration of ``name`` in the demo project (the repository root)."""
    from lakehouse.project import load_project

    return load_project(DEMO_PROJECT).table(name)


def run_step(spark, config, name, **options):
    """Run one step of ``config``'s project (a step name or a table it writes) in the suite's session, as
    ``lakehouse step NAME --option ...`` would; returns its :class:`lakehouse.engine.job.JobResult`."""
    from lakehouse.engine import run_step as run

    return run(config, name, spark=spark, options=options)


def demo_job(name: str):
    """A job of the demo project's jobs/ folder, imported (e.g. ``demo_job("train_popularity").run``)."""
    from lakehouse.project.jobs import load_job

    return load_job(DEMO_PROJECT, name)


def build_tables(spark, config, *tables, options=None):
    """Run, in dependency order and without skipping, every step the ``tables`` need (theirs and upstream);
    ``options`` gives some steps options (by step name). Returns each step's result by step name."""
    from lakehouse.engine.orchestration import select_steps

    steps = select_steps(list(config.project.steps), list(tables))
    return {step.name: run_step(spark, config, step.name, **(options or {}).get(step.name, {})) for step in steps}
