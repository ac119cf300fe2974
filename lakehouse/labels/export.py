"""``lakehouse labels export``: the images worth a human's time, as Label Studio tasks.

By default the images are chosen by uncertainty sampling: those the classifier is least confident about
come first (an image it has not predicted yet counts as the least confident of all), so each label a
person adds teaches the model the most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.labels.tasks import ImageToLabel, labeling_config, task
from lakehouse.project.config import LakehouseConfig
from lakehouse.storage.catalog import read_table, table_exists

IMAGES = "silver.images"
PREDICTIONS = "silver.image_predictions"
DEFAULT_TASKS = 100


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the tasks, how many carry a prediction, and the model version they come from."""

    tasks: list[dict]
    predicted: int
    model_version: str | None
    labels: list[str]


def latest_model_version(predictions: DataFrame) -> str | None:
    """The model version that predicted last."""
    newest = predictions.orderBy(F.col("predicted_at").desc(), F.col("model_version")).select("model_version").first()
    return newest.model_version if newest else None


def _predictions(spark: SparkSession, config: LakehouseConfig, table: str) -> DataFrame:
    """``table``'s predictions, or none (with its columns) when the project has no such table yet."""
    columns = (
        "content_hash string, predicted_label string, confidence float, model_version string, predicted_at timestamp"
    )
    try:
        path = config.table_path(config.table(table).name)
    except KeyError:
        return spark.createDataFrame([], columns)
    return read_table(spark, config, table) if table_exists(spark, path) else spark.createDataFrame([], columns)


def images_to_label(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str = IMAGES,
    where: str | None = None,
    least_confident: int | None = DEFAULT_TASKS,
    model_version: str | None = None,
    predictions_table: str = PREDICTIONS,
) -> tuple[list[ImageToLabel], str | None, list[str]]:
    """The images of ``table`` (filtered by the SQL ``where``), least confident first, at most
    ``least_confident`` of them (``None``: all); the model version whose predictions were used; and the
    labels a person can choose from (the model's and the manifests'). Without a ``predictions_table``
    (not declared, or not built yet) there are no pre-annotations and the order is the content hash's."""
    images = read_table(spark, config, table)
    if where:
        images = images.where(where)
    predictions = _predictions(spark, config, predictions_table)
    model_version = model_version or latest_model_version(predictions)
    predictions = predictions.where(F.col("model_version") == F.lit(model_version))
    ranked = (
        images.select("content_hash", "object_uri", F.col("label").alias("manifest_label"))
        .join(
            predictions.select("content_hash", "predicted_label", "confidence", "model_version"), "content_hash", "left"
        )
        .orderBy(F.col("confidence").asc_nulls_first(), F.col("content_hash"))
    )
    if least_confident is not None:
        ranked = ranked.limit(least_confident)
    rows = ranked.collect()
    chosen = [
        ImageToLabel(r.content_hash, r.object_uri, r.predicted_label, r.confidence, r.model_version) for r in rows
    ]
    model_labels = [r.predicted_label for r in predictions.select("predicted_label").distinct().collect()]
    manifest_labels = [r.label for r in images.select("label").where(F.col("label").isNotNull()).distinct().collect()]
    return chosen, model_version, sorted(set(model_labels) | set(manifest_labels))


def export_tasks(
    spark: SparkSession,
    config: LakehouseConfig,
    out: str | Path,
    table: str = IMAGES,
    where: str | None = None,
    least_confident: int | None = DEFAULT_TASKS,
    model_version: str | None = None,
    local_files_root: str | None = None,
    config_out: str | Path | None = None,
    predictions_table: str = PREDICTIONS,
) -> Exported:
    """Write the tasks to ``out`` (Label Studio's JSON import format) and, with ``config_out``, the
    labelling config they fit."""
    chosen, version, labels = images_to_label(
        spark, config, table, where, least_confident, model_version, predictions_table
    )
    tasks = [task(image, local_files_root) for image in chosen]
    Path(out).write_text(json.dumps(tasks, indent=1))
    if config_out is not None:
        Path(config_out).write_text(labeling_config(labels))
    return Exported(tasks, sum(1 for image in chosen if image.predicted_label is not None), version, labels)
