"""``lakehouse cluster start|stop|status``: a Spark standalone cluster on this machine
(:mod:`lakehouse.services.cluster`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_cluster(args: argparse.Namespace) -> int:
    from lakehouse.services import cluster

    target = cluster.cluster(
        Path(args.state_dir) if args.state_dir else None,
        args.port,
        args.web_port,
        Path(args.secret_file) if args.secret_file else None,
    )
    if args.action == "start":
        cluster.start(target, workers=args.workers, cores=args.cores, memory=args.memory)
        print("\n".join(cluster.describe(target)))
        print(f"applications authenticate with the secret in {target.secret_file} (mode 0600); submit a job:")
        print(f"  spark-submit {' '.join(target.submit_options())} jobs/pipeline.py --conf-file conf/local.yaml")
        return 0
    if args.action == "stop":
        stopped = cluster.stop(target)
        print(f"stopped: {', '.join(stopped)}" if stopped else "no cluster was running")
        return 0
    print("\n".join(cluster.describe(target)))
    return 0 if cluster.alive_workers(target) else 3


def add_commands(commands) -> None:
    """Add ``cluster`` to the ``lakehouse`` command's sub-commands."""
    command = commands.add_parser(
        "cluster", help="start/stop a Spark standalone cluster (master + workers) on 127.0.0.1 for spark-submit"
    )
    command.add_argument("action", choices=["start", "stop", "status"])
    command.add_argument("--workers", type=int, default=2, help="worker daemons to start (default 2)")
    command.add_argument("--cores", type=int, default=1, help="cores each worker offers (default 1)")
    command.add_argument("--memory", default="2g", help="memory each worker offers to executors (default 2g)")
    command.add_argument("--port", type=int, default=None, help="the master's port (default 7077)")
    command.add_argument("--web-port", type=int, default=None, help="the master's web UI port (default 8080)")
    command.add_argument("--state-dir", default=None, help="pids, logs, work folders (default .cache/spark-cluster)")
    command.add_argument(
        "--secret-file",
        default=None,
        help="the shared spark.authenticate secret, a properties file of mode 0600 generated on first "
        "start (default .cache/secrets/spark-cluster.properties; <state-dir>/auth.properties "
        "with --state-dir)",
    )
    command.set_defaults(func=cmd_cluster)
