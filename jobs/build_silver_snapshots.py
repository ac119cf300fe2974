"""Build silver current state (silver.<table>) and history (silver.<table>_history) from the database snapshots in bronze: each new snapshot, oldest first, pseudonymised, is MERGEd into both; rows with a null or repeated key go to silver.<table>_quarantine."""

from __future__ import annotations

import argparse
import calendar
import sys

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.privacy import pseudonym_key, pseudonymise
from lakehouse.publish import publish_rows
from lakehouse.scd import last_applied, merge_current_state, merge_history
from lakehouse.sources.databases import SourceTable, get_database, source_databases
from lakehouse.tables import get_table
from lakehouse.transforms.snapshot_changes import (
    Snapshot,
    accepted_rows,
    landed_snapshots,
    mark_key_problems,
    rejected_rows,
    snapshot_rows,
)
from lakehouse.writer import Commit, Transaction, WriteResult, ensure_table

JOB_NAME = "build_silver_snapshots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", action="append", help="source database in conf/databases.yaml (repeatable; default: all)")
    parser.add_argument("--table", action="append", help="only these tables (repeatable)")


def _selected_tables(args: argparse.Namespace) -> list[SourceTable]:
    names = getattr(args, "database", None) or list(source_databases())
    wanted = getattr(args, "table", None)
    tables = []
    for name in names:
        database = get_database(name)
        tables += [database.table(t) for t in wanted] if wanted else list(database.tables)
    return tables


def _transaction(table: SourceTable, snapshot: Snapshot) -> Transaction:
    # Snapshots are applied oldest first, so their time is an increasing transaction version: a replay of
    # an applied snapshot (after a crash between the commits below) is skipped table by table.
    millis = calendar.timegm(snapshot.taken_at.timetuple()) * 1000 + snapshot.taken_at.microsecond // 1000
    return Transaction(app_id=f"{JOB_NAME}:{table.silver_name}", version=millis)


def apply_snapshot(ctx: JobContext, table: SourceTable, bronze, bronze_version: int, snapshot: Snapshot, key: bytes) -> dict:
    """Pseudonymise one snapshot, quarantine its key problems, gate it, MERGE it into current state then
    history. Returns the counts and the write results."""
    current, history = get_table(table.silver_name), get_table(table.history_name)
    columns = get_table(table.bronze_name).source_schema.names
    rows = pseudonymise(snapshot_rows(bronze, snapshot, columns), table.private, key)
    marked = mark_key_problems(rows, current.keys).persist()
    rows_in = marked.count()
    commit = Commit(JOB_NAME, ctx.run_id, {table.bronze_name: bronze_version}, _transaction(table, snapshot))
    history_writes: list[WriteResult] = []

    def merge_both(spark, config, declaration, kept, commit):
        # Current state first: if the run dies before the history commit, the snapshot is still pending
        # (history says where we are), and merging it into current state again changes nothing.
        written = merge_current_state(spark, config, declaration, kept, commit)
        history_writes.append(merge_history(spark, config, history, kept, snapshot.snapshot_id, snapshot.taken_at, commit))
        return written

    try:
        source = f"{table.bronze_name}@{bronze_version}:{snapshot.snapshot_id}"
        result = publish_rows(
            ctx.spark, ctx.config, current, accepted_rows(marked), commit, mode=merge_both,
            rejected=rejected_rows(marked, source, ctx.run_id),
        )
    finally:
        marked.unpersist()
    return {
        "rows": rows_in,
        "quarantined": result.rows_quarantined,
        "writes": [w for w in (result.write, result.quarantine, *history_writes) if w is not None],
    }


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    spark, config = ctx.spark, ctx.config
    key = pseudonym_key(config)
    result = JobResult(JOB_NAME, ctx.run_id)
    applied = rows = quarantined = skipped_old = 0
    for table in _selected_tables(args):
        bronze_version = current_version(spark, config.table_path(table.bronze_name))
        if bronze_version is None:
            print(f"  {table.bronze_name}: not landed yet (run ingest_database): skipped")
            continue
        bronze = read_table(spark, config, table.bronze_name, version=bronze_version)
        ensure_table(spark, config, get_table(table.silver_name).quarantine)  # queryable even while empty
        done_until = last_applied(spark, config, get_table(table.history_name))
        snapshots = landed_snapshots(bronze)
        pending = [s for s in snapshots if done_until is None or s.taken_at > done_until]
        skipped_old += len(snapshots) - len(pending)
        for snapshot in pending:
            outcome = apply_snapshot(ctx, table, bronze, bronze_version, snapshot, key)
            result.writes.extend(outcome["writes"])
            applied += 1
            rows += outcome["rows"]
            quarantined += outcome["quarantined"]
            print(f"  {table.silver_name}: applied snapshot {snapshot.snapshot_id} of {snapshot.taken_at:%Y-%m-%d %H:%M:%S}: "
                  f"{outcome['rows']:,} rows, {outcome['quarantined']} quarantined")
    result.counts.update({
        "snapshots applied": applied,
        "snapshots already applied or older": skipped_old,
        "snapshot rows in": rows,
        "rows quarantined": quarantined,
    })
    return result


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
