"""silver.images -> silver.image_predictions: a real classifier trained on Fashion-MNIST's test split,
predicting real (train split) pictures inside Spark, incrementally, per model version."""

import io
import json
import time
from datetime import datetime, timezone

import numpy as np
import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from helpers import DEMO_CONF_FILE, demo_table, run_step
from lakehouse.install.datasets import fashion_mnist_images, png_bytes
from lakehouse.models.fashion_classifier import (
    EXPERIMENT,
    LABELS,
    TrainingParams,
    build_network,
    current_model,
    deserialize,
    ensure_model,
    model_version,
    register_model,
    serialize,
    train_classifier,
    train_once,
    training_cache_file,
)
from lakehouse.models.predictions import unpredicted
from lakehouse.project.config import load_config
from lakehouse.storage import small_files as storage
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.writer import Commit, append_rows

N_PHOTOS = 40


@pytest.fixture(scope="module")
def model_config(tmp_path_factory):
    """A warehouse whose current model was trained (full default recipe) and logged to MLflow once."""
    root = tmp_path_factory.mktemp("predictions")
    config = load_config(
        DEMO_CONF_FILE,
        environ={
            "LAKEHOUSE_WAREHOUSE": str(root / "warehouse"),
            "LAKEHOUSE_LANDING": str(root / "landing"),
            "LAKEHOUSE_METASTORE": "in-memory",
        },
    )
    started = time.monotonic()
    model = ensure_model(config)
    print(
        f"trained {model.version} in {model.training_seconds:.1f}s (with MLflow: {time.monotonic() - started:.1f}s), "
        f"held-out accuracy {model.holdout_accuracy:.3f}"
    )
    return config


def test_same_weights_give_the_same_version():
    import torch

    torch.manual_seed(1)
    state = build_network().state_dict()
    version = model_version(state)
    assert len(version) == 12 and int(version, 16) >= 0
    assert model_version({name: tensor.clone() for name, tensor in state.items()}) == version
    assert model_version(deserialize(serialize(state))) == version
    changed = {name: tensor.clone() for name, tensor in state.items()}
    changed["0.bias"][0] += 1e-3
    assert model_version(changed) != version


def test_training_is_deterministic():
    first = train_classifier(train_size=300, holdout=200, epochs=1)
    second = train_classifier(train_size=300, holdout=200, epochs=1)
    assert first.version == second.version and first.holdout_accuracy == second.holdout_accuracy
    assert train_classifier(train_size=300, holdout=200, epochs=1, seed=1).version != first.version


def test_a_recipe_is_trained_once_per_machine_and_a_damaged_cache_file_is_trained_again(tmp_path, monkeypatch):
    from lakehouse.models import fashion_classifier

    monkeypatch.setattr(fashion_classifier, "user_cache_dir", lambda: tmp_path)
    recipe = {"train_size": 300, "holdout": 200, "epochs": 1}
    first = train_once(**recipe)
    cached = training_cache_file(TrainingParams(**recipe))
    assert not first.reused and cached.is_file() and cached.parent.parent.parent == tmp_path
    again = train_once(**recipe)
    assert again.reused and again.version == first.version and again.holdout_accuracy == first.holdout_accuracy
    assert training_cache_file(TrainingParams(**recipe, seed=1)) != cached  # another recipe, another file
    assert not train_once(**recipe, retrain=True).reused
    cached.write_bytes(fashion_classifier.serialize(train_classifier(**recipe, seed=1).state_dict))  # wrong weights
    repaired = train_once(**recipe)
    assert not repaired.reused and repaired.version == first.version


def test_classifier_beats_chance_on_held_out_pictures_and_is_logged_once(model_config):
    import mlflow

    model = current_model(model_config)
    assert model.holdout_accuracy > 0.7  # chance is 0.1
    assert len(model.content) < 1_000_000
    again = ensure_model(model_config)
    assert not again.trained and again.version == model.version and again.content == model.content
    run = mlflow.get_run(model.mlflow_run_id)
    assert run.data.tags["model_version"] == model.version
    assert run.data.metrics["holdout_accuracy"] == pytest.approx(model.holdout_accuracy)
    assert run.data.params["training_split"] == "t10k"
    assert mlflow.get_experiment(run.info.experiment_id).name == EXPERIMENT
    assert [a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="model")] == [
        "model/model.pt"
    ]


def test_model_files_also_go_through_hadoop_filesystems(spark, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "_local_path", lambda uri: None)  # force the Hadoop branch on file: URIs
    uri = f"file://{tmp_path}/m/model.pt"
    assert not storage.exists(uri)
    storage.write_bytes(uri, b"\x00weights\xff")
    assert storage.exists(uri) and storage.read_bytes(uri) == b"\x00weights\xff"


def _image_row(content: bytes, label: str, fmt="PNG", size=(28, 28), mode="L"):
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    return (
        digest,
        f"file:/photos/{digest[:8]}.png",
        label,
        fmt,
        size[0],
        size[1],
        mode,
        len(content),
        content,
        datetime(2026, 11, 1, tzinfo=timezone.utc),
        "test-setup",
    )


