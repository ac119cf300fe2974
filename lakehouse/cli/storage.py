"""``lakehouse s3-server``: a local S3-compatible server (S3Proxy) to try ``s3a://`` warehouses on one machine."""

from __future__ import annotations

import argparse
import sys


def cmd_s3_server(args: argparse.Namespace) -> int:
    from lakehouse.services import object_store

    server = object_store.S3Server.default(args.data_dir, args.port)
    if args.action == "start":
        try:
            object_store.start(server, buckets=[args.bucket])
        except object_store.ObjectStoreError as exc:
            print(f"S3 server not started: {exc}", file=sys.stderr)
            return 1
        print(
            f"S3 server (S3Proxy) on {server.endpoint} (pid {object_store.running_pid(server)}), bucket {args.bucket}"
        )
        print(f"  objects under {server.buckets_dir}, log {server.log_file}")
        if server.access_key == object_store.DEV_ACCESS_KEY:
            print("  development keys (loopback only); export them for the jobs:")
        else:
            print("  keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; jobs need the same:")
        print("  " + " ".join(f"export {name}={value};" for name, value in server.env().items()))
        # conf/cluster.yaml's metastore is the cluster's PostgreSQL: on one machine, each process its own catalog
        print(
            "  LAKEHOUSE_METASTORE=in-memory lakehouse run --select gold.user_activity_daily "
            "--conf-file conf/cluster.yaml"
        )
        return 0
    if args.action == "stop":
        print("S3 server stopped" if object_store.stop(server) else "no S3 server was running")
        return 0
    if args.action == "upload":
        if not args.source or not args.target:
            print("upload needs a local SOURCE folder and an s3a://bucket/prefix TARGET", file=sys.stderr)
            return 2
        try:
            keys = object_store.upload_folder(server, args.source, args.target)
        except (OSError, ValueError, object_store.ObjectStoreError) as exc:
            print(f"upload failed ({server.endpoint}): {exc}", file=sys.stderr)
            return 1
        print(f"{len(keys)} files uploaded to {args.target}")
        return 0
    pid = object_store.running_pid(server)
    print(
        f"S3 server on {server.endpoint}: "
        + (f"running (pid {pid}), objects under {server.buckets_dir}" if pid else "not running")
    )
    return 0 if pid else 3


def add_commands(commands) -> None:
    """Register ``s3-server`` on the ``lakehouse`` parser's sub-commands."""
    s3 = commands.add_parser(
        "s3-server",
        help="start/stop a local S3-compatible server (S3Proxy on 127.0.0.1) for s3a:// warehouses",
        description=(
            "A real S3 API over a local folder, for trying conf/cluster.yaml's s3a:// warehouse on one machine. "
            "Keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when set, else fixed development keys (printed). "
            "`upload SOURCE s3a://bucket/prefix` copies local files (e.g. generated logs) into the landing."
        ),
    )
    s3.add_argument("action", choices=["start", "stop", "status", "upload"])
    s3.add_argument("source", nargs="?", help="upload: local folder")
    s3.add_argument("target", nargs="?", help="upload: s3a://bucket/prefix")
    s3.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 9000, LAKEHOUSE_S3_PORT)")
    s3.add_argument("--data-dir", default=None, help="folder of the buckets, pid and log (default .cache/s3)")
    s3.add_argument("--bucket", default="lakehouse", help="bucket created at start (default: lakehouse)")
    s3.set_defaults(func=cmd_s3_server)
