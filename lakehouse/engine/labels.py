"""A labels source (``kind: labels``): Label Studio exports into bronze, their labels' history and the
annotators' agreement into silver.

Ingestion lands every export file new since the last run, exactly once (the file-source stream and its
checkpoint): one bronze row per label an annotator gave a task, read by :mod:`lakehouse.sources.label_exports`
(JSON, JSON-MIN or CSV, found out per file). A file that is not a readable export (truncated JSON, not
UTF-8, a stray log file) lands as one rescued row with the reason; nothing stops the job. (An empty file
holds no label and leaves no row: Spark reads no split of a zero-byte file.)

Silver is rebuilt from all of bronze at its pinned version each run (labels are small next to what they
label), with write-audit-publish:

- ``silver.<labels>``: every version of every label, once (Label Studio's exports are cumulative, so the
  same version is in many files), the annotator pseudonymised; a re-labelled task keeps both versions, the
  old one closed by ``valid_to`` (type 2);
- ``silver.<labels>_agreement``: per task and control, the annotators' current choices: majority label and
  the share of pairs that agree; ``silver.<labels>_label_agreement``: Krippendorff's alpha per label
  (:mod:`lakehouse.transforms.label_agreement`);
- ``silver.<labels>_quarantine``: each rescued file once, with its reason.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.engine.files import MAX_FILE_BYTES, landing_folder_exists, new_files, too_large
from lakehouse.engine.job import JobContext, JobResult
from lakehouse.project.sources import LabelsSource, expand
from lakehouse.project.steps import Step
from lakehouse.sources.label_exports import Annotation, ExportError, detect_format, read_export
from lakehouse.storage import quarantine
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.publish import publish_rows, publish_table
from lakehouse.storage.streams import for_each_new_batch
from lakehouse.storage.writer import Commit, Transaction, ensure_table, write_result
from lakehouse.transforms.label_agreement import label_agreement, task_agreement
from lakehouse.transforms.privacy import pseudonym_key, pseudonym_text

ANNOTATOR_PURPOSE = "label_annotator"
# What one export file gives: its labels, or one row with the reason it could not be read.
_PARSED = T.ArrayType(
    T.StructType(
        [
            T.StructField("task_id", T.LongType()),
            T.StructField("annotation_id", T.LongType()),
            T.StructField("annotator", T.StringType()),
            T.StructField("control", T.StringType()),
            T.StructField("label_type", T.StringType()),
            T.StructField("label", T.StringType()),
            T.StructField("region", T.StringType()),
            T.StructField("content_hash", T.StringType()),
            T.StructField("object_uri", T.StringType()),
            T.StructField("created_at", T.StringType()),
            T.StructField("updated_at", T.StringType()),
            T.StructField("export_format", T.StringType()),
            T.StructField("parse_error", T.StringType()),
        ]
    )
)


def parse_export_file(content: bytes | None, controls: tuple[str, ...]) -> list[tuple]:
    """The rows of :data:`_PARSED` for one export file's bytes (a rescued row on any error)."""
    try:
        if content is None:
            raise ExportError("the file could not be read")
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ExportError(f"not UTF-8 text ({error})") from error
        fmt = detect_format(text)
        annotations = read_export(text, fmt, controls)
        if any(not -(1 << 63) <= n < 1 << 63 for a in annotations for n in (a.task_id, a.annotation_id)):
            raise ExportError("a task or annotation id beyond 64 bits")
        return [(*(getattr(a, f) for f in Annotation.__dataclass_fields__), fmt, None) for a in annotations]
    except Exception as error:  # noqa: BLE001 - whatever a file does to the reader, it is a reason, not a crash
        reason = str(error) if isinstance(error, ExportError) else f"{type(error).__name__}: {error}"
        return [(None,) * 12 + (f"not_an_export: {reason}"[:2000],)]


def export_rows(files: DataFrame, controls: tuple[str, ...]) -> DataFrame:
    """One row per label in the export files of ``files`` (path, modificationTime, content in)."""
    parse = F.udf(lambda content: parse_export_file(content, controls), _PARSED)
    return files.select(
        F.explode(parse(F.col("content"))).alias("row"),
        F.col("path").alias("source_file"),
        F.col("modificationTime").alias("source_modified_at"),
    ).select("row.*", "source_file", "source_modified_at")


