"""Run a table definition (``tables/<layer>/<name>.sql|.py``): read its inputs at pinned versions,
compute, then gate, quarantine and commit through the shared writer.

- ``overwrite`` (every SQL definition, and Python by default): the whole table, published with
  write-audit-publish (:func:`lakehouse.storage.publish.publish_table`);
- ``insert_new``: new rows merged in on the keys (:func:`lakehouse.storage.publish.publish_rows`);
- ``incremental``: like ``insert_new``, the first input arriving as only the rows it gained since the last
  run (Delta change stream + checkpoint, one transaction per micro-batch).

Inputs declared private at their source (personal columns of bronze) are pseudonymised before the
definition sees them. Every commit records the step, the run and the versions it read.
"""

from __future__ import annotations

import uuid
from collections import Counter
from functools import cached_property
from typing import Any, Callable

from pyspark.sql import DataFrame

from lakehouse.engine.job import JobContext, JobResult
from lakehouse.project.definitions import CONTEXT_PARAMETER, TableDefinition, with_tables_replaced
from lakehouse.project.steps import Step
from lakehouse.project.tables import TableDeclaration
from lakehouse.storage import quarantine
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.publish import publish_rows, publish_table
from lakehouse.storage.streams import delta_table_changes, for_each_new_batch
from lakehouse.storage.writer import Commit, Transaction, ensure_table, write_result


class DefinitionContext:
    """What a Python definition's ``ctx`` parameter holds: the session, the environment, its options,
    its own table, and a place for counts worth reporting."""

    def __init__(self, job: JobContext, declaration: TableDeclaration, options: dict[str, Any]):
        self.spark = job.spark
        self.config = job.config
        self.run_id = job.run_id
        self.table = declaration
        self.options = options
        self.counts: dict[str, Any] = {}
        self._after_publish: list[Callable[[DataFrame], None]] = []

    @cached_property
    def pseudonym_key(self) -> bytes:
        """The keyed-hash key of :mod:`lakehouse.transforms.privacy` (for columns the definition pseudonymises)."""
        from lakehouse.transforms.privacy import pseudonym_key

        return pseudonym_key(self.config)

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """Any table of the project (private bronze columns pseudonymised)."""
        return private_view(self, self.config.table(name), read_table(self.spark, self.config, name, version=version))

    def current(self) -> DataFrame | None:
        """This table as published now (what ``insert_new`` and ``incremental`` merge into); None when it was
        never written and has no schema file to create it from."""
        return self._published(self.table)

    def current_quarantine(self) -> DataFrame | None:
        """This table's quarantine table as it is now."""
        return self._published(self.table.quarantine)

    def _published(self, declaration: TableDeclaration) -> DataFrame | None:
        path = self.config.table_path(declaration.name)
        if current_version(self.spark, path) is None:
            if declaration.schema is None:
                return None
            ensure_table(self.spark, self.config, declaration)
        return self.spark.read.format("delta").load(path)

    def after_publish(self, callback: Callable[[DataFrame], None]) -> None:
        """Call ``callback`` with the published table once this run's rows are committed."""
        self._after_publish.append(callback)


def private_view(ctx, declaration: TableDeclaration, frame: DataFrame) -> DataFrame:
    """``frame`` with the declaration's raw personal columns pseudonymised, masked or dropped."""
    if not declaration.private_columns:
        return frame
    from lakehouse.transforms.privacy import pseudonymise

    return pseudonymise(frame, declaration.private_columns, ctx.pseudonym_key)


def pinned_versions(ctx: JobContext, step: Step) -> dict[str, int]:
    """The current version of every input; ``RuntimeError`` naming those not built yet and their steps."""
    versions = {name: current_version(ctx.spark, ctx.config.table_path(name)) for name in step.inputs}
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        project = ctx.config.project
        steps = sorted({project.step(name).name for name in missing})
        raise RuntimeError(f"{', '.join(missing)} do not exist yet: run {', '.join(steps)} first")
    return versions