def _add_images(spark, config, rows):
    images = demo_table("silver.images")
    append_rows(spark, config, images, spark.createDataFrame(rows, images.schema), Commit("test", "test-setup"))


def _run(spark, config):
    """Run the step; return its counts of predicted and undecodable images beside its result."""
    result = run_step(spark, config, "silver.image_predictions")
    result.predicted = result.counts.get("rows accepted", 0)
    result.undecodable = sum(n for k, n in result.counts.items() if k.startswith("rows undecodable_image"))
    return result


def _jpeg_rgb(pixels: bytes) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("L", (28, 28), pixels).resize((56, 56)).convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.e2e
def test_predictions_are_incremental_per_model_version_and_nothing_is_lost(spark, model_config):
    config = model_config
    pixels, labels = fashion_mnist_images("train")
    photos = [_image_row(png_bytes(pixels[i]), LABELS[labels[i]]) for i in range(N_PHOTOS - 1)]
    # one larger colour JPEG: resized and greyed like the rest
    photos.append(_image_row(_jpeg_rgb(pixels[N_PHOTOS]), LABELS[labels[N_PHOTOS]], "JPEG", (56, 56), "RGB"))
    broken = _image_row(b"\x89PNG\r\n\x1a\n truncated", "bag")
    _add_images(spark, config, photos + [broken])
    model = current_model(config)

    first = _run(spark, config)
    assert (first.predicted, first.undecodable) == (N_PHOTOS, 1)
    assert first.counts["model version"] == model.version and "training seconds" not in first.counts
    predictions = read_table(spark, config, "silver.image_predictions")
    quarantine = read_table(spark, config, "silver.image_predictions_quarantine")
    assert predictions.count() + quarantine.count() == N_PHOTOS + 1  # rows in = rows out + quarantined
    rows = predictions.collect()
    assert {(r.model_name, r.model_version) for r in rows} == {("fashion_mnist_cnn", model.version)}
    for row in rows:
        assert len(row.class_probabilities) == 10 and sum(row.class_probabilities) == pytest.approx(1, abs=1e-4)
        assert row.confidence == pytest.approx(max(row.class_probabilities))
        assert row.predicted_label == LABELS[row.predicted_class]
    truth = {photo[0]: photo[2] for photo in photos}
    correct = sum(truth[r.content_hash] == r.predicted_label for r in rows)
    assert correct / N_PHOTOS > 0.6  # pictures the model never saw
    bad = quarantine.collect()
    assert bad[0].reason.startswith("undecodable_image:") and bad[0].rule == "silver.image_predictions"
    assert json.loads(bad[0].record) == {
        "content_hash": broken[0],
        "model_name": "fashion_mnist_cnn",
        "model_version": model.version,
    }
    images_version = current_version(spark, config.table_path("silver.images"))
    last_commit = DeltaTable.forPath(spark, config.table_path("silver.image_predictions")).history(1).collect()[0]
    assert json.loads(last_commit.userMetadata)["inputs"] == {"silver.images": images_version}

    rerun = _run(spark, config)
    assert (rerun.predicted, rerun.undecodable) == (0, 0)
    assert not any(write.committed for write in rerun.writes)

    # A new model version predicts every image again; the old version's rows stay.
    newer = register_model(config, train_classifier(train_size=1000, epochs=1))
    assert newer.version != model.version and current_model(config).version == newer.version
    third = _run(spark, config)
    assert (third.predicted, third.undecodable) == (N_PHOTOS, 1)
    by_version = {
        r["model_version"]: r["count"]
        for r in read_table(spark, config, "silver.image_predictions").groupBy("model_version").count().collect()
    }
    assert by_version == {model.version: N_PHOTOS, newer.version: N_PHOTOS}
    assert (
        read_table(spark, config, "silver.image_predictions_quarantine")
        .where(F.get_json_object("record", "$.model_version") == newer.version)
        .count()
        == 1
    )


def test_only_images_without_a_row_for_the_model_version_are_scored_again(spark):
    images = spark.createDataFrame([(h, b"png") for h in "abcde"], "content_hash string, content binary")
    predictions = spark.createDataFrame(
        [("a", "v1"), ("b", "v1"), ("c", "v0")], "content_hash string, model_version string"
    )
    quarantined = spark.createDataFrame(
        [
            ('{"content_hash":"d","model_name":"m","model_version":"v1"}',),
            ('{"content_hash":"e","model_name":"m","model_version":"v0"}',),
        ],
        "record string",
    )
    todo = unpredicted(images, predictions, quarantined, "v1")
    assert sorted(r.content_hash for r in todo.collect()) == ["c", "e"]
    assert todo.columns == ["content_hash", "content"]


def test_resized_pictures_keep_their_class():
    from lakehouse.models.fashion_classifier import image_pixels

    pixels = fashion_mnist_images("t10k")[0][0]
    grey = image_pixels(_jpeg_rgb(pixels))
    assert grey.shape == (28, 28) and grey.dtype == np.uint8
    original = np.frombuffer(pixels, dtype=np.uint8).reshape(28, 28).astype(int)
    assert np.abs(grey.astype(int) - original).mean() < 12
