"""Land database tables into bronze as snapshots: a live JDBC read, a plain pg_dump file or a folder of per-table CSV exports; the same content twice is a no-op."""

from __future__ import annotations

import argparse
import os
import sys

from lakehouse.catalog import current_version
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.sources import snapshots
from lakehouse.sources.databases import get_database, source_databases
from lakehouse.tables import get_table
from lakehouse.writer import write_result

JOB_NAME = "ingest_database"
METHODS = ("jdbc", "dump", "csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", action="append", help="source database in conf/databases.yaml (repeatable; default: all)")
    parser.add_argument("--table", action="append", help="only these tables (repeatable; default: all the database lists)")
    parser.add_argument("--from", dest="method", choices=METHODS, default="jdbc",
                        help="jdbc: live read of the server in the configuration (default); dump: --dump-file; csv: --csv-dir")
    parser.add_argument("--dump-file", help="plain-format pg_dump file (any Hadoop filesystem URI)")
    parser.add_argument("--csv-dir", help="folder holding <table>.csv exports with a header row")


def _raw_snapshots(ctx: JobContext, args: argparse.Namespace, database) -> list[snapshots.RawSnapshot]:
    method = getattr(args, "method", "jdbc")
    wanted = getattr(args, "table", None)
    tables = [database.table(name) for name in wanted] if wanted else list(database.tables)
    if method == "jdbc":
        password = os.environ.get("LAKEHOUSE_PG_PASSWORD")
        return [snapshots.read_jdbc(ctx.spark, ctx.config, database, table, password) for table in tables]
    if method == "dump":
        if not args.dump_file:
            raise ValueError("--from dump needs --dump-file")
        return snapshots.read_pg_dump(ctx.spark, args.dump_file, database, tables)
    if not args.csv_dir:
        raise ValueError("--from csv needs --csv-dir")
    folder = args.csv_dir.rstrip("/")
    return [snapshots.read_csv_export(ctx.spark, f"{folder}/{table.name}.csv", database, table) for table in tables]


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    names = getattr(args, "database", None) or list(source_databases())
    result = JobResult(JOB_NAME, ctx.run_id)
    landed = unchanged = quarantined = 0
    for name in names:
        database = get_database(name)
        raw_snapshots = _raw_snapshots(ctx, args, database)
        try:
            for raw in raw_snapshots:
                path = ctx.config.table_path(raw.table.bronze_name)
                before = current_version(ctx.spark, path)
                outcome = snapshots.land_snapshot(ctx.spark, ctx.config, raw, ctx.job_name, ctx.run_id)
                result.writes.append(write_result(ctx.spark, get_table(outcome.table), path, before))
                landed += outcome.landed
                unchanged += not outcome.landed
                quarantined += outcome.quarantined
                state = f"snapshot {outcome.snapshot_id}" + ("" if outcome.landed else " unchanged: nothing landed")
                print(f"  {outcome.table}: {state}, {outcome.rows} rows, {outcome.quarantined} quarantined")
        finally:
            for raw in raw_snapshots:
                raw.release()
    result.counts.update({"snapshots landed": landed, "snapshots unchanged": unchanged, "rows quarantined": quarantined})
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
