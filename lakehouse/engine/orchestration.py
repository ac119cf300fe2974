"""``lakehouse run``: the pipeline's steps in dependency order, recomputing only what changed by content.

A step is skipped when the Delta versions of all its inputs, its code (the platform's package and the
step's own declaration files: its definition, schema, expectations, source) and the configuration are
what they were at its last successful run, and its outputs were not written since. Steps that read only
outside sources (files, databases) always run: they are incremental themselves (checkpoints, snapshot
fingerprints), so an unchanged source lands nothing and their downstream steps are skipped.
A failing step blocks its descendants; independent branches go on; the run exits non-zero naming it,
and the next run resumes from it (whatever succeeded is skipped). Every step is a row of ``ops.runs``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable

from pyspark.sql import Row, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.steps import Step
from lakehouse.project.tables import RUNS_TABLE
from lakehouse.storage.catalog import current_version
from lakehouse.storage.locks import job_lock

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the whole lakehouse package


@dataclass
class StepOutcome:
    """What happened to one step in one run."""

    step: Step
    status: str  # succeeded | skipped | failed | blocked
    reason: str
    inputs: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)
    rows_written: int = 0
    seconds: float = 0.0
    job_run_id: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    writes: list = field(default_factory=list)  # the job's WriteResults
    job_summary: str = ""  # the job's own report (counts), when it ran

    def line(self) -> str:
        # a table the step may write but has not yet (a quarantine nothing was rejected to) has version -1
        written = ", ".join(f"{table} v{version}" for table, version in self.outputs.items() if version >= 0)
        detail = {
            "succeeded": f"ran ({self.reason}) in {self.seconds:.1f}s, +{self.rows_written:,} rows; {written}",
            "skipped": f"skipped ({self.reason}); {written}",
            "failed": f"FAILED after {self.seconds:.1f}s: {self.error.strip().splitlines()[-1] if self.error else ''}",
            "blocked": f"not run ({self.reason})",
        }[self.status]
        return f"{self.step.name}: {detail}"


@lru_cache(maxsize=1)
def platform_version() -> str:
    """A fingerprint of the platform's package (coarse on purpose: a change anywhere in it re-runs every
    step rather than risk a stale table)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def code_version(step: Step) -> str:
    """A fingerprint of what ``step``'s result depends on besides its inputs: the platform and the step's
    own declaration files (editing one definition re-runs that step and, through versions, its descendants)."""
    digest = hashlib.sha256(platform_version().encode())
    for path in sorted(step.files):
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()[:16]


def config_fingerprint(config: LakehouseConfig) -> str:
    """A fingerprint of the configuration, less what cannot change a table's rows (where the file was
    read from, the Data Docs site, the catalog and the MLflow store)."""
    settings = dataclasses.asdict(
        dataclasses.replace(
            config,
            source_file=None,
            project_root="",
            quality=dataclasses.replace(config.quality, data_docs=True, docs_per_validation=True, docs_per_job=True),
            catalog=None,
            mlflow_tracking_uri=None,
        )
    )
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _versions(spark: SparkSession, config: LakehouseConfig, tables) -> dict[str, int]:
    found = {name: current_version(spark, config.table_path(name)) for name in tables}
    return {name: -1 if version is None else int(version) for name, version in found.items()}


# ops.runs' latest success per step as this process last read it: {table path: (version read, {step: row})}.
# Deciding a step reads it once per step; a Spark query each time cost ~2.5 s (measured 2026-12-02, 2 cores).
_LAST_SUCCESSES: dict[str, tuple[int, dict[str, Row]]] = {}


def last_success(spark: SparkSession, config: LakehouseConfig, job: str):
    """The latest ``succeeded`` row of ``job`` in ops.runs, or None.

    Read from ops.runs' latest version: again only when it changed since this process last read it or
    recorded a step itself (another writer's commit always shows as a version this process did not see)."""
    path = config.table_path(RUNS_TABLE.name)
    version = current_version(spark, path)
    if version is None:
        return None
    cached = _LAST_SUCCESSES.get(path)
    if cached is None or cached[0] != version:
        rank = Window.partitionBy("step").orderBy(F.col("ended_at").desc())
        rows = (
            spark.read.format("delta")
            .option("versionAsOf", version)
            .load(path)
            .where(F.col("status") == "succeeded")
            .withColumn("_rank", F.row_number().over(rank))
            .where("_rank = 1")
            .drop("_rank")
            .collect()
        )
        cached = (version, {row.step: row for row in rows})
        _LAST_SUCCESSES[path] = cached
    return cached[1].get(job)


