"""bronze.image_refs -> silver.images: fetch the referenced objects, decode them, hash them.

Objects are read with Spark's ``binaryFile`` source, so they can live on any Hadoop filesystem.
Which of them exist is found first by listing their folders (one listing per folder, names only), so
a missing object becomes a quarantine row instead of failing the job; an object that exists but
cannot be read (``ignoreCorruptFiles``) or does not decode as an image is quarantined too.
"""

from __future__ import annotations

import posixpath
from io import BytesIO

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

MISSING = "object_not_found"
UNREADABLE = "object_unreadable"
NOT_AN_IMAGE = "not_an_image"
CORRUPT = "corrupt_image"
EMPTY = "empty_object"

DECODED = T.StructType([
    T.StructField("format", T.StringType()),
    T.StructField("width", T.IntegerType()),
    T.StructField("height", T.IntegerType()),
    T.StructField("mode", T.StringType()),
    T.StructField("error", T.StringType()),
])


def describe_image(content: bytes | None) -> tuple[str | None, int | None, int | None, str | None, str | None]:
    """``(format, width, height, mode, error)`` of encoded image bytes; ``error`` names why not an image."""
    from PIL import Image, UnidentifiedImageError

    if not content:
        return None, None, None, None, EMPTY
    try:
        with Image.open(BytesIO(content)) as image:
            image.load()  # decode every pixel: a truncated file fails here, not later in training
            return image.format, image.width, image.height, image.mode, None
    except UnidentifiedImageError:
        return None, None, None, None, NOT_AN_IMAGE
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return None, None, None, None, f"{CORRUPT}:{type(exc).__name__}"


# A plain Python UDF: pandas UDFs need pyarrow >= 15, and Petastorm pins 14 (README, pinned versions).
decode_image = F.udf(lambda content: describe_image(bytes(content) if content is not None else None), DECODED)
decode_image.__doc__ = "Spark column: :func:`describe_image` of every value."


def _existing_folders(spark: SparkSession, folders: list[str]) -> list[str]:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    existing = []
    for folder in folders:
        path = jvm.org.apache.hadoop.fs.Path(folder)
        if path.getFileSystem(conf).exists(path):
            existing.append(folder)
    return existing


def existing_objects(spark: SparkSession, object_uris: list[str]) -> set[str]:
    """The subset of ``object_uris`` that exist, from one name-only listing per folder."""
    folders = _existing_folders(spark, sorted({posixpath.dirname(uri) for uri in object_uris}))
    if not folders:
        return set()
    listing = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(folders).select("path")
    wanted = set(object_uris)
    return {row.path for row in listing.collect() if row.path in wanted}


def fetch_objects(spark: SparkSession, refs: DataFrame) -> DataFrame:
    """``refs`` (with ``object_uri``) joined to the objects' bytes: adds ``content``, ``size_bytes`` and
    ``fetch_error`` (``object_not_found`` / ``object_unreadable``, null when fetched)."""
    uris = [row.object_uri for row in refs.select("object_uri").distinct().collect()]
    present = sorted(existing_objects(spark, uris))
    schema = "object_uri string, content binary, size_bytes bigint"
    if present:
        objects = (
            spark.read.format("binaryFile").option("ignoreCorruptFiles", "true").load(present)
            .select(F.col("path").alias("object_uri"), "content", F.col("length").alias("size_bytes"))
        )
    else:
        objects = spark.createDataFrame([], schema)
    present_uris = spark.createDataFrame([(uri,) for uri in present], "object_uri string").withColumn("__listed", F.lit(True))
    fetched = refs.join(objects, "object_uri", "left").join(present_uris, "object_uri", "left")
    error = (
        F.when(F.col("__listed").isNull(), F.lit(MISSING))
        .when(F.col("content").isNull(), F.lit(UNREADABLE))
    )
    return fetched.withColumn("fetch_error", error).drop("__listed")


def validate_images(fetched: DataFrame) -> DataFrame:
    """Add the decoded ``format``/``width``/``height``/``mode``, ``content_hash`` (sha256) and
    ``reject_reason`` (a fetch or decode error; null for a good image)."""
    decoded = fetched.withColumn("__decoded", F.when(F.col("fetch_error").isNull(), decode_image("content")))
    return decoded.select(
        "*",
        F.col("__decoded.format").alias("format"),
        F.col("__decoded.width").alias("width"),
        F.col("__decoded.height").alias("height"),
        F.col("__decoded.mode").alias("mode"),
        F.sha2("content", 256).alias("content_hash"),
        F.coalesce("fetch_error", "__decoded.error").alias("reject_reason"),
    ).drop("__decoded")


def first_per_content(images: DataFrame) -> DataFrame:
    """One row per ``content_hash``: the one with the smallest ``object_uri`` (deterministic)."""
    ranked = images.withColumn("__rank", F.row_number().over(Window.partitionBy("content_hash").orderBy("object_uri")))
    return ranked.where("__rank = 1").drop("__rank")


DUPLICATE_REFERENCE = "duplicate_reference"
REJECT_COLUMN = "reject_reason"


def classify_references(refs: DataFrame, published_uris: DataFrame) -> DataFrame:
    """Bronze reference rows with ``reject_reason`` set for a line that did not parse
    (``bad_manifest_line:<why>``) and for a repeat of an ``object_uri`` (earlier in the batch, by
    manifest and line, or already published): ``duplicate_reference``. Every row comes out once."""
    parsed = F.col("parse_error").isNull()
    order = Window.partitionBy("object_uri").orderBy("source_file", "line_number")
    known = published_uris.select(F.col("object_uri").alias("__known")).distinct()
    ranked = refs.withColumn("__rank", F.when(parsed, F.row_number().over(order)))
    ranked = ranked.join(known, ranked["object_uri"] == known["__known"], "left")
    reason = (
        F.when(~parsed, F.concat(F.lit("bad_manifest_line:"), F.col("parse_error")))
        .when((F.col("__rank") > 1) | F.col("__known").isNotNull(), F.lit(DUPLICATE_REFERENCE))
    )
    return ranked.withColumn(REJECT_COLUMN, reason).drop("__rank", "__known")


def quarantine_records(rows: DataFrame, rule: str, run_id: str) -> DataFrame:
    """Rejected reference rows in the quarantine schema: the manifest line (or the reference as JSON)
    and the reason."""
    reference = F.to_json(F.struct("object_uri", "label", "source_file", "line_number"))
    return rows.select(
        F.coalesce(F.col("value"), reference).alias("record"),
        F.col(REJECT_COLUMN).alias("reason"),
        F.lit(rule).alias("rule"),
        F.col("source_file").alias("source"),
        F.current_timestamp().alias("quarantined_at"),
        F.lit(run_id).alias("run_id"),
    )
