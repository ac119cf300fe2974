"""Image references -> bronze.image_refs -> silver.images: real Fashion-MNIST pixels, bad objects on purpose."""

import hashlib
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from helpers import run_step
from lakehouse.install.datasets import fashion_mnist_images, png_bytes
from lakehouse.scenario.app_db import BAD_OBJECT_KINDS, write_app_database
from lakehouse.sources.manifests import parse_manifest, resolve_uri
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.quarantine import REASON
from lakehouse.transforms.images import describe_image

STEPS = {"ingest_image_manifests": "ingest_photos", "build_silver_images": "silver.images"}


def run(spark, config, name):
    return run_step(spark, config, STEPS[name])


def test_manifest_lines_parse_or_are_rescued_with_the_reason():
    csv_text = b"uri,label,split\nimg/a.png,3,train\n\n/abs/b.png,,test\nonly-two,fields\n,4,train\n"
    lines = parse_manifest(csv_text, "file:/data/manifests/m.csv")
    assert [(line.line_number, line.object_uri, line.label, line.parse_error) for line in lines] == [
        (2, "file:/data/manifests/img/a.png", "3", None),
        (4, "file:/abs/b.png", "", None),
        (5, None, None, "wrong_field_count:2"),
        (6, None, None, "missing_field:uri"),
    ]
    assert json.loads(lines[0].metadata) == {"split": "train"}
    jsonl = b'{"uri": "s3a://bucket/x.png", "label": 7, "w": 1}\n[1, 2]\n{broken\n{"label": 1}\n'
    lines = parse_manifest(jsonl, "s3a://bucket/manifests/m.jsonl")
    assert [(line.object_uri, line.label, line.parse_error) for line in lines] == [
        ("s3a://bucket/x.png", "7", None),
        (None, None, "not_a_json_object"),
        (None, None, "invalid_json"),
        (None, None, "missing_field:uri"),
    ]
    assert parse_manifest(b"\xff\xfe\x00bad", "m.csv")[0].parse_error.startswith("not_utf8_text")
    assert parse_manifest(b"path,label\nx.png,1\n", "m.csv")[0].parse_error == "csv_header_without_uri_column"
    assert resolve_uri("../objects/p.png", "file:/l/manifests/m.csv") == "file:/l/objects/p.png"
    assert resolve_uri("../objects/p.png", "s3a://bucket/l/manifests/m.csv") == "s3a://bucket/l/objects/p.png"
    assert resolve_uri("../../../p.png", "s3a://bucket/l/m.csv") == "s3a://bucket/p.png"  # never above the bucket
    assert resolve_uri("img/p.png", "s3a://bucket/m/x.csv") == "s3a://bucket/m/img/p.png"
    assert resolve_uri("file:///abs/p.png", "s3a://b/m.csv") == "file:/abs/p.png"


def test_image_description_names_what_is_wrong():
    pixels = fashion_mnist_images("t10k")[0][0]
    good = png_bytes(pixels)
    assert describe_image(good) == ("PNG", 28, 28, "L", None)
    assert describe_image(good[:48])[-1].startswith("corrupt_image:")
    assert describe_image(b"<html>502</html>")[-1] == "not_an_image"
    assert describe_image(b"")[-1] == "empty_object"


