"""Label Studio tasks from rows: object URLs, pre-annotations and the labelling config (no Spark)."""

import xml.etree.ElementTree as ElementTree

import pytest

from lakehouse.labels.tasks import ImageToLabel, labeling_config, task, task_url


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