def ingest_labels(ctx: JobContext, step: Step) -> JobResult:
    """Land the export files new since the last run (see the module doc)."""
    spark, config = ctx.spark, ctx.config
    source: LabelsSource = config.project.source(step.source)
    target = config.table(source.bronze_name)
    folder = ctx.options.source_dir or expand(source.path, config)
    hint = f"put the Label Studio exports there, or change 'path' in {source.file}"
    ready = landing_folder_exists(spark, folder, hint)
    path = ensure_table(spark, config, target)
    before = current_version(spark, path)
    counts = {"export files": 0, "labels": 0, "files rescued": 0}

    def land(batch: DataFrame, transaction: Transaction) -> None:
        readable = batch.where(F.col("length") <= MAX_FILE_BYTES)
        rows = export_rows(readable, source.controls)
        rows = rows.withColumn("ingest_time", F.current_timestamp()).withColumn("run_id", F.lit(ctx.run_id))
        huge = batch.where(F.col("length") > MAX_FILE_BYTES)
        rows = rows.unionByName(too_large(huge, ctx.run_id, rows.columns)).persist()
        try:
            publish_rows(spark, config, target, rows, Commit(ctx.job_name, ctx.run_id, transaction=transaction))
            tally = rows.groupBy(F.col("parse_error").isNull().alias("read")).count().collect()
            counts["labels"] += sum(r["count"] for r in tally if r["read"])
            counts["files rescued"] += sum(r["count"] for r in tally if not r["read"])
            counts["export files"] += batch.count()
        finally:
            rows.unpersist()

    checkpoint = config.checkpoint_path(ctx.job_name)
    batches = for_each_new_batch(new_files(spark, folder), checkpoint, ctx.job_name, land) if ready else 0
    result = JobResult(ctx.job_name, ctx.run_id, writes=[write_result(spark, target, path, before)])
    result.counts.update({"file batches": batches, **counts})
    return result


def label_versions(bronze: DataFrame, key: bytes) -> DataFrame:
    """``silver.<labels>``'s rows from bronze's readable rows: each label version once, pseudonymised, with
    its validity interval (a version is one annotation's labels on one control at one ``updated_at``)."""
    labelled_at = F.coalesce(
        F.expr("try_to_timestamp(updated_at)"), F.expr("try_to_timestamp(created_at)"), F.col("source_modified_at")
    ).cast("timestamp")
    version_key = ["task_id", "annotation_id", "control", "valid_from"]
    rows = (
        bronze.where(F.col("parse_error").isNull())
        .withColumn("valid_from", labelled_at)
        .withColumn("annotator_id", pseudonym_text(F.col("annotator"), key, ANNOTATOR_PURPOSE))
        .groupBy(
            *version_key, "annotator_id", "label_type", "label", "region", "content_hash", "object_uri"
        )  # the same version in several (cumulative) exports: once, with the first file that held it
        .agg(F.min(F.struct("source_modified_at", "source_file"))["source_file"].alias("first_exported_in"))
    )
    versions = rows.select(*version_key).distinct()
    later = Window.partitionBy("task_id", "annotation_id", "control").orderBy("valid_from")
    versions = versions.withColumn("valid_to", F.lead("valid_from").over(later))
    return rows.join(versions, version_key).select(
        "task_id",
        "annotation_id",
        "annotator_id",
        "control",
        "label_type",
        "label",
        "region",
        "content_hash",
        "object_uri",
        "valid_from",
        "valid_to",
        F.col("valid_to").isNull().alias("is_current"),
        "first_exported_in",
    )


def _current_choices(labels: DataFrame) -> list[Annotation]:
    """The annotators' current labels as :class:`Annotation` rows (what the agreement functions read)."""
    current = labels.where("is_current").select(
        "task_id", "annotation_id", "annotator_id", "control", "label_type", "label", "content_hash", "object_uri"
    )
    return [
        Annotation(
            task_id=r.task_id,
            annotation_id=r.annotation_id,
            annotator=r.annotator_id,
            control=r.control,
            label_type=r.label_type,
            label=r.label,
            region=None,
            content_hash=r.content_hash,
            object_uri=r.object_uri,
            created_at=None,
            updated_at=None,
        )
        for r in current.collect()
    ]


