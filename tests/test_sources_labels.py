"""A labels source end to end: real Label Studio exports (captured from label-studio 1.23.2, in all three
formats) and the hostile corpus land in bronze, every label once per export or a rescued file with its
reason; silver keeps each label version once, annotators pseudonymised, with the agreement beside it; a
re-labelled task keeps both labels (type 2); a re-run with nothing new changes nothing."""

import json
import shutil

import pytest
from corpus import CORPUS_DIR, small_files
from pyspark.sql import functions as F

from lakehouse.engine.orchestration import failures, run_pipeline
from lakehouse.project.config import load_config
from lakehouse.project.scaffold import init_project
from lakehouse.sources.label_exports import ExportError, read_export
from lakehouse.storage.catalog import read_table
from lakehouse.transforms.label_agreement import label_agreement, task_agreement
from lakehouse.transforms.privacy import KEY_VARIABLE, python_pseudonym_text

pytestmark = pytest.mark.e2e

KEY = "the key of the labels test, long enough"
EXPORTS = CORPUS_DIR / "label_studio"
HOSTILE = {
    "truncated.json": (EXPORTS / "export.json").read_bytes()[:700],
    "latin1.csv": "annotation_id,annotator,id,created_at,updated_at,label\n1,Jos\u00e9,1,,,Bag\n".encode("latin-1"),
    "access.log": b'127.0.0.1 - - [07/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1\n',
    "empty.csv": b"",
    "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "other.csv": b"a,b\n1,2\n",
    "huge_id.json": b'[{"id": 1e400, "annotations": [{"id": 1, "completed_by": 1, '
    b'"result": [{"from_name": "label", "value": {"choices": ["Bag"]}}]}]}]',
    "long_id.json": b'[{"id": 99999999999999999999, "annotations": [{"id": 1, "completed_by": 1, '
    b'"result": [{"from_name": "label", "value": {"choices": ["Bag"]}}]}]}]',
}


def oracle(data: bytes) -> list | None:
    """What the file holds by the pure-Python reader: its labels, or None when it is not an export."""
    try:
        labels = read_export(data.decode("utf-8"))
    except (UnicodeDecodeError, ExportError):
        return None
    return None if any(max(abs(a.task_id), abs(a.annotation_id)) >= 1 << 63 for a in labels) else labels


def relabelled(export: list[dict]) -> list[dict]:
    """``export`` after the first annotator of the first task changed their mind (a later export)."""
    changed = json.loads(json.dumps(export))
    annotation = changed[0]["annotations"][0]
    annotation["result"][0]["value"]["choices"] = ["Sneaker"]
    annotation["updated_at"] = "2026-12-07T09:00:00.000000Z"
    return changed


