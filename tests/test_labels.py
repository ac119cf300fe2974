"""Label Studio tasks from rows (object URLs, pre-annotations, the labelling config) and its exports read
back (JSON, JSON-MIN, CSV; hostile files refused) with agreement over them: no Spark."""

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from lakehouse.labels.tasks import ImageToLabel, labeling_config, task, task_url
from lakehouse.sources.label_exports import Annotation, ExportError, detect_format, read_export
from lakehouse.transforms.label_agreement import label_agreement, task_agreement


def test_objects_become_urls_label_studio_can_load(tmp_path):
    photo = tmp_path / "landing" / "photos" / "a b.png"
    assert task_url(f"file:{photo}", str(tmp_path / "landing")) == "/data/local-files/?d=photos/a%20b.png"
    assert task_url(str(photo), str(tmp_path / "landing")) == "/data/local-files/?d=photos/a%20b.png"
    assert task_url("s3a://bucket/photos/a.png") == "s3://bucket/photos/a.png"
    assert task_url(f"file:{photo}") == f"file:{photo}"  # no root given: the reference as it is
    with pytest.raises(ValueError, match="not under the local files root"):
        task_url(f"file:{tmp_path / 'elsewhere.png'}", str(tmp_path / "landing"))


def test_a_prediction_becomes_a_pre_annotation_and_no_prediction_none():
    predicted = task(ImageToLabel("h1", "s3a://b/1.png", "bag", 0.41, "abc123"))
    assert predicted["data"] == {"image": "s3://b/1.png", "object_uri": "s3a://b/1.png", "content_hash": "h1"}
    (prediction,) = predicted["predictions"]
    assert (prediction["model_version"], prediction["score"]) == ("abc123", 0.41)
    assert prediction["result"] == [
        {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["bag"]}}
    ]
    assert "predictions" not in task(ImageToLabel("h2", "s3a://b/2.png"))


def test_the_labelling_config_offers_every_label_for_the_tasks_image():
    view = ElementTree.fromstring(labeling_config(["bag", 'a "quoted" & odd <label>']))
    image, choices = view.find("Image"), view.find("Choices")
    assert image.get("value") == "$image" and choices.get("toName") == image.get("name") == "image"
    assert choices.get("name") == "label"
    assert [c.get("value") for c in choices.findall("Choice")] == ["bag", 'a "quoted" & odd <label>']


# --- Label Studio exports read back ------------------------------------------------------------------

EXPORTS = Path(__file__).parent / "corpus" / "label_studio"  # made by Label Studio 1.23.2: 2 tasks, 2 annotators


def test_every_export_format_reads_back_the_same_labels():
    read = {}
    for name, fmt in (("export.json", "json"), ("export-min.json", "json_min"), ("export.csv", "csv")):
        text = (EXPORTS / name).read_text()
        assert detect_format(text) == fmt
        read[fmt] = sorted(read_export(text), key=lambda a: a.annotation_id)
    assert read["json"] == read["json_min"] == read["csv"]
    assert [(a.task_id, a.annotator, a.label, a.content_hash) for a in read["json"]] == [
        (1, "1", "Bag", "h1"),
        (1, "2", "Trouser", "h1"),
        (2, "1", "Trouser", "h2"),
    ]


def test_rectangles_and_several_choices_give_a_row_per_label():
    task = {
        "id": 7,
        "data": {"image": "s3://b/7.png", "content_hash": "h7"},
        "annotations": [
            {
                "id": 70,
                "completed_by": {"id": 3, "email": "c@example.org"},
                "updated_at": "2026-12-01T00:00:00Z",
                "result": [
                    {
                        "from_name": "box",
                        "type": "rectanglelabels",
                        "value": {
                            "x": 10,
                            "y": 20,
                            "width": 30,
                            "height": 40,
                            "rotation": 0,
                            "rectanglelabels": ["bag"],
                        },
                    },
                    {"from_name": "tags", "type": "choices", "value": {"choices": ["blurry", "dark"]}},
                ],
            },
            {"id": 71, "completed_by": 4, "was_cancelled": True, "result": []},
        ],
    }
    rows = read_export(json.dumps([task]))
    assert [(a.control, a.label_type, a.label, a.annotator) for a in rows] == [
        ("box", "rectanglelabels", "bag", "3"),
        ("tags", "choices", "blurry", "3"),
        ("tags", "choices", "dark", "3"),
    ]
    assert json.loads(rows[0].region) == {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0}
    flat = [
        {
            "id": 7,
            "annotator": 3,
            "annotation_id": 70,
            "created_at": "",
            "updated_at": "",
            "content_hash": "h7",
            "box": [{"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["bag"]}],
            "tags": {"choices": ["blurry", "dark"]},
        }
    ]
    assert [(a.control, a.label, a.region) for a in read_export(json.dumps(flat), controls=("box", "tags"))] == [
        (a.control, a.label, a.region) for a in rows
    ]


def test_hostile_files_are_refused_with_a_reason(tmp_path):
    from corpus import small_files

    for path in small_files():
        try:
            read_export(path.read_bytes().decode("utf-8", errors="replace"))
        except ExportError:
            pass  # refused, saying why: what a source turns into a quarantine row
    truncated = (EXPORTS / "export.json").read_text()[:500]
    with pytest.raises(ExportError, match="not valid JSON"):
        read_export(truncated)
    with pytest.raises(ExportError, match="without"):
        read_export("a,b\n1,2\n")
    with pytest.raises(ExportError, match="not valid JSON"):
        read_export("[" * 100_000 + "]" * 100_000)


def test_agreement_per_task_and_krippendorffs_alpha_over_each_annotators_latest_label():
    def choice(task_id, annotation_id, annotator, label, updated_at="2026-12-01"):
        return Annotation(
            task_id, annotation_id, annotator, "label", "choices", label, None, f"h{task_id}", None, None, updated_at
        )

    labels = [
        choice(1, 1, "a", "x"),
        choice(1, 2, "b", "x"),
        choice(2, 3, "a", "y"),
        choice(2, 4, "b", "y"),
        choice(3, 5, "a", "x"),
        choice(3, 6, "b", "x"),
        choice(4, 7, "a", "x"),
        choice(4, 8, "b", "x"),
        choice(4, 9, "b", "y", updated_at="2026-12-02"),  # b changed its mind on task 4: the latest counts
        choice(5, 10, "a", "y"),
    ]  # one annotator: no agreement
    tasks = {t.task_id: t for t in task_agreement(labels)}
    assert [(tasks[i].annotators, tasks[i].majority_label, tasks[i].agreement) for i in range(1, 6)] == [
        (2, "x", 1.0),
        (2, "y", 1.0),
        (2, "x", 1.0),
        (2, None, 0.0),
        (1, "y", None),
    ]
    alphas = label_agreement(labels)
    assert alphas[None] == pytest.approx(8 / 15)  # 1 - (2/8) / (2*5*3 / (8*7)), counted by hand
    assert alphas["x"] == alphas["y"] == pytest.approx(8 / 15)  # two labels: each is the other's complement
    assert label_agreement([choice(1, 1, "a", "x"), choice(1, 2, "b", "x")])[None] is None  # one value: undefined
