"""An image source (``kind: images``): references into bronze, validated images into silver.

Ingestion lands one reference per image, new ones only, exactly once: from manifests (CSV with a header or
JSON lines: ``uri``, ``label``, any other fields) when the source names a manifest folder, or from the
objects found under its folder, labelled by the sub-folder they sit in (the ImageFolder convention:
``<path>/<label>/<file>``). The objects stay where they are.

Silver fetches every referenced object (missing ones, objects over the size cap and references outside
the allowed roots are quarantined, never read), decodes it with only the allowed formats' decoders,
hashes it (sha256: duplicates collapse to one image) and quarantines what is not a valid image.
"""

from __future__ import annotations

from collections import Counter

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.engine.files import landing_folder_exists, new_files
from lakehouse.engine.job import JobContext, JobResult
from lakehouse.project.sources import ImageSource, expand
from lakehouse.project.steps import Step
from lakehouse.sources.manifests import manifest_lines, normalise_uri
from lakehouse.storage import quarantine
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.publish import publish_rows
from lakehouse.storage.streams import delta_table_changes, for_each_new_batch, whole_files
from lakehouse.storage.writer import Commit, Transaction, ensure_table, write_result
from lakehouse.transforms.images import (
    classify_references,
    fetch_objects,
    first_per_content,
    reference_outcome,
    validate_images,
)

MANIFEST_GLOB = "*.{csv,jsonl,json}"


def manifest_references(files: DataFrame) -> DataFrame:
    """One row per manifest line (``content``/``source_file``/``source_modified_at`` in, bronze columns out)."""
    return files.select(
        F.explode(manifest_lines(F.col("content"), F.col("source_file"))).alias("line"),
        "source_file",
        "source_modified_at",
    ).select("line.*", "source_file", "source_modified_at")


def folder_references(files: DataFrame, root: str) -> DataFrame:
    """One row per object found under ``root`` (path, modificationTime in), labelled by its first
    sub-folder (null for an object directly under ``root``); ``line_number`` is 0 (no manifest line)."""
    prefix = normalise_uri(root).rstrip("/") + "/"
    relative = F.when(F.col("path").startswith(prefix), F.expr(f"substring(path, {len(prefix) + 1})"))
    parts = F.split(relative, "/")
    return files.select(
        F.lit(None).cast("string").alias("value"),
        F.lit(0).cast("bigint").alias("line_number"),
        relative.alias("uri"),
        F.col("path").alias("object_uri"),
        F.when(F.size(parts) > 1, F.element_at(parts, 1)).alias("label"),
        F.lit(None).cast("string").alias("metadata"),
        F.when(relative.isNull(), F.lit("outside_source_folder")).alias("parse_error"),
        F.col("path").alias("source_file"),
        F.col("modificationTime").alias("source_modified_at"),
    )


def ingest_images(ctx: JobContext, step: Step) -> JobResult:
    """Land the references new since the last run (see the module doc)."""
    spark, config = ctx.spark, ctx.config
    source: ImageSource = config.project.source(step.source)
    target = config.table(source.bronze_name)
    folder = ctx.options.source_dir or expand(source.manifest or source.path, config)
    ready = landing_folder_exists(
        spark,
        folder,
        f"put the {'manifests' if source.manifest else 'images'} there, or change "
        f"'{'manifest' if source.manifest else 'path'}' in {source.file}",
    )
    path = ensure_table(spark, config, target)
    before = current_version(spark, path)
    counts = {"references": 0}

    def land(batch: DataFrame, transaction: Transaction) -> None:
        rows = manifest_references(batch) if source.manifest else folder_references(batch, folder)
        rows = rows.withColumn("ingest_time", F.current_timestamp()).withColumn("run_id", F.lit(ctx.run_id))
        result = publish_rows(spark, config, target, rows, Commit(ctx.job_name, ctx.run_id, transaction=transaction))
        counts["references"] += result.rows_in

    stream = (
        whole_files(spark, folder, MANIFEST_GLOB)
        if source.manifest
        else new_files(spark, folder).select("path", "modificationTime")
    )
    batches = for_each_new_batch(stream, config.checkpoint_path(ctx.job_name), ctx.job_name, land) if ready else 0
    result = JobResult(ctx.job_name, ctx.run_id, writes=[write_result(spark, target, path, before)])
    result.counts.update({"batches": batches, **counts})
    return result