@pytest.fixture
def labels_project(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    folder = tmp_path / "exports"
    folder.mkdir()
    for path in EXPORTS.iterdir():
        shutil.copy(path, folder / path.name)
    for path in small_files():
        shutil.copy(path, folder / f"corpus-{path.name}")
    for name, data in HOSTILE.items():
        (folder / name).write_bytes(data)
    root = tmp_path / "p"
    init_project(root)
    (root / "sources" / "team_labels.yaml").write_text(json.dumps({"kind": "labels", "path": str(folder)}))
    config = load_config(project=root, environ={"LAKEHOUSE_METASTORE": "in-memory"})
    return config, folder


def test_exports_land_with_their_history_agreement_and_pseudonymised_annotators(spark, labels_project):
    config, folder = labels_project
    assert [s.name for s in config.project.steps] == ["ingest_team_labels", "silver.team_labels"]

    # no export yet: both steps succeed and write nothing (silver is not published from an empty bronze)
    waiting = folder.with_name("waiting")
    folder.rename(waiting)
    folder.mkdir()
    empty = run_pipeline(spark, config, progress=lambda line: None)
    assert not failures(empty) and [o.rows_written for o in empty] == [0, 0]
    assert set(empty[1].outputs.values()) == {0}  # the four silver tables exist, never written
    folder.rmdir()
    waiting.rename(folder)

    assert not failures(run_pipeline(spark, config, progress=lambda line: None))

    # bronze: each file's labels as the pure-Python reader reads them, or one row saying why it is not an export
    bronze = read_table(spark, config, "bronze.team_labels")
    per_file: dict[str, list] = {}
    for row in bronze.collect():
        per_file.setdefault(row.source_file.removeprefix("file:"), []).append(row)
    files = sorted(p for p in folder.iterdir() if p.stat().st_size)  # Spark reads no split of an empty file
    assert sorted(per_file) == [str(p) for p in files]  # every file is in bronze: none lost
    rescued = 0
    for path in files:
        expected, rows = oracle(path.read_bytes()), per_file[str(path)]
        if expected is None:
            rescued += 1
            assert len(rows) == 1 and rows[0].parse_error.startswith("not_an_export: "), path.name
        else:
            assert sorted((r.task_id, r.annotator, r.label, r.updated_at) for r in rows) == sorted(
                (a.task_id, a.annotator, a.label, a.updated_at) for a in expected
            ), path.name
    assert set(HOSTILE) - {"empty.csv"} <= {p.name for p in files if per_file[str(p)][0].parse_error}

    # silver: the three exports hold the same labels, so each version is there once, pseudonymised
    exported = read_export((EXPORTS / "export.json").read_text())
    labels = read_table(spark, config, "silver.team_labels")
    versions_before = labels.count()
    key = KEY.encode()
    assert sorted(
        (r.task_id, r.annotation_id, r.annotator_id, r.label, r.is_current, r.valid_to) for r in labels.collect()
    ) == sorted(
        (a.task_id, a.annotation_id, python_pseudonym_text(a.annotator, key, "label_annotator"), a.label, True, None)
        for a in exported
    )
    raw_annotators = {a.annotator for a in exported}
    assert not raw_annotators & {r.annotator_id for r in labels.collect()}
    quarantined = read_table(spark, config, "silver.team_labels_quarantine")
    assert quarantined.count() == rescued == bronze.where(F.col("parse_error").isNotNull()).count()
    assert (
        bronze.count()
        == bronze.where(F.col("parse_error").isNull()).count() + quarantined.count()
        == 3 * versions_before + quarantined.count()  # JSON, JSON-MIN and CSV: each label three times, kept once
    )

    # agreement: what the library computes from the export, with pseudonyms for annotators
    per_task = {r.task_id: r for r in read_table(spark, config, "silver.team_labels_agreement").collect()}
    for expected in task_agreement(exported):
        got = per_task.pop(expected.task_id)
        assert (got.annotators, got.majority_label, got.agreement, got.content_hash) == (
            expected.annotators,
            expected.majority_label,
            expected.agreement,
            expected.content_hash,
        )
    assert not per_task
    alphas = {r.label: r.alpha for r in read_table(spark, config, "silver.team_labels_label_agreement").collect()}
    assert alphas == pytest.approx(label_agreement(exported), nan_ok=True)

    # a later export in which one annotator re-labelled a task: both labels kept, the old one closed
    later = relabelled(json.loads((EXPORTS / "export.json").read_text()))
    (folder / "export-later.json").write_text(json.dumps(later))
    assert not failures(run_pipeline(spark, config, progress=lambda line: None))
    history = read_table(spark, config, "silver.team_labels").where(
        (F.col("task_id") == later[0]["id"]) & (F.col("annotation_id") == later[0]["annotations"][0]["id"])
    )
    versions = sorted((r.label, r.is_current, str(r.valid_to)) for r in history.collect())
    old_label = exported[[a.annotation_id for a in exported].index(later[0]["annotations"][0]["id"])].label
    assert versions == sorted([("Sneaker", True, "None"), (old_label, False, "2026-12-07 09:00:00")])
    assert read_table(spark, config, "silver.team_labels").count() == versions_before + 1
    task = {r.task_id: r for r in read_table(spark, config, "silver.team_labels_agreement").collect()}[later[0]["id"]]
    assert (task.annotators, task.agreement) == (
        (t := task_agreement(read_export(json.dumps(later)))[0]).annotators,
        t.agreement,
    )

    # nothing new: the same tables, no file quarantined twice
    counts = {t: read_table(spark, config, t).count() for t in ("silver.team_labels", "silver.team_labels_quarantine")}
    assert not failures(run_pipeline(spark, config, progress=lambda line: None))
    assert {t: read_table(spark, config, t).count() for t in counts} == counts
