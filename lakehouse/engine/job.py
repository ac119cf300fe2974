"""What every job and step shares: argument parsing, config, the SparkSession, a run id, and the report.

A *step* of the pipeline (:mod:`lakehouse.project.steps`) runs through :func:`run_job` like any job of a
project's ``jobs/`` folder: under its lock, with its suites checked first and Data Docs rendered once.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Sequence

from pyspark.sql import SparkSession

from lakehouse.engine.step_options import StepOptions
from lakehouse.project.config import LakehouseConfig, load_config
from lakehouse.storage.locks import job_lock
from lakehouse.storage.writer import WriteResult


class JobContext:
    """Everything a job's ``run`` needs: the session, the environment and this run's identity.

    ``spark`` is the session itself or a function that starts one: the session then starts on the first
    read of :attr:`spark`, so a job that never asks for it (training through the Arrow loader) starts no JVM.
    """

    def __init__(
        self,
        spark: SparkSession | Callable[[], SparkSession],
        config: LakehouseConfig,
        job_name: str,
        run_id: str,
        options: StepOptions | None = None,
    ):
        self._spark = spark
        self.config = config
        self.job_name = job_name
        self.run_id = run_id
        self.options: StepOptions = options or StepOptions()

    @property
    def spark(self) -> SparkSession:
        """The job's SparkSession, started now if it has not been yet."""
        if not isinstance(self._spark, SparkSession):
            self._spark = self._spark()
        return self._spark

    @property
    def spark_started(self) -> bool:
        """Whether this job has a SparkSession (and so a JVM) yet."""
        return isinstance(self._spark, SparkSession)

    def with_options(self, options: StepOptions) -> "JobContext":
        """The same job and session (started or not) with a step's options."""
        return JobContext(self._spark, self.config, self.job_name, self.run_id, options)


@dataclass
class JobResult:
    """What a job run did: its writes and any counts worth reporting (rows in, rejected, ...)."""

    job_name: str
    run_id: str
    writes: list[WriteResult] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # The job rendered the Data Docs site itself (it ran a pipeline, which renders once at its end).
    data_docs_rendered: bool = False

    def summary(self) -> str:
        lines = [f"{self.job_name} ({self.run_id}) finished in {self.seconds:.1f}s"]
        for write in self.writes:
            state = f"committed version {write.version}" if write.committed else f"unchanged at version {write.version}"
            lines.append(f"  {write.table}: {state}, +{write.rows_written} rows")
        for name, value in self.counts.items():
            lines.append(f"  {name}: {value}")
        return "\n".join(lines)


def new_run_id(job_name: str) -> str:
    """A sortable, unique id for one run of one job."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{job_name}-{stamp}-{uuid.uuid4().hex[:8]}"


def new_context(
    spark: SparkSession | Callable[[], SparkSession],
    config: LakehouseConfig,
    job_name: str,
    options: StepOptions | None = None,
) -> JobContext:
    """A context with a new run id; ``spark`` a session or a function that starts one on first use."""
    return JobContext(spark, config, job_name, new_run_id(job_name), options)


RunFunction = Callable[[JobContext, "argparse.Namespace | None"], JobResult]
ArgumentsFunction = Callable[[argparse.ArgumentParser], None]


def build_parser(
    job_name: str, description: str | None, add_arguments: ArgumentsFunction | None, project: str | None = None
) -> argparse.ArgumentParser:
    """The job's command line: ``--conf-file`` and ``--project`` (default ``project``) plus the job's own options."""
    parser = argparse.ArgumentParser(prog=job_name, description=description)
    parser.add_argument(
        "--conf-file",
        default=None,
        help="environment YAML (default: $LAKEHOUSE_CONF or the project's conf/local.yaml)",
    )
    parser.add_argument(
        "--project",
        default=project,
        help="the project folder (default: the job's own, else $LAKEHOUSE_PROJECT or the one around here)",
    )
    if add_arguments is not None:
        add_arguments(parser)
    return parser


def check_suites(config: LakehouseConfig, job_name: str) -> None:
    """Load the expectation suites of the tables ``job_name`` writes, so a bad suite file stops the job
    at start-up (naming the file and the rule) rather than after its Spark work."""
    from lakehouse.quality.suites import load_suite

    for declaration in config.tables():
        if declaration.step == job_name:
            load_suite(declaration)


def run_job(
    job_name: str,
    run: RunFunction,
    args: argparse.Namespace | None = None,
    spark: SparkSession | None = None,
    config: LakehouseConfig | None = None,
) -> JobResult:
    """Run one job with a fresh run id, in the given session or a new one started when the job first
    reads ``ctx.spark``, and time it. ``args`` is the job's parsed command line (:func:`build_parser`), handed
    to ``run``; without ``config``, its ``--conf-file`` and ``--project`` say which environment."""
    from lakehouse.engine.session import get_spark

    if config is None:
        if args is None:
            raise ValueError(f"{job_name}: run_job needs a config or the job's parsed command line")
        config = load_config(args.conf_file, project=args.project)
    check_suites(config, job_name)
    session = spark if spark is not None else (lambda: get_spark(config, app_name=job_name))
    # The Data Docs site is re-rendered from every stored result each time it is built: once per job,
    # not once per validation (a job validates many batches and tables), unless a pipeline run renders it.
    build_docs = config.quality.enabled and config.quality.data_docs and config.quality.docs_per_job
    if build_docs:
        config = replace(config, quality=replace(config.quality, docs_per_validation=False))
    context = new_context(session, config, job_name)
    started = time.monotonic()
    result = None
    try:
        with job_lock(config, job_name):  # one run of a job at a time per warehouse (lakehouse/storage/locks.py)
            result = run(context, args)
    finally:
        # A job that wrote nothing validated nothing; one that ran a pipeline had it rendered there.
        if build_docs and (result is None or (result.writes and not result.data_docs_rendered)):
            from lakehouse.quality.gate import build_data_docs
            from lakehouse.storage.publish import quality_root

            build_data_docs(quality_root(config))
    result.seconds = time.monotonic() - started
    return result


def job_main(
    job_name: str,
    description: str | None,
    run: RunFunction,
    add_arguments: ArgumentsFunction | None = None,
    argv: Sequence[str] | None = None,
    project: str | None = None,
) -> int:
    """Entry point of ``spark-submit jobs/<name>.py`` and ``lakehouse job <name>``.

    Prints the summary and returns 0; on an error a user can act on (bad configuration or suite file,
    a quality gate that refused the data, missing input) prints one line naming it and returns 1.
    """
    from lakehouse.project import ProjectError
    from lakehouse.project.config import ConfigError
    from lakehouse.project.schemas import SchemaFileError
    from lakehouse.quality.gate import QualityGateError
    from lakehouse.quality.suites import SuiteError
    from lakehouse.storage.streams import BatchFailed, StreamFailed
    from lakehouse.storage.writer import SchemaMismatchError

    args = build_parser(job_name, description, add_arguments, project).parse_args(argv)
    try:
        result = run_job(job_name, run, args)
    except (
        ConfigError,
        ProjectError,
        SuiteError,
        SchemaFileError,
        SchemaMismatchError,
        QualityGateError,
        StreamFailed,
        BatchFailed,
        FileNotFoundError,
        RuntimeError,
    ) as exc:
        print(f"{job_name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def exit_with(code: int) -> None:
    """Exit the interpreter (kept separate so tests can call ``job_main`` directly)."""
    sys.stdout.flush()
    sys.exit(code)
