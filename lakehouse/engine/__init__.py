"""The engine: run one step of a project (read inputs at pinned versions, transform, gate, quarantine,
commit with lineage), the same way whether ``lakehouse run``, ``lakehouse step`` or ``spark-submit``
started it.

Each kind of step (:data:`lakehouse.project.steps.STEP_KINDS`) has one runner here; a step's options (the
command line after its name) are parsed by :func:`step_parser`.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Mapping, Sequence

from pyspark.sql import SparkSession

from lakehouse.engine.job import JobContext, JobResult, run_job
from lakehouse.engine.step_options import READ_METHODS, StepOptions
from lakehouse.project.config import LakehouseConfig
from lakehouse.project.steps import Step

Runner = Callable[[JobContext, Step], JobResult]


def runner_for(step: Step) -> Runner:
    """The function that runs steps of ``step``'s kind."""
    if step.kind == "ingest_files":
        from lakehouse.engine.files import ingest_files as runner
    elif step.kind == "ingest_database":
        from lakehouse.engine.databases import ingest_database as runner
    elif step.kind == "ingest_images":
        from lakehouse.engine.images import ingest_images as runner
    elif step.kind == "images_silver":
        from lakehouse.engine.images import build_images_silver as runner
    elif step.kind == "ingest_labels":
        from lakehouse.engine.labels import ingest_labels as runner
    elif step.kind == "labels_silver":
        from lakehouse.engine.labels import build_labels_silver as runner
    elif step.kind == "snapshot_silver":
        from lakehouse.engine.snapshots import build_snapshot_silver as runner
    elif step.kind == "definition":
        from lakehouse.engine.definitions import run_definition as runner
    else:
        raise ValueError(f"step {step.name}: no runner for kind {step.kind!r}")
    return runner


def run_step(
    config: LakehouseConfig,
    step: Step | str,
    spark: SparkSession | None = None,
    options: StepOptions | Mapping[str, Any] | None = None,
) -> JobResult:
    """Run one step (a :class:`Step` or its name, or the name of a table it writes) under its lock, with
    ``options`` (:class:`~lakehouse.engine.step_options.StepOptions`, or a mapping of its fields)."""
    step = config.project.step(step) if isinstance(step, str) else step
    runner = runner_for(step)
    step_options = StepOptions.of(options)
    return run_job(step.name, lambda ctx, _: runner(ctx.with_options(step_options), step), spark=spark, config=config)


def add_step_options(parser: argparse.ArgumentParser, step: Step, config: LakehouseConfig) -> None:
    """The command-line options of ``step`` (its kind's, and a definition's own ``options``)."""
    if step.kind == "ingest_database":
        source = config.project.source(step.source)
        parser.add_argument(
            "--table",
            action="append",
            dest="tables",
            choices=[t.name for t in source.tables],
            help="only these tables (repeatable; default: every table the source lists)",
        )
        parser.add_argument(
            "--from",
            dest="method",
            choices=READ_METHODS,
            default="jdbc",
            help="jdbc: a live read of the database the source names (default); "
            "dump: a plain pg_dump file (--dump-file); csv: per-table CSV exports (--csv-dir)",
        )
        parser.add_argument("--dump-file", help="plain-format pg_dump file (any Hadoop filesystem URI)")
        parser.add_argument("--csv-dir", help="folder holding <table>.csv exports with a header row")
    elif step.kind in ("ingest_files", "ingest_images", "ingest_labels"):
        parser.add_argument("--source-dir", help="read this folder instead of the one the source declares (once)")
    elif step.kind == "definition":
        options = config.project.definitions[step.name].settings.options
        if options:
            parser.add_argument(
                "--option",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                dest="definition_option",
                help=f"this definition's options: {', '.join(f'{k} (default {v!r})' for k, v in options.items())}",
            )


def parsed_options(step: Step, config: LakehouseConfig, args: argparse.Namespace) -> StepOptions:
    """The step's options from its parsed command line ``args`` (``--option key=value`` typed like its default)."""
    values = {}
    if step.kind == "definition":
        defaults = config.project.definitions[step.name].settings.options
        for pair in vars(args).get("definition_option", []):  # the option exists when the definition has options
            key, sep, text = pair.partition("=")
            if not sep or key not in defaults:
                raise ValueError(f"--option {pair!r}: expected KEY=VALUE with KEY one of {', '.join(defaults)}")
            values[key] = _typed_like(defaults[key], text)
    return StepOptions.from_args(args, values)


def _typed_like(default: Any, text: str) -> Any:
    if isinstance(default, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def step_main(argv: Sequence[str] | None = None, project: str | None = None) -> int:
    """``lakehouse step NAME [options]`` and ``spark-submit jobs/run.py NAME [options]``: run one step.

    Prints the step's summary and returns 0; on an error a user can act on (a bad declaration, a quality
    gate that refused the data, a missing input) prints one line naming it and returns 1.
    """
    import sys

    from lakehouse.engine.job import job_main
    from lakehouse.project.config import load_config

    argv = list(sys.argv[1:] if argv is None else argv)
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("step", nargs="?")
    first.add_argument("--conf-file")
    first.add_argument("--project", default=project)
    known, _ = first.parse_known_args(argv)
    if known.step is None or known.step.startswith("-"):
        print(
            "usage: STEP [options] [--conf-file FILE] [--project DIR]: run one step of the pipeline now\n"
            "  STEP is a step's name or a table it writes (`lakehouse steps` lists them); "
            "STEP --help shows its options",
            file=sys.stderr,
        )
        return 0 if {"-h", "--help"} & set(argv) else 2
    try:
        config = load_config(known.conf_file, project=known.project)
        step = config.project.step(known.step)
    except (ValueError, KeyError) as exc:
        print(f"{known.step}: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 1
    runner = runner_for(step)

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("step", help="the step (or a table it writes)")
        add_step_options(parser, step, config)

    def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
        ctx = ctx.with_options(parsed_options(step, config, args))
        return runner(ctx, step)

    description = f"{step.description} (step {step.name}, writes {', '.join(step.outputs)})"
    return job_main(step.name, description, run, add_arguments, argv, project=known.project)
