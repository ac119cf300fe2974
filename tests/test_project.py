"""A project folder read into declarations and steps: no Spark, no data (the declaration layer alone)."""

from pathlib import Path

import pytest

from helpers import DEMO_PROJECT
from lakehouse.project import ProjectError, build_project, find_project_root, load_project
from lakehouse.project.definitions import referenced_tables, with_tables_replaced
from lakehouse.project.scaffold import WriteReport, init_project, write_generated


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    """A project in ``tmp_path`` holding ``files`` (relative path -> text)."""
    init_project(tmp_path)
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


LOGS = "kind: files\npath: ${landing}/logs\nformat: syslog\n"


def test_the_demo_is_a_project_whose_steps_are_derived_from_its_declarations():
    demo = load_project(DEMO_PROJECT)
    steps = {step.name: step for step in demo.steps}
    # sources become ingest steps; a database table's silver and an image source's silver are derived
    assert {"ingest_appdb", "ingest_nycflights13", "ingest_app_events", "ingest_access_logs", "ingest_photos"} <= set(
        steps
    )
    assert steps["silver.users"].inputs == ("bronze.appdb_users",)
    assert "silver.users_history" in steps["silver.users"].outputs
    # a SQL definition's inputs are the tables its query names
    assert steps["gold.flight_delays_monthly"].inputs == ("silver.airlines", "silver.flights")
    assert set(steps["gold.flight_delays_monthly"].upstream_steps) == {"silver.airlines", "silver.flights"}
    # a Python definition's inputs are its parameters, resolved by short name
    assert steps["gold.photo_popularity_training"].inputs == (
        "silver.photos",
        "silver.users",
        "silver.follows_history",
        "silver.events",
        "silver.image_references",
        "silver.images",
        "silver.image_predictions",
    )
    order = [step.name for step in demo.steps]
    for step in demo.steps:
        assert all(order.index(upstream) < order.index(step.name) for upstream in step.upstream_steps)
    table = demo.table("gold.daily_active_users")
    assert table.keys == ("event_date",) and table.schema_file.name == "daily_active_users.yaml"
    assert table.expectations_file == DEMO_PROJECT / "expectations/gold/daily_active_users.yaml"
    with pytest.raises(KeyError, match="did you mean gold.daily_active_users"):
        demo.table("gold.daily_active_user")


def test_sql_inputs_are_read_off_the_query_and_replaced_in_place():
    query = "WITH t AS (SELECT * FROM silver.a) SELECT x.*, DATE'2026-01-01' d FROM t JOIN `gold`.`b` AS x ON 1 = 1"
    assert referenced_tables(query, Path("q.sql")) == ["silver.a", "gold.b"]
    replaced = with_tables_replaced(query, {"silver.a": "v1", "gold.b": "v2"}, Path("q.sql"))
    assert replaced == "WITH t AS (SELECT * FROM v1) SELECT x.*, DATE'2026-01-01' d FROM t JOIN v2 AS x ON 1 = 1"
    with pytest.raises(ValueError, match="name tables with their layer"):
        referenced_tables("SELECT * FROM events", Path("q.sql"))
    with pytest.raises(ValueError, match="not DELETE|a SELECT"):
        referenced_tables("DELETE FROM silver.a", Path("q.sql"))


def test_a_user_project_with_sources_and_definitions_in_sql_and_python(tmp_path):
    root = project(
        tmp_path,
        {
            "sources/auth.yaml": LOGS,
            "tables/silver/logins.sql": "-- keys: [host, day]\n"
            "SELECT hostname AS host, CAST(event_time AS DATE) AS day, "
            "count(*) AS n FROM bronze.auth GROUP BY 1, 2",
            "tables/gold/busiest.py": "from lakehouse import table\n\n@table('the busiest hosts', keys=['host'])\n"
            "def busiest(ctx, logins):\n    return logins\n",
        },
    )
    found = build_project(root)
    assert [s.name for s in found.steps] == ["ingest_auth", "silver.logins", "gold.busiest"]
    assert found.table("gold.busiest").upstreams == ("silver.logins",)
    assert found.table("gold.busiest").description == "the busiest hosts"
    assert found.table("silver.logins").schema is None  # no schema file: the columns are what the query gives
    assert found.table("bronze.auth").schema["hostname"].dataType.simpleString() == "string"
    assert found.inputs["gold.busiest"] == {"logins": "silver.logins"}
    assert find_project_root(cwd=root / "tables" / "gold", environ={}) == root


