"""The ``lakehouse`` command: set-up, jobs, the pipeline and a look at the tables."""

from __future__ import annotations

import argparse
import sys

from lakehouse.pipeline import available_jobs, load_job


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text else ""


def cmd_setup(args: argparse.Namespace) -> int:
    from lakehouse.install import run_setup

    run_setup(force=args.force)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    for name in available_jobs():
        print(f"{name:<28} {_first_line(load_job(name).__doc__)}")
    return 0


def cmd_job(args: argparse.Namespace) -> int:
    return load_job(args.name).main(args.job_args)


def cmd_pipeline(args: argparse.Namespace) -> int:
    return load_job("pipeline").main(args.job_args)


def cmd_tables(args: argparse.Namespace) -> int:
    from lakehouse.config import load_config
    from lakehouse.report import format_statuses, table_statuses
    from lakehouse.session import get_spark

    config = load_config(args.conf_file)
    print(format_statuses(table_statuses(get_spark(config), config)))
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from lakehouse.config import load_config
    from lakehouse.session import get_spark

    config = load_config(args.conf_file)
    get_spark(config).sql(args.query).show(args.limit, truncate=False)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from lakehouse.config import load_config
    from lakehouse.scenario.app_events import write_app_event_logs

    config = load_config(args.conf_file)
    scenario = config.scenario
    out = args.out or config.landing_path("app_events")
    logs = write_app_event_logs(
        out,
        seed=scenario.seed,
        scale=scenario.scale if args.scale is None else args.scale,
        days=args.days,
        first_day=args.first_day,
        bad_line_rate=scenario.bad_line_rate,
        duplicate_rate=scenario.duplicate_rate,
    )
    print(
        f"wrote {logs.lines:,} lines in {len(logs.files)} files to {out}: {logs.valid_events:,} events, "
        f"{logs.duplicate_lines:,} re-sent, {logs.total_bad_lines:,} malformed on purpose"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    setup = commands.add_parser("setup", help="fetch the Delta/JDBC jars once and write Spark's defaults")
    setup.add_argument("--force", action="store_true", help="fetch again even when cached")
    setup.set_defaults(func=cmd_setup)

    commands.add_parser("jobs", help="list the jobs in jobs/").set_defaults(func=cmd_jobs)

    job = commands.add_parser(
        "job",
        help="run one job, e.g. `lakehouse job ingest_app_events --conf-file conf/local.yaml`",
        description="Run jobs/<name>.py; the arguments after the name go to the job (try --help after it).",
    )
    job.add_argument("name", help="job name (see `lakehouse jobs`)")
    job.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments for the job")
    job.set_defaults(func=cmd_job)

    pipeline = commands.add_parser("pipeline", help="the main job: every table, in dependency order", add_help=False)
    pipeline.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments for jobs/pipeline.py")
    pipeline.set_defaults(func=cmd_pipeline)

    tables = commands.add_parser("tables", help="every declared table with its version, rows and location")
    tables.add_argument("--conf-file", default=None)
    tables.set_defaults(func=cmd_tables)

    sql = commands.add_parser("sql", help="run a SQL query over the declared tables, e.g. quality.results")
    sql.add_argument("query", help='e.g. "SELECT * FROM quality.results ORDER BY checked_at DESC"')
    sql.add_argument("--limit", type=int, default=50, help="rows to show")
    sql.add_argument("--conf-file", default=None)
    sql.set_defaults(func=cmd_sql)

    generate = commands.add_parser("generate", help="write the scenario's application event logs")
    generate.add_argument("--conf-file", default=None)
    generate.add_argument("--days", type=int, default=1, help="days of logs to write")
    generate.add_argument("--first-day", type=int, default=0, help="days after 2026-11-01 to start at")
    generate.add_argument("--scale", type=float, default=None, help="override the scenario scale")
    generate.add_argument("--out", default=None, help="folder (default: <landing>/app_events)")
    generate.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyError as exc:
        print(f"lakehouse: {exc.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
