"""The ``lakehouse`` command: set-up, projects and their sources, the pipeline, and a look at the tables.

Every command works on one project (``lakehouse --project DIR <command>``, ``$LAKEHOUSE_PROJECT``, or the
project folder around the current one) and one of its environments (``--conf-file``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _config(args: argparse.Namespace):
    from lakehouse.project.config import load_config

    return load_config(args.conf_file)


def cmd_setup(args: argparse.Namespace) -> int:
    from lakehouse.cli.setup import run_setup

    run_setup(force=args.force)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from lakehouse.project import summary_line
    from lakehouse.project.jobs import job_names, load_job

    config = _config(args)
    names = job_names(Path(config.project_root))
    for name in names:
        print(f"{name:<28} {summary_line(load_job(Path(config.project_root), name).__doc__)}")
    if not names:
        print(f"{config.project_root}/jobs: no jobs (the pipeline's steps run with `lakehouse step`)")
    return 0


def _project_job(name: str, job_args: list[str]) -> int:
    from lakehouse.project import find_project_root
    from lakehouse.project.jobs import load_job

    return load_job(find_project_root(), name).main(job_args)


def cmd_job(args: argparse.Namespace) -> int:
    return _project_job(args.name, args.job_args)


def cmd_pipeline(args: argparse.Namespace) -> int:
    """The project's main job (``jobs/pipeline.py``) when it has one, else ``lakehouse run``."""
    from lakehouse.project import find_project_root
    from lakehouse.project.jobs import job_names

    if "pipeline" in job_names(find_project_root()):
        return _project_job("pipeline", args.job_args)
    return main(["run", *args.job_args])


def cmd_steps(args: argparse.Namespace) -> int:
    config = _config(args)
    steps = config.project.steps
    width = max([len("step"), *(len(s.name) for s in steps)])
    for step in steps:
        print(f"{step.name:<{width}}  {step.kind:<16} {step.description}")
    if not steps:
        print(
            f"{config.project_root}: no steps yet: add a source "
            "(`lakehouse source add-files NAME --path DIR --format text`)"
        )
    return 0


def cmd_step(args: argparse.Namespace) -> int:
    from lakehouse.engine import step_main

    return step_main(args.step_args)


