"""silver.images -> class predictions of an image classifier, computed inside Spark.

Inference runs in ``rdd.mapPartitions`` rather than a pandas UDF (pandas UDFs need pyarrow >= 15,
Petastorm pins 14): each partition loads the weights once from a broadcast, decodes its images with
Pillow and scores them in batches. An image that does not decode comes out with ``prediction_error``
set instead of being dropped, so the caller can quarantine it.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.models.fashion_classifier import LABELS, image_pixels, load_network, predict_probabilities
from lakehouse.storage import quarantine

ERROR_COLUMN = "prediction_error"
UNDECODABLE = "undecodable_image"
EMPTY = "empty_content"

SCORED = T.StructType(
    [
        T.StructField("content_hash", T.StringType()),
        T.StructField("predicted_class", T.IntegerType()),
        T.StructField("predicted_label", T.StringType()),
        T.StructField("confidence", T.FloatType()),
        T.StructField("class_probabilities", T.ArrayType(T.FloatType())),
        T.StructField(ERROR_COLUMN, T.StringType()),
    ]
)


def _scored_rows(hashes: list[str], probabilities) -> Iterator[tuple]:
    for content_hash, row in zip(hashes, probabilities):
        best = int(row.argmax())
        yield content_hash, best, LABELS[best], float(row[best]), row.tolist(), None


def score_partition(rows: Iterable, model_bytes: bytes, batch_size: int = 256) -> Iterator[tuple]:
    """Score one partition of ``(content_hash, content)`` rows: one tuple per row in :data:`SCORED` order."""
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(1)  # one Python worker per core already: more threads only contend
    network = load_network(model_bytes)
    hashes: list[str] = []
    pixels: list = []
    for row in rows:
        content_hash, content = row[0], row[1]
        if not content:
            yield content_hash, None, None, None, None, EMPTY
            continue
        try:
            pixels.append(image_pixels(bytes(content)))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            yield content_hash, None, None, None, None, f"{UNDECODABLE}:{type(exc).__name__}"
            continue
        hashes.append(content_hash)
        if len(hashes) == batch_size:
            yield from _scored_rows(hashes, predict_probabilities(network, np.stack(pixels)))
            hashes, pixels = [], []
    if hashes:
        yield from _scored_rows(hashes, predict_probabilities(network, np.stack(pixels)))


def score_images(
    images: DataFrame, model_bytes: bytes, batch_size: int = 256, partitions: int | None = None
) -> DataFrame:
    """Class probabilities of every image of ``images`` (``content_hash``, ``content``) under the model
    whose ``model.pt`` bytes are given: one row per image in the :data:`SCORED` schema, with
    ``prediction_error`` set (and no prediction) for an image that does not decode.

    ``partitions`` spreads the images over that many tasks first (inference is the expensive part).
    """
    spark = images.sparkSession
    weights = spark.sparkContext.broadcast(model_bytes)
    rows = images.select("content_hash", "content")
    if partitions:
        rows = rows.repartition(partitions)
    scored = rows.rdd.mapPartitions(lambda part: score_partition(part, weights.value, batch_size))
    return spark.createDataFrame(scored, SCORED)


def predictions_with_outcome(scored: DataFrame, model_name: str, model_version: str, run_id: str) -> DataFrame:
    """Every scored image in the columns of silver.image_predictions, with the quarantine protocol's columns
    (:mod:`lakehouse.storage.quarantine`) for those that could not be predicted: the reason, and as the record
    which image under which model (``content_hash``, ``model_name``, ``model_version`` as JSON, which
    :func:`unpredicted` reads back so that a re-run does not score them again)."""
    record = F.to_json(
        F.struct("content_hash", F.lit(model_name).alias("model_name"), F.lit(model_version).alias("model_version"))
    )
    return scored.select(
        "content_hash",
        F.lit(model_name).alias("model_name"),
        F.lit(model_version).alias("model_version"),
        "predicted_class",
        "predicted_label",
        "confidence",
        "class_probabilities",
        F.current_timestamp().alias("predicted_at"),
        F.lit(run_id).alias("run_id"),
        *quarantine.reject(F.col(ERROR_COLUMN), record=record).values(),
    )


def unpredicted(images: DataFrame, predictions: DataFrame, quarantined: DataFrame, model_version: str) -> DataFrame:
    """The images with neither a prediction nor a quarantine record under ``model_version`` (so a re-run
    scores nothing twice, and a new model version scores every image again)."""
    done = predictions.where(F.col("model_version") == model_version).select("content_hash")
    refused = (
        quarantined.select(
            F.get_json_object("record", "$.content_hash").alias("content_hash"),
            F.get_json_object("record", "$.model_version").alias("model_version"),
        )
        .where(F.col("model_version") == model_version)
        .select("content_hash")
    )
    return images.join(done.unionByName(refused), "content_hash", "left_anti")