@pytest.mark.parametrize(
    "files, message",
    [
        (
            {"tables/gold/x.sql": "SELECT * FROM silver.nothing"},
            "reads 'silver.nothing', which no source or definition declares",
        ),
        ({"tables/gold/x.sql": "-- keys: [a]\n-- mood: happy\nSELECT 1 AS a"}, r"unknown settings \['mood'\]"),
        ({"tables/gold/x.sql": "-- Just a note about this table\nSELECT 1 AS a"}, "must be YAML settings"),
        ({"tables/gold/x.py": "def x():\n    return None\n"}, "exactly one function decorated with @table"),
        (
            {"tables/gold/x.py": "from lakehouse import table\n@table()\ndef x(ctx, nothing):\n    return None\n"},
            "parameter 'nothing' names no table",
        ),
        ({"tables/gold/a.sql": "SELECT * FROM gold.b", "tables/gold/b.sql": "SELECT * FROM gold.a"}, "cycle"),
        ({"tables/platinum/x.sql": "SELECT 1 AS a"}, "layer one of silver, gold"),
        ({"sources/Bad-Name.yaml": LOGS}, "lower-case letters"),
        (
            {"sources/db.yaml": "kind: database\nurl: jdbc:sqlite:/x.db\ntables: {t: {keys: [id]}}\n"},
            "has no column file",
        ),
        (
            {
                "sources/db.yaml": "kind: database\nurl: jdbc:sqlite:/x.db\npassword_from: hunter2\n"
                "tables: {t: {keys: [id]}}\n"
            },
            "password_from is env:VARIABLE or project-postgres",
        ),
        ({"sources/x.yaml": "kind: files\npath: /x\nformat: yaml\n"}, "format"),
        ({"sources/l.yaml": "kind: labels\n"}, "'path' is required"),
        ({"sources/l.yaml": "kind: labels\npath: /x\ncontrols: {a: 1}\n"}, "'controls' lists"),
        ({"sources/l.yaml": "kind: labels\npath: /x\nsilver: Labels\n"}, "lower-case letters"),
        ({"sources/l.yaml": "kind: labels\npath: /x\nformat: csv\n"}, "unknown keys"),
        (
            {"sources/l.yaml": "kind: labels\npath: /x\n", "tables/silver/l_agreement.sql": "SELECT 1 AS a"},
            "silver.l_agreement is already written by",
        ),
        (
            {"sources/auth.yaml": LOGS, "tables/silver/auth.sql": "SELECT 1 AS a"},
            None,
        ),  # silver.auth: fine (bronze.auth is the source)
        (
            {
                "sources/auth.yaml": LOGS,
                "tables/gold/x.py": "from lakehouse import table\n@table()\ndef x(auth):\n    return auth\n",
                "tables/silver/auth.sql": "SELECT 1 AS a",
            },
            "could be bronze.auth or silver.auth",
        ),
    ],
)
def test_declarations_that_do_not_fit_are_refused_naming_the_file(tmp_path, files, message):
    root = project(tmp_path, files)
    if message is None:
        build_project(root)
        return
    with pytest.raises(ProjectError, match=message):
        build_project(root)


def test_generated_files_are_updated_only_while_nobody_edited_them(tmp_path):
    path = tmp_path / "sources" / "db.yaml"
    report = WriteReport()
    write_generated(path, "a: 1\n", "test", report)
    write_generated(path, "a: 2\n", "test", report)  # untouched since generated: brought up to date
    assert path.read_text().endswith("a: 2\n") and report.updated == [path]
    path.write_text(path.read_text().replace("a: 2", "a: 2  # mine"))
    report = WriteReport()
    write_generated(path, "a: 3\n", "test", report)  # edited: kept, the proposal beside it, the change shown
    assert "# mine" in path.read_text() and report.kept == [path]
    assert path.with_name("db.yaml.new").read_text().endswith("a: 3\n")
    assert "-a: 2  # mine" in report.diffs[path] and "+a: 3" in report.diffs[path]


def test_init_makes_an_empty_project_that_loads(tmp_path):
    target = tmp_path / "mine"
    report = init_project(target)
    assert (target / "lakehouse_project.yaml").is_file() and (target / "conf" / "local.yaml").is_file()
    assert (target / "jobs" / "run.py") in report.written
    empty = build_project(target)
    assert empty.steps == () and [d.name for d in empty.tables()] == [
        "quality.results",
        "ops.tags",
        "ops.set_aside",
        "ops.runs",
    ]
    with pytest.raises(FileExistsError):
        init_project(target)


def test_add_labels_declares_a_labels_source_and_its_steps(tmp_path, capsys):
    from lakehouse.cli.main import main

    root = tmp_path / "mine"
    init_project(root)
    args = ["--project", str(root), "source", "add-labels", "team", "--path", "${landing}/exports"]
    assert main([*args, "--controls", "label, box"]) == 0
    assert "silver.team_agreement" in capsys.readouterr().out
    project = build_project(root)
    source = project.source("team")
    assert (source.kind, source.path, source.controls) == ("labels", "${landing}/exports", ("label", "box"))
    steps = {step.name: step for step in project.steps}
    assert steps["ingest_team"].outputs == ("bronze.team",)
    assert steps["silver.team"].outputs == (
        "silver.team",
        "silver.team_quarantine",
        "silver.team_agreement",
        "silver.team_label_agreement",
    )
    assert steps["silver.team"].upstream_steps == ("ingest_team",)
    assert project.table("bronze.team").private_columns[0].name == "annotator"
    assert "annotator" not in project.table("silver.team").schema.names
    assert main([*args[:-2], "--path", "/x", "--controls", " , "]) == 1
    assert "--controls names" in capsys.readouterr().err
