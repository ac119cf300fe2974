"""bronze.image_refs -> silver.images: fetch the referenced objects, decode them, hash them.

Objects are read with Spark's ``binaryFile`` source, so they can live on any Hadoop filesystem.
Which of them exist, and how large they are, is found first by listing their folders (one listing per
folder, names and sizes only), so a missing object becomes a quarantine row instead of failing the job
and an object over the size cap is never read; an object that exists but cannot be read
(``ignoreCorruptFiles``) or does not decode as an image of an allowed format is quarantined too, and a
reference outside the source's allowed roots (``file:///etc/...``) is never fetched at all.
"""

from __future__ import annotations

import posixpath
from io import BytesIO

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.storage import quarantine

MISSING = "object_not_found"
UNREADABLE = "object_unreadable"
TOO_LARGE = "object_too_large"
NOT_AN_IMAGE = "not_an_image"
FORMAT_NOT_ALLOWED = "format_not_allowed"
CORRUPT = "corrupt_image"
EMPTY = "empty_object"
OUTSIDE_ROOTS = "uri_outside_allowed_roots"
ALL_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
# Magic bytes of formats worth naming when they are not allowed (so the reason says what the object is).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)

DECODED = T.StructType(
    [
        T.StructField("format", T.StringType()),
        T.StructField("width", T.IntegerType()),
        T.StructField("height", T.IntegerType()),
        T.StructField("mode", T.StringType()),
        T.StructField("error", T.StringType()),
    ]
)


