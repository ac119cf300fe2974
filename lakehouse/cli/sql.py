"""``lakehouse`` commands for people who do not write jobs: the catalog, the SQL server, spark-sql, notebooks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def cmd_catalog(args: argparse.Namespace) -> int:
    """Register every declared table that exists (and every tag view) in the catalog; list them."""
    from lakehouse.engine.session import get_spark
    from lakehouse.project.config import load_config
    from lakehouse.services.metastore import uses_shared_metastore

    config = load_config(args.conf_file)
    spark = get_spark(config)  # registers declared tables and tag views as it starts
    where = (
        f"metastore database '{config.catalog.database}' on {config.postgres.host}:{config.postgres.port}"
        if uses_shared_metastore(config)
        else "this process's in-memory catalog"
    )
    print(f"catalog: {where}")
    for database in sorted(row[0] for row in spark.sql("SHOW DATABASES").collect()):
        names = sorted(row.tableName for row in spark.sql(f"SHOW TABLES IN {database}").collect())
        print(f"{database}: {', '.join(names) if names else '(no tables)'}")
    return 0


def cmd_sql_server(args: argparse.Namespace) -> int:
    from lakehouse.project.config import load_config
    from lakehouse.services import sql_server
    from lakehouse.services.metastore import uses_shared_metastore

    if args.action in ("add-user", "remove-user", "users"):
        return _accounts(args)
    config = load_config(args.conf_file)
    if args.action == "start":
        if not uses_shared_metastore(config):
            print(
                "warning: catalog.metastore is in-memory: the server will see no table a job registers", file=sys.stderr
            )
        if sql_server.running_pid(sql_server.sql_server(config)) is None:
            _sync_catalog(config)
        server = sql_server.start(config, port=args.port, driver_memory=args.driver_memory, users_file=args.users_file)
        print(
            f"SQL server on {server.host}:{server.port} (pid {sql_server.running_pid(server)}, log {server.log_file})"
        )
        names = sql_server.user_names(server.users_file)
        print(
            f"  accounts: {', '.join(names) if names else 'none yet'} ({server.users_file}); "
            "a new one: lakehouse sql-server add-user NAME"
        )
        print(f"  beeline -u {server.jdbc_url} -n NAME -w FILE_WITH_THE_PASSWORD -e 'SHOW TABLES IN gold'")
        return 0
    if args.action == "stop":
        stopped = sql_server.stop(config)
        print("SQL server stopped" if stopped else "no SQL server was running")
        return 0
    server = sql_server.sql_server(config)
    pid = sql_server.running_pid(server)
    print(f"SQL server on {server.host}:{server.port}: " + (f"running (pid {pid})" if pid else "not running"))
    return 0 if pid else 3


def _accounts(args: argparse.Namespace) -> int:
    """``add-user NAME`` (a new generated password, printed once or written to ``--password-file``),
    ``remove-user NAME``, ``users``: the accounts the SQL server lets in (read at each connection)."""
    from lakehouse.services import daemons, sql_server

    users_file = Path(args.users_file).resolve() if args.users_file else sql_server.DEFAULT_USERS_FILE
    if args.action == "users":
        print("\n".join(sql_server.user_names(users_file)) or f"no accounts in {users_file}")
        return 0
    if not args.name:
        print(f"{args.action} needs a user NAME", file=sys.stderr)
        return 2
    if args.action == "remove-user":
        removed = sql_server.remove_user(users_file, args.name)
        print(f"removed {args.name}" if removed else f"no account {args.name} in {users_file}")
        return 0 if removed else 1
    try:
        password = sql_server.add_user(users_file, args.name)
    except sql_server.SqlServerError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.password_file:
        daemons.write_private(Path(args.password_file), password + "\n")
        print(f"{args.name}: password written to {args.password_file} (mode 0600); stored hashed in {users_file}")
    else:
        print(f"{args.name}: {password}")
        print(f"  shown once (stored hashed in {users_file}); keep it in a file of mode 0600 and connect with")
        print(f"  beeline -u jdbc:hive2://127.0.0.1:10000/default -n {args.name} -w THAT_FILE")
        print(f"  or PyHive: hive.connect(host, port, username='{args.name}', password=..., auth='CUSTOM')")
    return 0


def _sync_catalog(config) -> None:
    """Register the declared tables in the shared metastore (a short Spark session of its own: starting
    one registers every declared table that exists, and every tag view)."""
    from lakehouse.engine.session import get_spark
    from lakehouse.services.metastore import uses_shared_metastore

    if not uses_shared_metastore(config):
        return  # the server's own in-memory catalog starts empty; nothing to share
    get_spark(config, app_name="lakehouse-catalog-sync").stop()
    print(f"catalog: declared tables registered in metastore database '{config.catalog.database}'")


def cmd_spark_sql(args: argparse.Namespace) -> int:
    """Replace this process with ``spark-sql`` configured like the environment's jobs."""
    from lakehouse.install import spark_home
    from lakehouse.project.config import load_config
    from lakehouse.services.metastore import prepare_metastore, uses_shared_metastore
    from lakehouse.services.spark_conf import spark_settings

    passed_on = list(args.spark_sql_args)
    conf_file = args.conf_file
    if "--conf-file" in passed_on:  # given after spark-sql's own options: ours all the same
        at = passed_on.index("--conf-file")
        conf_file = passed_on[at + 1]
        del passed_on[at : at + 2]
    config = load_config(conf_file)
    if uses_shared_metastore(config):
        prepare_metastore(config)
    command = [str(spark_home() / "bin" / "spark-sql"), "--master", config.spark_master or "local[*]"]
    for key, value in spark_settings(config).items():  # no secret among them (lakehouse.services.metastore)
        command += ["--conf", f"{key}={value}"]
    command += passed_on
    from lakehouse.services.daemons import S3_VARIABLES, child_environment

    # prepare_metastore put HIVE_CONF_DIR (the private hive-site.xml with the metastore's password) in
    # this environment; spark-sql needs no other secret than s3a's keys.
    os.execve(command[0], command, child_environment(keep=S3_VARIABLES))
    return 0