def _remember_recorded(path: str, before: int | None, after: int | None, rows: list[Row]) -> None:
    """Add the rows this process just appended (``before`` -> ``after``) to what it knows of ops.runs, when
    nobody else committed in between; otherwise the next :func:`last_success` reads the table again."""
    cached = _LAST_SUCCESSES.get(path)
    if cached is None or before is None or cached[0] != before or after != before + 1:
        _LAST_SUCCESSES.pop(path, None)
        return
    successes = dict(cached[1])
    successes.update((row.step, row) for row in rows if row.status == "succeeded")
    _LAST_SUCCESSES[path] = (after, successes)


def decide(
    spark: SparkSession, config: LakehouseConfig, step: Step, inputs: dict[str, int]
) -> tuple[dict[str, int] | None, str]:
    """Whether ``step`` can be skipped, and why (or why it must run): skipped when its last success saw
    the same input versions, code and configuration, and its outputs are still what it left. Returns
    those output versions when it can be skipped, None when it must run."""
    if step.reads_outside:
        return None, "reads outside sources"  # always asks them what is new
    previous = last_success(spark, config, step.name)
    if previous is None:
        return None, "no successful run yet"
    before = json.loads(previous.inputs)
    if before != inputs:
        changed = [
            f"{name} v{before.get(name)}->v{version}" for name, version in inputs.items() if before.get(name) != version
        ]
        return None, "inputs changed: " + ", ".join(changed)
    if previous.code_version != code_version(step):
        return None, "code changed"
    if previous.config_hash != config_fingerprint(config):
        return None, "configuration changed"
    outputs = _versions(spark, config, step.outputs)
    if json.loads(previous.outputs) != outputs:
        return None, "an output was written since"  # a restore, an ad-hoc job
    return outputs, "inputs, code and configuration unchanged"


def select_steps(steps: list[Step], selected: list[str], upstream: bool = True, downstream: bool = False) -> list[Step]:
    """The steps that write (or are) ``selected``, with their upstream and/or downstream steps, in order."""
    by_job = {step.name: step for step in steps}
    writer = {table: step.name for step in steps for table in step.outputs}
    wanted: set[str] = set()
    for name in selected:
        if name in by_job:
            wanted.add(name)
        elif name in writer:
            wanted.add(writer[name])
        else:
            raise KeyError(f"no step or table {name!r} (see `lakehouse dag`)")
    closure = set(wanted)
    if upstream:
        pending = list(wanted)
        while pending:
            for job in by_job[pending.pop()].upstream_steps:
                if job not in closure:
                    closure.add(job)
                    pending.append(job)
    if downstream:
        found = set(wanted)
        for step in steps:  # in dependency order: one pass reaches every descendant
            if set(step.upstream_steps) & found:
                found.add(step.name)
        closure |= found
    return [step for step in steps if step.name in closure]


def _record(spark: SparkSession, config: LakehouseConfig, run_id: str, outcomes: list[StepOutcome]) -> None:
    """Append one ops.runs row per outcome, in one commit."""
    from lakehouse.storage.local_rows import local_rows
    from lakehouse.storage.writer import Commit, append_rows

    if not outcomes:
        return
    declaration = RUNS_TABLE
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [
        (
            run_id,
            outcome.step.name,
            outcome.status,
            outcome.reason,
            outcome.started_at or now,
            now,
            json.dumps(outcome.inputs, sort_keys=True),
            json.dumps(outcome.outputs, sort_keys=True),
            int(outcome.rows_written),
            code_version(outcome.step),
            config_fingerprint(config),
            outcome.job_run_id,
            outcome.error,
        )
        for outcome in outcomes
    ]
    path = config.table_path(declaration.name)
    before = current_version(spark, path)
    frame = local_rows(spark, rows, declaration.schema)  # one partition: one file per append
    written = append_rows(spark, config, declaration, frame, Commit("lakehouse-run", run_id))
    _remember_recorded(path, before, written.version, [Row(**dict(zip(declaration.schema.names, r))) for r in rows])