def sniff_format(content: bytes) -> str | None:
    """The image format ``content`` starts like, from its magic bytes (None when unknown)."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _SIGNATURES if content.startswith(magic)), None)


def describe_image(
    content: bytes | None, formats: tuple[str, ...] = ALL_FORMATS
) -> tuple[str | None, int | None, int | None, str | None, str | None]:
    """``(format, width, height, mode, error)`` of encoded image bytes; ``error`` names why not an image.

    Only decoders of ``formats`` ever see the bytes: another format is ``format_not_allowed:<format>``
    (or ``not_an_image`` when unrecognised), never decoded.
    """
    from PIL import Image, UnidentifiedImageError

    if not content:
        return None, None, None, None, EMPTY
    try:
        with Image.open(BytesIO(content), formats=list(formats)) as image:
            image.load()  # decode every pixel: a truncated file fails here, not later in training
            return image.format, image.width, image.height, image.mode, None
    except UnidentifiedImageError:
        sniffed = sniff_format(content)
        if sniffed is None:
            return None, None, None, None, NOT_AN_IMAGE
        if sniffed not in formats:
            return None, None, None, None, f"{FORMAT_NOT_ALLOWED}:{sniffed}"
        return None, None, None, None, f"{CORRUPT}:UnidentifiedImageError"  # starts like one, does not decode
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return None, None, None, None, f"{CORRUPT}:{type(exc).__name__}"


def decode_image(formats: tuple[str, ...] = ALL_FORMATS):
    """A Spark UDF: :func:`describe_image` of every value, decoding only ``formats``.

    A plain Python UDF: pandas UDFs need pyarrow >= 15, and Petastorm pins 14 (README, pinned versions).
    """
    allowed = tuple(formats)
    return F.udf(lambda content: describe_image(bytes(content) if content is not None else None, allowed), DECODED)


def _existing_folders(spark: SparkSession, folders: list[str]) -> list[str]:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    existing = []
    for folder in folders:
        path = jvm.org.apache.hadoop.fs.Path(folder)
        if path.getFileSystem(conf).exists(path):
            existing.append(folder)
    return existing


def existing_objects(spark: SparkSession, object_uris: list[str]) -> dict[str, int]:
    """The objects of ``object_uris`` that exist, with their sizes, from one listing per folder (names and
    sizes only: no content is read)."""
    folders = _existing_folders(spark, sorted({posixpath.dirname(uri) for uri in object_uris}))
    if not folders:
        return {}
    listing = (
        spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(folders).select("path", "length")
    )
    wanted = set(object_uris)
    return {row.path: row.length for row in listing.collect() if row.path in wanted}


def fetch_objects(spark: SparkSession, refs: DataFrame, max_bytes: int | None = None) -> DataFrame:
    """``refs`` (with ``object_uri``) joined to the objects' bytes: adds ``content``, ``size_bytes`` and
    ``fetch_error`` (``object_not_found``, ``object_too_large:<bytes>`` over ``max_bytes`` (never read),
    ``object_unreadable``; null when fetched)."""
    uris = [row.object_uri for row in refs.select("object_uri").distinct().collect()]
    found = existing_objects(spark, uris)
    too_large = {uri: size for uri, size in found.items() if max_bytes is not None and size > max_bytes}
    present = sorted(uri for uri in found if uri not in too_large)
    schema = "object_uri string, content binary, size_bytes bigint"
    if present:
        objects = (
            spark.read.format("binaryFile")
            .option("ignoreCorruptFiles", "true")
            .load(present)
            .select(F.col("path").alias("object_uri"), "content", F.col("length").alias("size_bytes"))
        )
    else:
        objects = spark.createDataFrame([], schema)
    listed = spark.createDataFrame(
        [(uri, size if uri in too_large else None) for uri, size in found.items()],
        "object_uri string, __too_large bigint",
    ).withColumn("__listed", F.lit(True))
    fetched = refs.join(objects, "object_uri", "left").join(listed, "object_uri", "left")
    error = (
        F.when(F.col("__listed").isNull(), F.lit(MISSING))
        .when(F.col("__too_large").isNotNull(), F.concat(F.lit(f"{TOO_LARGE}:"), F.col("__too_large").cast("string")))
        .when(F.col("content").isNull(), F.lit(UNREADABLE))
    )
    return fetched.withColumn("fetch_error", error).drop("__listed", "__too_large")


def validate_images(fetched: DataFrame, formats: tuple[str, ...] = ALL_FORMATS) -> DataFrame:
    """Add the decoded ``format``/``width``/``height``/``mode``, ``content_hash`` (sha256) and
    ``_reject_reason`` (a fetch or decode error; null for a good image of an allowed format)."""
    decoded = fetched.withColumn("__decoded", F.when(F.col("fetch_error").isNull(), decode_image(formats)("content")))
    return decoded.select(
        "*",
        F.col("__decoded.format").alias("format"),
        F.col("__decoded.width").alias("width"),
        F.col("__decoded.height").alias("height"),
        F.col("__decoded.mode").alias("mode"),
        F.sha2("content", 256).alias("content_hash"),
        F.coalesce("fetch_error", "__decoded.error").alias(quarantine.REASON),
    ).drop("__decoded")


def first_per_content(images: DataFrame) -> DataFrame:
    """One row per ``content_hash``: the one with the smallest ``object_uri`` (deterministic)."""
    ranked = images.withColumn("__rank", F.row_number().over(Window.partitionBy("content_hash").orderBy("object_uri")))
    return ranked.where("__rank = 1").drop("__rank")


DUPLICATE_REFERENCE = "duplicate_reference"


def within_roots(uri: Column, roots: tuple[str, ...]) -> Column:
    """True where ``uri`` lies under one of ``roots`` (URIs as :func:`lakehouse.sources.manifests.normalise_uri`
    writes them; no root: everything is allowed)."""
    from lakehouse.sources.manifests import normalise_uri

    if not roots:
        return F.lit(True)
    prefixes = [normalise_uri(root).rstrip("/") + "/" for root in roots]
    allowed = F.lit(False)
    for prefix in prefixes:
        allowed = allowed | uri.startswith(prefix)
    return allowed & ~uri.contains("/../")


def classify_references(refs: DataFrame, published_uris: DataFrame, allowed_roots: tuple[str, ...] = ()) -> DataFrame:
    """Bronze reference rows with ``_reject_reason`` set for a line that did not parse
    (``bad_manifest_line:<why>``), a URI outside ``allowed_roots`` (``uri_outside_allowed_roots``), and a
    repeat of an ``object_uri`` (earlier in the batch, by manifest and line, or already published):
    ``duplicate_reference``. Every row comes out once."""
    parsed = F.col("parse_error").isNull()
    order = Window.partitionBy("object_uri").orderBy("source_file", "line_number")
    known = published_uris.select(F.col("object_uri").alias("__known")).distinct()
    ranked = refs.withColumn("__rank", F.when(parsed, F.row_number().over(order)))
    ranked = ranked.join(known, ranked["object_uri"] == known["__known"], "left")
    reason = (
        F.when(~parsed, F.concat(F.lit("bad_manifest_line:"), F.col("parse_error")))
        .when(~within_roots(F.col("object_uri"), allowed_roots), F.lit(OUTSIDE_ROOTS))
        .when((F.col("__rank") > 1) | F.col("__known").isNotNull(), F.lit(DUPLICATE_REFERENCE))
    )
    return ranked.withColumn(quarantine.REASON, reason).drop("__rank", "__known")


def reference_outcome(rows: DataFrame) -> DataFrame:
    """Reference rows with the quarantine protocol's columns (:mod:`lakehouse.storage.quarantine`): the reason, and
    as the record the manifest line (or the reference as JSON)."""
    reference = F.to_json(F.struct("object_uri", "label", "source_file", "line_number"))
    protocol = quarantine.reject(
        F.col(quarantine.REASON), record=F.coalesce(F.col("value"), reference), source=F.col("source_file")
    )
    return rows.select(*[c for c in rows.columns if c != quarantine.REASON], *protocol.values())