def cmd_notebook(args: argparse.Namespace) -> int:
    from lakehouse.install.paths import PROJECT_ROOT
    from lakehouse.notebooks.export import export_ipynb
    from lakehouse.notebooks.runner import run_notebook
    from lakehouse.project.config import load_config

    paths = [Path(p) for p in args.notebooks] or sorted((PROJECT_ROOT / "notebooks").glob("*.py"))
    if not paths:
        print("no notebooks given and none in notebooks/", file=sys.stderr)
        return 2
    if args.action == "export":
        for path in paths:
            print(f"wrote {export_ipynb(path, Path(args.out) if args.out else None)}")
        return 0
    from lakehouse.engine.session import get_spark

    config = load_config(args.conf_file)
    spark = get_spark(config)
    failed = 0
    for path in paths:
        result = run_notebook(path, spark, config, out_dir=Path(args.out) if args.out else None)
        print(result.summary())
        failed += not result.ok
    return 1 if failed else 0


def add_commands(commands) -> None:
    """Add these commands to the ``lakehouse`` parser's sub-commands."""
    catalog = commands.add_parser("catalog", help="register every declared table in the shared catalog and list them")
    catalog.add_argument("--conf-file", default=None)
    catalog.set_defaults(func=cmd_catalog)

    server = commands.add_parser(
        "sql-server",
        help="the Thrift (HiveServer2) SQL server on 127.0.0.1: start, stop, status; "
        "its accounts: add-user, remove-user, users",
        description="Every client logs in with a name and password: `add-user NAME` prints a generated password once "
        "(stored hashed in the users file); the running server checks it at each connection.",
    )
    server.add_argument("action", choices=("start", "stop", "status", "add-user", "remove-user", "users"))
    server.add_argument("name", nargs="?", help="add-user / remove-user: the analyst's user name")
    server.add_argument("--port", type=int, default=10000)
    server.add_argument("--driver-memory", default=None, help="default: spark.driver.memory from conf/")
    server.add_argument("--users-file", default=None, help="the accounts (default .cache/secrets/sql-server.users)")
    server.add_argument(
        "--password-file",
        default=None,
        help="add-user: write the new password to this file (mode 0600) instead of printing it",
    )
    server.add_argument("--conf-file", default=None)
    server.set_defaults(func=cmd_sql_server)

    spark_sql = commands.add_parser(
        "spark-sql", help="the spark-sql shell on the shared catalog (arguments go to spark-sql, e.g. -e 'SHOW TABLES')"
    )
    spark_sql.add_argument("--conf-file", default=None)
    spark_sql.add_argument("spark_sql_args", nargs=argparse.REMAINDER)
    spark_sql.set_defaults(func=cmd_spark_sql)

    notebook = commands.add_parser("notebook", help="run Databricks-format notebooks locally, or export them to .ipynb")
    notebook.add_argument("action", choices=("run", "export"))
    notebook.add_argument("notebooks", nargs="*", help="default: every notebook in notebooks/")
    notebook.add_argument("--out", default=None, help="run: where figures and the cell log go; export: the folder")
    notebook.add_argument("--conf-file", default=None)
    notebook.set_defaults(func=cmd_notebook)