def build_images_silver(ctx: JobContext, step: Step) -> JobResult:
    """Validate the references bronze gained since the last run into silver (see the module doc)."""
    spark, config = ctx.spark, ctx.config
    source: ImageSource = config.project.source(step.source)
    images, references = config.table(source.silver_name), config.table(source.references_name)
    targets = (images, images.quarantine, references)
    source_path = config.table_path(source.bronze_name)
    source_version = current_version(spark, source_path)
    if source_version is None:
        raise RuntimeError(f"{source.bronze_name} does not exist yet: run ingest_{source.name} first")
    roots = tuple(expand(root, config) for root in source.allowed_roots)
    paths = {table.name: ensure_table(spark, config, table) for table in targets}
    before = {name: current_version(spark, path) for name, path in paths.items()}
    outcomes: Counter = Counter()

    def handle_batch(batch: DataFrame, transaction: Transaction) -> None:
        commit = Commit(ctx.job_name, ctx.run_id, {source.bronze_name: source_version}, transaction)
        published = read_table(spark, config, references.name).select("object_uri")
        classified = classify_references(batch, published, roots).persist()
        candidates = classified.where(F.col(quarantine.REASON).isNull()).drop(quarantine.REASON)
        checked = validate_images(fetch_objects(spark, candidates, source.max_bytes), source.formats).persist()
        try:
            rejected = classified.where(F.col(quarantine.REASON).isNotNull()).unionByName(
                checked.where(F.col(quarantine.REASON).isNotNull()).select(*classified.columns),
                allowMissingColumns=False,
            )
            for row in rejected.groupBy(quarantine.REASON).count().collect():
                outcomes[f"quarantined {row[quarantine.REASON].split(':')[0]}"] += row["count"]
            good = checked.where(F.col(quarantine.REASON).isNull())
            now = F.current_timestamp()
            new_images = first_per_content(good).select(
                "content_hash",
                "object_uri",
                "label",
                "format",
                "width",
                "height",
                "mode",
                "size_bytes",
                "content",
                now.alias("first_seen_at"),
                F.lit(ctx.run_id).alias("run_id"),
            )
            new_references = good.select(
                "object_uri",
                "content_hash",
                "label",
                "metadata",
                "source_file",
                "line_number",
                now.alias("validated_at"),
                F.lit(ctx.run_id).alias("run_id"),
            )
            to_quarantine = quarantine.quarantine_rows(reference_outcome(rejected), ctx.job_name, None, ctx.run_id)
            image_result = publish_rows(
                spark, config, images, new_images, commit, mode="insert_new", rejected=to_quarantine
            )
            reference_result = publish_rows(spark, config, references, new_references, commit, mode="insert_new")
            outcomes["kept"] += reference_result.rows_in - reference_result.rows_quarantined
            outcomes["with content new in their batch"] += image_result.rows_in
        finally:
            checked.unpersist()
            classified.unpersist()

    batches = for_each_new_batch(
        delta_table_changes(spark, source_path), config.checkpoint_path(ctx.job_name), ctx.job_name, handle_batch
    )
    result = JobResult(
        ctx.job_name,
        ctx.run_id,
        writes=[write_result(spark, table, paths[table.name], before[table.name]) for table in targets],
    )
    result.counts["bronze batches"] = batches
    result.counts.update({f"references {outcome}": count for outcome, count in sorted(outcomes.items())})
    return result
