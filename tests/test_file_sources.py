"""File sources end to end: the hostile corpus through a source of every format (no input stops a run,
every line is a row), and a batch a quality rule refuses (named, never skipped in silence, landed once its
bad file is set aside)."""

import json
from pathlib import Path

import pytest
from corpus import DAMAGED, UNREADABLE, build, line_count
from pyspark.sql import functions as F

from helpers import run_step
from lakehouse.engine.files import BatchFailed, set_aside
from lakehouse.engine.orchestration import failures, run_pipeline
from lakehouse.project.config import load_config
from lakehouse.project.scaffold import init_project
from lakehouse.storage.catalog import read_table
from lakehouse.transforms.privacy import KEY_VARIABLE

pytestmark = pytest.mark.e2e

FORMATS = {
    "text": {},
    "jsonl": {"columns": {"ok": "bigint", "a": "string"}},
    "csv": {"options": {"header": False}, "columns": {"c1": "string", "c2": "string", "c3": "string"}},
    "access_log": {},
    "syslog": {},
    "regex": {"options": {"pattern": r"(?P<word>\w+)\s(?P<rest>.*)"}},
}
LINE_FORMATS = [name for name in FORMATS if name != "csv"]


def project_with(root: Path, sources: dict[str, str], files: dict[str, str] | None = None) -> Path:
    init_project(root)
    for name, text in sources.items():
        (root / "sources" / f"{name}.yaml").write_text(text)
    for relative, text in (files or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def source_yaml(folder: Path, fmt: str, extra: dict) -> str:
    return json.dumps({"kind": "files", "path": str(folder), "format": fmt, **extra})  # JSON is YAML


def test_the_hostile_corpus_lands_through_a_source_of_every_format(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_METASTORE", "in-memory")
    monkeypatch.setenv(KEY_VARIABLE, "the key of the corpus test, long enough")
    folder = build(tmp_path / "corpus")
    root = project_with(tmp_path / "p", {f"c_{fmt}": source_yaml(folder, fmt, extra) for fmt, extra in FORMATS.items()})
    config = load_config(project=root, environ={"LAKEHOUSE_METASTORE": "in-memory"})
    outcomes = run_pipeline(spark, config, progress=lambda line: None)
    assert failures(outcomes) is None and {o.status for o in outcomes} == {"succeeded"}

    files = sorted(p for p in folder.iterdir() if p.is_file())
    for fmt in LINE_FORMATS:
        bronze = read_table(spark, config, f"bronze.c_{fmt}")
        per_file = {
            row.source_file.removeprefix("file:"): row["count"]
            for row in bronze.groupBy("source_file").count().collect()
        }
        for path in files:
            if path.name in DAMAGED or path.name in UNREADABLE:
                reason = DAMAGED.get(path.name) or UNREADABLE[path.name]
                file_rows = bronze.where((F.col("source_file") == f"file:{path}") & F.col("line_number").isNull())
                reasons = [r.parse_error for r in file_rows.collect()]
                assert len(reasons) == 1 and reasons[0].startswith(reason), (fmt, path.name, reasons)
            else:  # every line is one row, parsed or rescued with the reason
                assert per_file.get(str(path), 0) == line_count(path), (fmt, path.name)
        rescued = bronze.where(F.col("parse_error").isNotNull())
        assert rescued.where(F.col("parse_error") == "line_too_long").count() >= 2, fmt  # the 5 and 50 MiB lines
        assert bronze.where(F.length("value") > (1 << 20)).count() == 0, fmt  # never more than the limit kept
    csv = read_table(spark, config, "bronze.c_csv")
    assert csv.count() > 0 and csv.where(F.col("source_file").endswith("csv_hostile.csv")).count() > 0


def test_a_refused_batch_names_its_file_and_lands_once_that_file_is_set_aside(spark, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, "the key of the set-aside test, long enough")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.jsonl").write_text("".join(f'{{"user": "u{i}", "ms": {i}}}\n' for i in range(5)))
    (logs / "bad.jsonl").write_text('{"user": "v", "ms": 1}\n{"ms": 2}\n')  # a line without the user
    suite = (
        "suite: bronze.app\nrules:\n  - {name: user_present, expectation: expect_column_values_to_not_be_null, "
        "kwargs: {column: user}, action: fail}\n"
    )
    root = project_with(
        tmp_path / "p",
        {"app": source_yaml(logs, "jsonl", {"columns": {"user": "string", "ms": "bigint"}})},
        {"expectations/bronze/app.yaml": suite},
    )
    config = load_config(project=root, environ={"LAKEHOUSE_METASTORE": "in-memory"})

    for _ in range(2):  # refused, and refused again: never skipped in silence
        with pytest.raises(BatchFailed) as refused:
            run_step(spark, config, "ingest_app")
        message = str(refused.value)
        assert "a batch of 2 new file(s) did not land" in message and "user_present" in message
        assert f"the refused rows are in: file:{logs / 'bad.jsonl'}" in message
        assert "lakehouse source set-aside app" in message
        assert not Path(config.table_path("bronze.app"), "_delta_log", "00000000000000000001.json").exists()

    moved = set_aside(spark, config, config.project.source("app"), str(logs / "bad.jsonl"), "no user field", "test")
    assert not (logs / "bad.jsonl").exists() and Path(moved).read_text().startswith('{"user": "v"')
    landed = run_step(spark, config, "ingest_app")
    assert landed.counts["lines read"] == 5 and read_table(spark, config, "bronze.app").count() == 5
    recorded = read_table(spark, config, "ops.set_aside").collect()
    assert [(r.source, r.file, r.reason) for r in recorded] == [("app", f"file:{logs / 'bad.jsonl'}", "no user field")]
    with pytest.raises(ValueError, match="not under app's folder"):
        set_aside(spark, config, config.project.source("app"), moved, "again", "test")


def test_a_missing_local_landing_folder_is_an_error_naming_it(tmp_path):
    """Locally (a path or a ``file:`` URI) a folder that is not there is a mistake; only object storage, where a
    folder is the prefix of objects yet to come, lands nothing instead (tests/test_object_storage.py)."""
    from lakehouse.engine.files import landing_folder_exists

    assert landing_folder_exists(None, str(tmp_path), "put them there") is True  # no session needed for local ones
    assert landing_folder_exists(None, tmp_path.as_uri(), "put them there") is True
    for folder in (str(tmp_path / "nope"), (tmp_path / "nope").as_uri()):
        with pytest.raises(FileNotFoundError, match=f"no folder {tmp_path / 'nope'}: put them there"):
            landing_folder_exists(None, folder, "put them there")