def run_pipeline(
    spark: SparkSession,
    config: LakehouseConfig,
    selected: list[str] | None = None,
    upstream: bool = True,
    downstream: bool = False,
    force: bool = False,
    step_options: dict[str, dict] | None = None,
    progress: Callable[[str], None] = print,
) -> list[StepOutcome]:
    """Run the selected steps (default: all) in dependency order in ``spark``; return each one's outcome.

    ``step_options`` gives some steps options (by step name), as ``lakehouse step NAME --...`` would."""
    steps = list(config.project.steps)
    # The Data Docs site is rendered once, at the end of the run, not by each step's job (~2 s each).
    build_docs = config.quality.enabled and config.quality.data_docs
    if build_docs:
        config = dataclasses.replace(
            config, quality=dataclasses.replace(config.quality, docs_per_validation=False, docs_per_job=False)
        )
    if selected:
        steps = select_steps(steps, selected, upstream=upstream, downstream=downstream)
    run_id = f"run-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    progress(f"{run_id}: {len(steps)} steps")
    outcomes: list[StepOutcome] = []
    failed_jobs: set[str] = set()
    # A skipped or blocked step's row is only a record (decide() reads successes): they are written together,
    # with the next step that ran or at the end, so a run with nothing new makes one commit, not one per step.
    unrecorded: list[StepOutcome] = []
    try:
        for number, step in enumerate(steps, 1):
            started_at = datetime.now(timezone.utc).replace(tzinfo=None)
            blocked_by = [job for job in step.upstream_steps if job in failed_jobs]
            if blocked_by:
                failed_jobs.add(step.name)
                outcome = StepOutcome(
                    step, "blocked", f"{', '.join(blocked_by)} did not succeed", _versions(spark, config, step.inputs)
                )
            else:
                # Decided under the step's lock: a concurrent run that held it may have just done the work.
                with job_lock(config, step.name, waiting=progress):
                    inputs = _versions(spark, config, step.inputs)
                    unchanged_outputs, reason = (None, "forced") if force else decide(spark, config, step, inputs)
                    if unchanged_outputs is not None:
                        outcome = StepOutcome(step, "skipped", reason, inputs, unchanged_outputs)
                    else:
                        outcome = _run_step(spark, config, step, inputs, reason, (step_options or {}).get(step.name))
                        if outcome.status == "failed":
                            failed_jobs.add(step.name)
                    outcome.started_at = started_at
                    if outcome.status != "skipped":  # before the lock goes: the next holder reads it
                        _record(spark, config, run_id, [*unrecorded, outcome])
                        unrecorded = []
            if outcome.status in ("skipped", "blocked"):
                outcome.started_at = started_at
                unrecorded.append(outcome)
            outcomes.append(outcome)
            if outcome.job_summary:
                progress(outcome.job_summary)
            progress(f"[{number}/{len(steps)}] {outcome.line()}")
    finally:
        _record(spark, config, run_id, unrecorded)
        if build_docs and any(outcome.status in ("succeeded", "failed") for outcome in outcomes):
            from lakehouse.quality.gate import build_data_docs
            from lakehouse.storage.publish import quality_root

            build_data_docs(quality_root(config))
    return outcomes


# Delta's optimistic concurrency: another writer committed first. Every step is idempotent (checkpoints,
# transactions, overwrites), so running it again is safe; past these attempts the conflict is reported.
CONFLICT_ATTEMPTS = 3
_CONFLICTS = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT",
)


def is_write_conflict(exc: BaseException) -> bool:
    """True for Delta's concurrent-modification errors (as raised through py4j or pyspark)."""
    text = f"{type(exc).__name__}: {exc}"
    return any(name in text for name in _CONFLICTS)


def _run_step(spark, config, step: Step, inputs: dict[str, int], reason: str, options: dict | None) -> StepOutcome:
    from lakehouse.engine import run_step

    started = time.monotonic()
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            result = run_step(config, step, spark=spark, options=options)
            break
        except Exception as exc:  # noqa: BLE001 - any failure of a step is recorded and blocks its descendants
            if is_write_conflict(exc) and attempt < CONFLICT_ATTEMPTS:
                reason = f"{reason}; retried after a concurrent write"
                continue
            return StepOutcome(
                step,
                "failed",
                reason,
                inputs,
                _versions(spark, config, step.outputs),
                seconds=time.monotonic() - started,
                error="".join(traceback.format_exception_only(exc)),
            )
    return StepOutcome(
        step,
        "succeeded",
        reason,
        inputs,
        _versions(spark, config, step.outputs),
        rows_written=sum(write.rows_written for write in result.writes if write.committed),
        seconds=time.monotonic() - started,
        job_run_id=result.run_id,
        writes=list(result.writes),
        job_summary=result.summary(),
    )


def failures(outcomes: list[StepOutcome]) -> str | None:
    """One line per failed step (with its error), or None when none failed."""
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return None
    blocked = [o.step.name for o in outcomes if o.status == "blocked"]
    lines = [f"{o.step.name} failed: {(o.error or '').strip().splitlines()[-1]}" for o in failed]
    if blocked:
        lines.append(f"not run because of it: {', '.join(blocked)} (a re-run resumes from the failed step)")
    return "\n".join(lines)