def run_definition(ctx: JobContext, step: Step) -> JobResult:
    """Run the definition behind ``step`` (see the module doc)."""
    config = ctx.config
    definition = config.project.definitions[step.name]
    declaration = config.table(step.name)
    options = {**definition.settings.options, **ctx.options.definition_options}
    unknown = sorted(set(options) - set(definition.settings.options))
    if unknown:
        known = ", ".join(definition.settings.options) or "none"
        raise ValueError(f"{step.name} has no options {unknown} (its options: {known}; see {definition.file})")
    dctx = DefinitionContext(ctx, declaration, options)
    versions = pinned_versions(ctx, step)
    mode = definition.settings.mode
    if mode == "incremental":
        result = _run_incremental(ctx, dctx, definition, declaration, versions)
    else:
        inputs = {
            ref: dctx.read(table, version=versions[table]) for ref, table in config.project.inputs[step.name].items()
        }
        frame = _compute(ctx, dctx, definition, inputs)
        if mode == "overwrite":
            result = _publish_whole(ctx, dctx, declaration, frame, versions)
        else:
            # No transaction: each run adds what is new to it. A definition that rejects rows reads its own
            # quarantine (ctx.current_quarantine()) so as not to reject the same input twice, as
            # silver.image_predictions does; a run that died between the two commits is then made good by the next.
            result = _publish_new(ctx, dctx, declaration, frame, Commit(ctx.job_name, ctx.run_id, versions))
    result.counts.update(dctx.counts)
    return result


def compute_definition(spark, project, name: str, frames: dict[str, DataFrame], dctx=None) -> DataFrame:
    """The rows the definition of ``name`` makes from ``frames`` (input table name -> DataFrame), reading and
    writing no table: how a definition is unit-tested on hand-written rows."""
    definition = project.definitions[name]
    missing = sorted(set(project.inputs[name].values()) - set(frames))
    if missing:
        raise ValueError(f"{name} reads {', '.join(missing)}: give a frame for each")
    inputs = {reference: frames[table] for reference, table in project.inputs[name].items()}
    job = JobContext(spark, None, name, "compute")
    return _compute(job, dctx, definition, inputs)


def _compute(
    ctx: JobContext, dctx: DefinitionContext, definition: TableDefinition, inputs: dict[str, DataFrame]
) -> DataFrame:
    if definition.language == "python":
        arguments = dict(inputs)
        if CONTEXT_PARAMETER in _parameters(definition):
            arguments[CONTEXT_PARAMETER] = dctx
        frame = definition.function(**arguments)
        if not isinstance(frame, DataFrame):
            raise TypeError(
                f"{definition.file}: {definition.function.__name__} returned {type(frame).__name__}, not a DataFrame"
            )
        return frame
    tag = uuid.uuid4().hex[:8]
    views = {}
    for name, frame in inputs.items():
        view = f"__lakehouse_{name.replace('.', '_')}_{tag}"
        frame.createOrReplaceTempView(view)
        views[name] = view
    try:
        return _analysed(ctx, with_tables_replaced(definition.sql, views, definition.file))
    finally:
        for view in views.values():
            ctx.spark.catalog.dropTempView(view)


def _analysed(ctx: JobContext, query: str) -> DataFrame:
    """The query's DataFrame, analysed now: its plan holds the pinned reads, so the views can go at once."""
    frame = ctx.spark.sql(query)
    frame.schema  # noqa: B018 - analysis happens here
    return frame


def _parameters(definition: TableDefinition) -> set[str]:
    import inspect

    return set(inspect.signature(definition.function).parameters)


def _source_text(versions: dict[str, int]) -> str | None:
    return ", ".join(f"{table}@{version}" for table, version in sorted(versions.items())) or None


def _split(frame: DataFrame, declaration: TableDeclaration, versions: dict[str, int], run_id: str):
    """``(accepted rows, quarantine rows or None)`` of a definition's output (:mod:`lakehouse.storage.quarantine`)."""
    if quarantine.REASON not in frame.columns:
        return frame, None
    if not declaration.has_quarantine:
        raise ValueError(
            f"{declaration.defined_in}: it rejects rows ({quarantine.REASON}) but declares no "
            "quarantine table: add quarantine=True"
        )
    rejected = quarantine.quarantine_rows(frame, declaration.name, _source_text(versions), run_id)
    return quarantine.accepted(frame), rejected


