"""The lakehouse command's table commands, run in-process against a test warehouse."""

from datetime import date

import pytest
import yaml

from helpers import DEMO_CONF_FILE, demo_table
from lakehouse.cli.main import main
from lakehouse.storage.writer import Commit, overwrite_table

GOLD = demo_table("gold.user_activity_daily")


@pytest.fixture
def conf_file(config, tmp_path):
    conf = yaml.safe_load(DEMO_CONF_FILE.read_text())
    conf["paths"] = {"warehouse": config.warehouse, "landing": config.landing}
    conf["catalog"] = {"metastore": config.catalog.metastore}
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(conf))
    return str(path)


def cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_history_tag_diff_show_restore_lineage(spark, config, conf_file, capsys):
    for i, users in enumerate(({1: 1}, {1: 1, 2: 2})):
        rows = [(u, date(2026, 11, 1), 1, n, n, 0, 0, 0) for u, n in users.items()]
        overwrite_table(spark, config, GOLD, spark.createDataFrame(rows, GOLD.schema), Commit("build", f"run-{i}"))
    c = ("--conf-file", conf_file)

    code, out, _ = cli(capsys, "history", GOLD.name, *c)
    assert code == 0 and "build / run-1" in out and "WRITE" in out
    code, out, _ = cli(capsys, "tag", GOLD.name, "v-one", "--version", "1", *c)
    assert code == 0 and "tagged gold.user_activity_daily@1 as 'v-one'" in out
    code, out, _ = cli(capsys, "tags", *c)
    assert "v-one" in out and "gold.user_activity_daily__v_one" in out
    code, out, _ = cli(capsys, "diff", GOLD.name, "1", "2", *c)
    assert "1 added, 0 removed, 0 changed" in out
    code, out, _ = cli(capsys, "sql", "SELECT count(*) AS n FROM gold.user_activity_daily__v_one", *c)
    assert code == 0 and "|1  |" in out
    code, _, err = cli(capsys, "restore", GOLD.name, "--version", "0", *c)
    assert code == 1 and "tags point past version 0 (v-one@1)" in err
    code, out, _ = cli(capsys, "restore", GOLD.name, "--tag", "v-one", *c)
    assert code == 0 and "as new version 3" in out
    code, out, _ = cli(capsys, "lineage", GOLD.name, "--version", "2", *c)
    assert out.startswith("gold.user_activity_daily@2  (build, run run-1)")
    code, _, err = cli(capsys, "show", GOLD.name, "--tag", "nope", *c)
    assert code == 1 and "has no tag 'nope'" in err


def test_a_step_that_cannot_run_says_why_and_exits_1(spark, conf_file, capsys):
    code, out, err = cli(capsys, "step", "gold.user_activity_daily", "--conf-file", conf_file)
    assert code == 1 and out == ""
    assert (
        "gold.user_activity_daily failed: RuntimeError: silver.events do not exist yet: run silver.events first" in err
    )
    code, _, err = cli(capsys, "step", "gold.user_activity_dail", "--conf-file", conf_file)
    assert code == 1 and "did you mean gold.user_activity_daily" in err


def test_init_then_declare_a_folder_of_logs_without_writing_python(tmp_path, capsys, monkeypatch):
    target = tmp_path / "ops"
    code, out, _ = cli(capsys, "init", str(target))
    assert code == 0 and "wrote conf/local.yaml" in out
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.jsonl").write_text(
        "".join(f'{{"user": "u{i}@example.com", "ms": {i}, "ok": true}}\n' for i in range(20))
    )
    code, out, _ = cli(
        capsys, "--project", str(target), "source", "add-files", "app", "--path", str(logs), "--format", "jsonl"
    )
    assert code == 0, out
    assert "columns inferred from 20 sampled lines: user string, ms bigint, ok boolean" in out
    declared = (target / "sources" / "app.yaml").read_text()
    assert "format: jsonl" in declared and "user: {as: user_hash, purpose: email}" in declared  # personal by its values
    monkeypatch.chdir(target)  # inside the project: no --project needed
    code, out, _ = cli(capsys, "tables", "--declared")
    assert code == 0 and "bronze.app" in out and "sources/app.yaml" in out
    code, out, _ = cli(capsys, "sources")
    assert "app (files, jsonl)" in out and "bronze.app: not landed yet" in out
    code, _, err = cli(capsys, "source", "add-files", "bad", "--path", str(logs), "--format", "text", "--pattern", "x")
    assert code == 1 and "--pattern is the line pattern (named groups) of --format regex" in err