def cmd_dag(args: argparse.Namespace) -> int:
    from lakehouse.project.dag import format_dag, render_airflow_dag, write_svg

    project = _config(args).project
    print(format_dag(project))
    if args.svg:
        print(f"drawn in {write_svg(project, Path(args.svg))}")
    if args.airflow:
        target = Path(args.airflow)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_airflow_dag(project))
        print(f"Airflow DAG written to {target}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from collections import Counter

    from lakehouse.engine.orchestration import failures, run_pipeline

    spark, config = _session(args)
    outcomes = run_pipeline(
        spark, config, selected=args.select, upstream=not args.no_upstream, downstream=args.downstream, force=args.force
    )
    counts = Counter(outcome.status for outcome in outcomes)
    print(", ".join(f"{count} {status}" for status, count in sorted(counts.items())) + " (every step: ops.runs)")
    if args.tables:
        from lakehouse.engine.report import format_statuses, table_statuses

        print(format_statuses(table_statuses(spark, config)))
    problem = failures(outcomes)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from lakehouse.engine.report import format_declarations, format_statuses, table_statuses

    config = _config(args)
    if args.declared:
        print(format_declarations(config))
        return 0
    from lakehouse.engine.session import get_spark

    print(format_statuses(table_statuses(get_spark(config), config)))
    return 0


def _session(args: argparse.Namespace):
    from lakehouse.engine.session import get_spark

    config = _config(args)
    return get_spark(config), config


def cmd_sql(args: argparse.Namespace) -> int:
    spark, _ = _session(args)
    spark.sql(args.query).show(args.limit, truncate=False)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from lakehouse.storage.catalog import read_table
    from lakehouse.versioning.tags import read_tagged

    spark, config = _session(args)
    if args.tag is not None:  # --version, --timestamp and --tag are mutually exclusive (parser)
        rows = read_tagged(spark, config, args.table, args.tag)
    else:
        rows = read_table(spark, config, args.table, version=args.version, timestamp=args.timestamp)
    rows.show(args.limit, truncate=False)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from lakehouse.versioning.history import format_history, table_history

    spark, config = _session(args)
    print(format_history(table_history(spark, config, args.table, limit=args.limit)))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from lakehouse.versioning.diff import diff_versions

    spark, config = _session(args)
    diff = diff_versions(spark, config, args.table, args.from_version, args.to_version)
    counts = diff.counts()
    print(
        f"{diff.table} {diff.from_version} -> {diff.to_version} ({diff.method}): "
        + ", ".join(f"{n:,} {kind}" for kind, n in counts.items())
    )
    for kind, frame in (("added", diff.added), ("removed", diff.removed), ("changed", diff.changed)):
        if frame is not None and counts[kind]:
            print(f"\n{kind} (first {args.samples}):")
            frame.show(args.samples, truncate=False)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from lakehouse.versioning.tags import create_tag

    spark, config = _session(args)
    tag = create_tag(spark, config, args.table, args.tag, version=args.version, note=args.note)
    print(f"tagged {tag.table}@{tag.version} as {tag.tag!r}")
    return 0


def cmd_untag(args: argparse.Namespace) -> int:
    from lakehouse.versioning.tags import delete_tag

    spark, config = _session(args)
    delete_tag(spark, config, args.table, args.tag)
    print(f"deleted tag {args.tag!r} of {args.table}")
    return 0


def cmd_tags(args: argparse.Namespace) -> int:
    from lakehouse.versioning.tags import list_tags
    from lakehouse.versioning.views import tag_view_name

    spark, config = _session(args)
    for tag in list_tags(spark, config, args.table):
        print(
            f"{tag.table:<30} {tag.tag:<28} v{tag.version:<6} {tag.created_at:%Y-%m-%d %H:%M} "
            f"{tag.created_by or '-':<10} SQL: {tag_view_name(config.table(tag.table), tag.tag)}  {tag.note or ''}"
        )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from lakehouse.versioning.restore import restore_table

    spark, config = _session(args)
    new_version = restore_table(spark, config, args.table, version=args.version, tag=args.tag, force=args.force)
    print(
        f"{args.table}: restored to {'tag ' + args.tag if args.tag else 'version ' + str(args.version)} "
        f"as new version {new_version}"
    )
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    from lakehouse.storage.catalog import current_version
    from lakehouse.versioning.retention import vacuum_table

    spark, config = _session(args)
    names = args.tables or [
        d.name for d in config.tables() if current_version(spark, config.table_path(d.name)) is not None
    ]
    for name in names:
        plan = vacuum_table(spark, config, name, dry_run=args.dry_run)
        protected = f", protecting tags {', '.join(plan.protected_tags)}" if plan.protected_tags else ""
        action = "would vacuum" if args.dry_run else "vacuumed"
        print(
            f"{action} {plan.table}: retention {plan.retention_hours:.2f} h (policy {plan.policy_hours:g} h{protected})"
        )
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from lakehouse.lineage.tables import format_lineage, table_lineage

    spark, config = _session(args)
    print(format_lineage(table_lineage(spark, config, args.table, version=args.version)))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from lakehouse.lineage.mlflow_runs import configure_mlflow, reproduce, run_inputs

    spark, config = _session(args)
    configure_mlflow(config)
    for item in run_inputs(args.run_id):
        print(f"input {item['name']} ({item['context']}): {item['path']} version {item['version']}")
    frame = reproduce(spark, config, args.run_id)
    print(f"training frame: {frame.count():,} rows, columns {frame.columns}")
    if args.out:
        frame.write.mode("overwrite").parquet(args.out)
        print(f"written to {args.out}")
    return 0


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    import os

    from lakehouse.lineage.mlflow_runs import configure_mlflow

    config = _config(args)
    configure_mlflow(config)
    command = [
        "mlflow",
        "ui",
        "--backend-store-uri",
        config.mlflow_tracking_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
    ]
    print(" ".join(command))
    os.execvp(command[0], command)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from lakehouse.scenario.sources import load_source_databases
    from lakehouse.services import postgres
    from lakehouse.services.postgres import PostgresServer

    config = _config(args)
    server = PostgresServer.from_config(config)
    where = f"{server.host}:{server.port}"
    if args.action == "start":
        postgres.start(server)
        print(f"PostgreSQL running on {where} (data: {server.data_dir}, log: {server.log_file})")
    elif args.action == "stop":
        print(
            f"stopped PostgreSQL on {where}"
            if postgres.stop(server)
            else f"no server was running from {server.data_dir}"
        )
    elif args.action == "status":
        running = postgres.is_running(server)
        print(f"PostgreSQL on {where}: {'running' if running else 'not running'}")
        return 0 if running else 3
    elif args.action == "load":
        loaded = load_source_databases(config)
        for name, counts in loaded.items():
            print(f"loaded {name}: " + ", ".join(f"{table} {rows:,}" for table, rows in counts.items()))
        if not loaded:
            print(f"every source database is already loaded on {where}")
    elif args.action == "dump":
        target = Path(args.out or f"{args.database}.sql")
        postgres.pg_dump(server, args.database, target)
        print(f"wrote {target}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from lakehouse.scenario.app_events import write_app_event_logs

    config = _config(args)
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
    parser = argparse.ArgumentParser(
        prog="lakehouse", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--project",
        default=None,
        metavar="DIR",
        help="the project folder (default: $LAKEHOUSE_PROJECT, else the project around the current folder)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    setup = commands.add_parser(
        "setup",
        help="fetch the jars and real data sets once, write Spark's defaults and the class archive of its sessions",
    )
    setup.add_argument("--force", action="store_true", help="fetch and write again even when cached")
    setup.set_defaults(func=cmd_setup)

    from lakehouse.cli.project import add_commands as add_project_commands

    add_project_commands(commands)

    jobs = commands.add_parser("jobs", help="list the project's own jobs (jobs/*.py)")
    jobs.add_argument("--conf-file", default=None)
    jobs.set_defaults(func=cmd_jobs)

    job = commands.add_parser(
        "job",
        help="run one of the project's jobs, e.g. `lakehouse job train_popularity --epochs 2`",
        description="Run jobs/<name>.py of the project; the arguments after the name go to the job "
        "(try --help after it).",
    )
    job.add_argument("name", help="job name (see `lakehouse jobs`)")
    job.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments for the job")
    job.set_defaults(func=cmd_job)

    pipeline = commands.add_parser(
        "pipeline", help="the project's main job (jobs/pipeline.py), else `lakehouse run`", add_help=False
    )
    pipeline.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments for jobs/pipeline.py")
    pipeline.set_defaults(func=cmd_pipeline)

    steps = commands.add_parser("steps", help="the pipeline's steps: name, kind, what each does")
    steps.add_argument("--conf-file", default=None)
    steps.set_defaults(func=cmd_steps)

    step = commands.add_parser(
        "step",
        add_help=False,
        help="run one step now (no skipping), e.g. `lakehouse step gold.daily_active_users`; "
        "STEP --help shows its options",
    )
    step.add_argument("step_args", nargs=argparse.REMAINDER, help="the step (or a table it writes) and its options")
    step.set_defaults(func=cmd_step)

    dag = commands.add_parser("dag", help="the pipeline's steps in dependency order, derived from the declarations")
    dag.add_argument("--svg", default=None, help="also draw the table graph here (e.g. docs/dag.svg)")
    dag.add_argument(
        "--airflow", default=None, help="also write an Airflow DAG file here (e.g. dags/lakehouse_pipeline.py)"
    )
    dag.add_argument("--conf-file", default=None)
    dag.set_defaults(func=cmd_dag)

    run = commands.add_parser(
        "run",
        help="run the pipeline's steps in dependency order, skipping those whose inputs, code and "
        "configuration are unchanged since their last success",
    )
    run.add_argument(
        "--select",
        nargs="+",
        default=None,
        metavar="TABLE_OR_JOB",
        help="only these (tables or jobs) and, by default, their upstream steps",
    )
    run.add_argument("--downstream", action="store_true", help="also every step downstream of the selection")
    run.add_argument("--no-upstream", action="store_true", help="not the selection's upstream steps")
    run.add_argument("--force", action="store_true", help="run the steps even when nothing changed")
    run.add_argument("--tables", action="store_true", help="then print every table's version, rows and location")
    run.add_argument("--conf-file", default=None)
    run.set_defaults(func=cmd_run)

    tables = commands.add_parser("tables", help="every declared table with its version, rows and location")
    tables.add_argument(
        "--declared",
        action="store_true",
        help="what each table is (layer, step, where it is defined), without starting Spark",
    )
    tables.add_argument("--conf-file", default=None)
    tables.set_defaults(func=cmd_tables)

    sql = commands.add_parser("sql", help="run a SQL query over the declared tables, e.g. quality.results")
    sql.add_argument("query", help='e.g. "SELECT * FROM quality.results ORDER BY checked_at DESC"')
    sql.add_argument("--limit", type=int, default=50, help="rows to show")
    sql.add_argument("--conf-file", default=None)
    sql.set_defaults(func=cmd_sql)

    def table_command(name: str, help_text: str, func):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--conf-file", default=None)
        command.set_defaults(func=func)
        return command

    show = table_command("show", "show a table's rows, now or as it was (version, timestamp or tag)", cmd_show)
    show.add_argument("table")
    when = show.add_mutually_exclusive_group()
    when.add_argument("--version", type=int)
    when.add_argument("--timestamp", help="e.g. '2026-11-21 18:00:00'")
    when.add_argument("--tag")
    show.add_argument("--limit", type=int, default=20)

    history = table_command("history", "a table's versions: operation, job run, rows added/removed", cmd_history)
    history.add_argument("table")
    history.add_argument("--limit", type=int, default=None)

    diff = table_command("diff", "rows added, removed and changed between two versions", cmd_diff)
    diff.add_argument("table")
    diff.add_argument("from_version", type=int)
    diff.add_argument("to_version", type=int)
    diff.add_argument("--samples", type=int, default=5, help="rows shown per kind")

    tag = table_command("tag", "name a version of a table (default: the latest)", cmd_tag)
    tag.add_argument("table")
    tag.add_argument("tag")
    tag.add_argument("--version", type=int)
    tag.add_argument("--note")

    untag = table_command("untag", "delete a tag", cmd_untag)
    untag.add_argument("table")
    untag.add_argument("tag")

    tags = table_command("tags", "list tags with the versions they point at", cmd_tags)
    tags.add_argument("table", nargs="?")

    restore = table_command("restore", "roll a table back to a version or tag (as a new version)", cmd_restore)
    restore.add_argument("table")
    target = restore.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", type=int)
    target.add_argument("--tag")
    restore.add_argument("--force", action="store_true", help="restore even though tags point past the target")

    vacuum = table_command(
        "vacuum", "delete old files by the retention policy in conf/ (tagged versions kept)", cmd_vacuum
    )
    vacuum.add_argument("tables", nargs="*", help="default: every table")
    vacuum.add_argument("--dry-run", action="store_true")

    lineage = table_command("lineage", "what a table version was built from, down to source files", cmd_lineage)
    lineage.add_argument("table")
    lineage.add_argument("--version", type=int)

    reproduce = table_command("reproduce", "rebuild the exact training DataFrame of an MLflow run", cmd_reproduce)
    reproduce.add_argument("run_id")
    reproduce.add_argument("--out", help="also write it as Parquet here")

    ui = table_command(
        "mlflow-ui", "start the MLflow UI on 127.0.0.1 over the lakehouse's tracking store", cmd_mlflow_ui
    )
    ui.add_argument("--port", type=int, default=5000)

    db = commands.add_parser(
        "db", help="the application database (PostgreSQL on 127.0.0.1): start, stop, status, load, dump"
    )
    db.add_argument(
        "action",
        choices=("start", "stop", "status", "load", "dump"),
        help="load: create and fill the source databases (conf/databases.yaml) that are missing; "
        "dump: write a plain-format pg_dump of --database",
    )
    db.add_argument("--conf-file", default=None)
    db.add_argument("--database", default="appdb", help="database to dump (default: appdb)")
    db.add_argument("--out", default=None, help="dump file (default: <database>.sql)")
    db.set_defaults(func=cmd_db)
    generate = commands.add_parser("generate", help="write the scenario's application event logs")
    generate.add_argument("--conf-file", default=None)
    generate.add_argument("--days", type=int, default=1, help="days of logs to write")
    generate.add_argument("--first-day", type=int, default=0, help="days after 2026-11-01 to start at")
    generate.add_argument("--scale", type=float, default=None, help="override the scenario scale")
    generate.add_argument("--out", default=None, help="folder (default: <landing>/app_events)")
    generate.set_defaults(func=cmd_generate)

    from lakehouse.cli.sql import add_commands

    add_commands(commands)
    from lakehouse.cli.storage import add_commands as add_storage_commands

    add_storage_commands(commands)
    from lakehouse.cli.cluster import add_commands as add_cluster_commands

    add_cluster_commands(commands)
    from lakehouse.cli.labels import add_commands as add_labels_commands

    add_labels_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # argparse does not hand options like `--skip-training` to a REMAINDER positional: pass them on
        if args.command == "spark-sql":
            args.spark_sql_args = [*unknown, *args.spark_sql_args]
        elif args.command in ("job", "pipeline"):
            args.job_args = [*unknown, *args.job_args]
        elif args.command == "step":
            args.step_args = [*args.step_args[:1], *unknown, *args.step_args[1:]]
        else:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    from lakehouse.project import forget_loaded_projects
    from lakehouse.versioning.restore import RestoreRefused
    from lakehouse.versioning.tags import TagError

    forget_loaded_projects()  # a command reads the project as it is when the command starts
    previous = os.environ.get("LAKEHOUSE_PROJECT")
    if args.project:
        # the command, and every process it starts (the SQL server, spark-submit), works on this project
        os.environ["LAKEHOUSE_PROJECT"] = str(Path(args.project).expanduser().resolve())
    try:
        return args.func(args)
    except KeyError as exc:
        print(f"lakehouse: {exc.args[0]}", file=sys.stderr)
        return 2
    except (TagError, RestoreRefused, ValueError) as exc:  # bad declarations (ProjectError, ...) are ValueErrors
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.project:
            if previous is None:
                os.environ.pop("LAKEHOUSE_PROJECT", None)
            else:
                os.environ["LAKEHOUSE_PROJECT"] = previous


if __name__ == "__main__":
    sys.exit(main())