def _publish_whole(ctx, dctx, declaration, frame, versions) -> JobResult:
    accepted, rejected = _split(frame, declaration, versions, ctx.run_id)
    published = publish_table(
        ctx.spark, ctx.config, declaration, accepted, Commit(ctx.job_name, ctx.run_id, versions), rejected=rejected
    )
    result = JobResult(ctx.job_name, ctx.run_id, writes=[w for w in (published.write, published.quarantine) if w])
    result.counts["rows published"] = published.rows_in - published.rows_quarantined
    if published.rows_quarantined:
        result.counts["rows quarantined"] = published.rows_quarantined
    _after(dctx, published.write.version)
    return result


def _publish_new(ctx, dctx, declaration, frame, commit: Commit, outcomes: Counter | None = None) -> JobResult:
    frame = frame.persist()  # counted by outcome, then split: computed once
    try:
        by_reason = _count_by_reason(frame)
        accepted, rejected = _split(frame, declaration, commit.inputs, ctx.run_id)
        published = publish_rows(
            ctx.spark,
            ctx.config,
            declaration,
            accepted,
            commit,
            mode="insert_new",
            rejected=rejected if any(r is not None for r in by_reason) else None,
        )
    finally:
        frame.unpersist()
    outcomes = Counter() if outcomes is None else outcomes
    for reason, count in by_reason.items():
        outcomes[reason or "accepted"] += count
    rejects = sum(count for reason, count in by_reason.items() if reason is not None)
    outcomes["quarantined by expectations"] += published.rows_quarantined - rejects
    result = JobResult(ctx.job_name, ctx.run_id, writes=[w for w in (published.write, published.quarantine) if w])
    result.counts.update({f"rows {outcome}": count for outcome, count in sorted(outcomes.items()) if count})
    if published.write.committed:
        _after(dctx, published.write.version)
    return result


def _count_by_reason(frame: DataFrame) -> dict[str | None, int]:
    if quarantine.REASON not in frame.columns:
        return {None: frame.count()}
    return {row[0]: row[1] for row in frame.groupBy(quarantine.REASON).count().collect()}


def _after(dctx: DefinitionContext, version: int | None) -> None:
    if dctx._after_publish:
        published = read_table(dctx.spark, dctx.config, dctx.table.name, version=version)
        for callback in dctx._after_publish:
            callback(published)


def _run_incremental(ctx, dctx, definition: TableDefinition, declaration: TableDeclaration, versions) -> JobResult:
    """Each micro-batch of what the first input gained since the last run, with the other inputs pinned."""
    spark, config = ctx.spark, ctx.config
    inputs = config.project.inputs[definition.name]
    streamed_parameter = definition.references[0]
    streamed = inputs[streamed_parameter]
    others = {
        ref: dctx.read(table, version=versions[table]) for ref, table in inputs.items() if ref != streamed_parameter
    }
    tables = [declaration, declaration.quarantine] if declaration.has_quarantine else [declaration]
    paths = {t.name: ensure_table(spark, config, t) for t in tables}
    before = {name: current_version(spark, path) for name, path in paths.items()}
    outcomes: Counter = Counter()

    def handle_batch(batch: DataFrame, transaction: Transaction) -> None:
        batch = private_view(dctx, config.table(streamed), batch)
        frame = _compute(ctx, dctx, definition, {streamed_parameter: batch, **others})
        _publish_new(ctx, dctx, declaration, frame, Commit(ctx.job_name, ctx.run_id, versions, transaction), outcomes)

    batches = for_each_new_batch(
        delta_table_changes(spark, config.table_path(streamed)),
        config.checkpoint_path(ctx.job_name),
        ctx.job_name,
        handle_batch,
    )
    result = JobResult(
        ctx.job_name, ctx.run_id, writes=[write_result(spark, t, paths[t.name], before[t.name]) for t in tables]
    )
    result.counts[f"{streamed} batches"] = batches
    result.counts.update({f"rows {outcome}": count for outcome, count in sorted(outcomes.items()) if count})
    return result