def agreement_rows(annotations: list[Annotation], controls: tuple[str, ...]) -> tuple[list[tuple], list[tuple]]:
    """(per task, per label) agreement rows over ``annotations`` (each annotator's current labels)."""
    per_task, per_label = [], []
    for control in controls:
        tasks = task_agreement(annotations, control)
        per_task += [(t.task_id, control, t.content_hash, t.annotators, t.majority_label, t.agreement) for t in tasks]
        chosen = [a for a in annotations if a.control == control and a.label_type == "choices"]
        if not chosen:
            continue
        paired = sum(t.annotators >= 2 for t in tasks)
        annotators = len({a.annotator for a in chosen})
        per_label += [
            (control, label, alpha, paired, annotators) for label, alpha in label_agreement(chosen, control).items()
        ]
    return per_task, per_label


def build_labels_silver(ctx: JobContext, step: Step) -> JobResult:
    """Rebuild the labels' history and agreement from bronze (see the module doc)."""
    spark, config = ctx.spark, ctx.config
    source: LabelsSource = config.project.source(step.source)
    labels = config.table(source.silver_name)
    per_task, per_label = config.table(source.agreement_name), config.table(source.label_agreement_name)
    bronze_version = current_version(spark, config.table_path(source.bronze_name))
    if bronze_version is None:
        raise RuntimeError(f"{source.bronze_name} does not exist yet: run ingest_{source.name} first")
    targets = (labels, labels.quarantine, per_task, per_label)
    paths = {table.name: ensure_table(spark, config, table) for table in targets}
    before = {name: current_version(spark, path) for name, path in paths.items()}
    commit = Commit(ctx.job_name, ctx.run_id, {source.bronze_name: bronze_version})
    bronze = read_table(spark, config, source.bronze_name, version=bronze_version)
    if set(before.values()) == {0} and bronze.isEmpty():
        # No export landed yet and silver was never written: publishing three empty tables would change
        # nothing, and cost three write-audit-publish passes (about 13 s on 2 cores).
        result = JobResult(ctx.job_name, ctx.run_id, writes=[write_result(spark, t, paths[t.name], 0) for t in targets])
        result.counts.update({"bronze labels": 0, "label versions": 0, "tasks with agreement": 0})
        return result

    # Each rescued file once: the quarantine keeps what it already holds from earlier runs.
    record = F.to_json(F.struct("source_file", "source_modified_at", "ingest_time", "run_id"))
    rescued = bronze.where(F.col("parse_error").isNotNull()).select(
        "source_file",
        *quarantine.reject(
            F.col("parse_error"), record, rule="label_export", source=F.lit(source.bronze_name)
        ).values(),
    )
    held = read_table(spark, config, labels.quarantine.name).select(F.col("record").alias(quarantine.RECORD))
    new_rescued = rescued.join(held, quarantine.RECORD, "left_anti")
    to_quarantine = quarantine.quarantine_rows(new_rescued, ctx.job_name, source.bronze_name, ctx.run_id)

    versions = label_versions(bronze, pseudonym_key(config)).persist()
    try:
        published = publish_table(spark, config, labels, versions, commit, rejected=to_quarantine)
        task_rows, label_rows = agreement_rows(_current_choices(versions), source.controls)
    finally:
        versions.unpersist()
    publish_table(spark, config, per_task, spark.createDataFrame(task_rows, per_task.schema), commit)
    publish_table(spark, config, per_label, spark.createDataFrame(label_rows, per_label.schema), commit)

    writes = [write_result(spark, table, paths[table.name], before[table.name]) for table in targets]
    result = JobResult(ctx.job_name, ctx.run_id, writes=writes)
    readable = bronze.where(F.col("parse_error").isNull()).count()
    result.counts.update(
        {
            "bronze labels": readable,
            "label versions": published.rows_in,
            "repeated by a later export": readable - published.rows_in,
            "export files quarantined": published.rows_quarantined,
            "tasks with agreement": sum(row[5] is not None for row in task_rows),
        }
    )
    return result