@pytest.mark.e2e
def test_photos_land_validated_deduplicated_and_reconciled(spark, config):
    landing = Path(config.landing)
    moment = datetime(2026, 11, 1, tzinfo=timezone.utc)
    uploads = [(photo_id, 1 + photo_id % 7, moment) for photo_id in range(1, 301)]
    db = write_app_database(
        uploads,
        7,
        landing / "objects" / "photos",
        landing / "image_manifests",
        seed=9,
        bad_object_rate=0.05,
        reuse_rate=0.1,
    )
    assert all(db.bad_objects.values()) and db.reused_images > 0  # every kind of bad input is exercised

    ingest = run(spark, config, "ingest_image_manifests")
    assert ingest.counts["references"] == len(uploads)
    build = run(spark, config, "build_silver_images")
    bronze = read_table(spark, config, "bronze.image_refs")
    references = read_table(spark, config, "silver.image_references")
    images = read_table(spark, config, "silver.images")
    quarantine = read_table(spark, config, "silver.images_quarantine")
    assert bronze.count() == len(uploads)
    assert references.count() + quarantine.count() == bronze.count()  # nothing lost
    reasons = Counter(row.reason.split(":")[0] for row in quarantine.collect())
    assert reasons == Counter({BAD_OBJECT_KINDS[kind]: n for kind, n in db.bad_objects.items()})

    # one image per distinct content, and it is the content of the objects on disk
    good_files = [landing / "objects" / "photos" / f"photo-{p}.png" for p, *_ in uploads]
    expected_hashes = set()
    quarantined = {row.record for row in quarantine.collect()}
    for path in good_files:
        if path.exists() and not any(f"/{path.name}," in record for record in quarantined):
            expected_hashes.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert {row.content_hash for row in images.select("content_hash").collect()} == expected_hashes
    n_references = references.count()
    assert images.count() < n_references  # re-uploaded pictures collapsed
    assert images.where((F.col("width") != 28) | (F.col("format") != "PNG")).count() == 0
    assert build.counts["bronze batches"] == 1

    # a re-run finds nothing new; a new manifest with one new photo and one repeated reference adds only those
    tables = ("bronze.image_refs", "silver.images", "silver.image_references")
    before = {t: current_version(spark, config.table_path(t)) for t in tables}
    run(spark, config, "ingest_image_manifests")
    run(spark, config, "build_silver_images")
    assert {t: current_version(spark, config.table_path(t)) for t in tables} == before
    new_object = landing / "objects" / "photos" / "photo-9999.png"
    new_object.write_bytes(png_bytes(fashion_mnist_images("t10k")[0][5]))
    repeated = db.photos[0][2]
    (landing / "image_manifests" / "late.jsonl").write_text(
        json.dumps({"uri": "../objects/photos/photo-9999.png", "label": "shirt"})
        + "\n"
        + json.dumps({"uri": repeated, "label": "again"})
        + "\n"
    )
    run(spark, config, "ingest_image_manifests")
    run(spark, config, "build_silver_images")
    assert read_table(spark, config, "silver.image_references").count() == n_references + 1
    latest = read_table(spark, config, "silver.images_quarantine").orderBy(F.desc("quarantined_at")).first()
    assert latest.reason == "duplicate_reference"


def test_only_allowed_formats_are_decoded_and_the_reason_says_what_an_object_is():
    from io import BytesIO

    from PIL import Image

    png = png_bytes(fashion_mnist_images("t10k")[0][0])
    gif = BytesIO()
    Image.new("L", (8, 8)).save(gif, format="GIF")
    assert describe_image(png, ("PNG",))[0] == "PNG"
    assert describe_image(png, ("JPEG",))[-1] == "format_not_allowed:PNG"  # never handed to a decoder
    assert describe_image(gif.getvalue(), ("PNG", "JPEG"))[-1] == "format_not_allowed:GIF"
    assert describe_image(png[:40])[-1] == "corrupt_image:UnidentifiedImageError"  # starts like a PNG, is not one


def test_references_outside_the_allowed_roots_are_quarantined_unread(spark):
    from lakehouse.transforms.images import classify_references

    refs = spark.createDataFrame(
        [
            (uri, n, None)
            for n, uri in enumerate(
                [
                    "file:/landing/photos/a.png",
                    resolve_uri("../../../etc/passwd", "file:/landing/manifests/m.csv"),
                    "file:/etc/shadow",
                    "s3a://other-bucket/x.png",
                ],
                start=2,
            )
        ],
        "object_uri string, line_number bigint, parse_error string",
    ).withColumn("source_file", F.lit("file:/landing/manifests/m.csv"))
    published = spark.createDataFrame([], "object_uri string")
    reasons = {r.object_uri: r[REASON] for r in classify_references(refs, published, ("/landing",)).collect()}
    assert reasons == {
        "file:/landing/photos/a.png": None,
        "file:/etc/passwd": "uri_outside_allowed_roots",
        "file:/etc/shadow": "uri_outside_allowed_roots",
        "s3a://other-bucket/x.png": "uri_outside_allowed_roots",
    }
