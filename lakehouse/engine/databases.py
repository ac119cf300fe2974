"""Land a database source (``kind: database``) in bronze as snapshots: a live JDBC read (the default),
a plain pg_dump file or a folder of per-table CSV exports; the same content twice is a no-op.

Where the database is, its driver and its user come from the source's declaration; its password from
the environment variable it names (``password_from: env:NAME``) or the project's own PostgreSQL server
(``password_from: project-postgres``), never from a file of the project.

A live PostgreSQL table is first asked for its checksum (:mod:`lakehouse.sources.server_checksums`): one
the same as at its last snapshot is not read again.
"""

from __future__ import annotations

import os

from lakehouse.catalog import current_version
from lakehouse.config import LakehouseConfig
from lakehouse.job import JobContext, JobResult
from lakehouse.project.sources import DatabaseSource, SourceError, SourceTable, expand
from lakehouse.project.steps import Step
from lakehouse.sources import server_checksums, snapshots
from lakehouse.writer import write_result

METHODS = ("jdbc", "dump", "csv")


def source_password(source: DatabaseSource, config: LakehouseConfig) -> str | None:
    """The password ``source`` declares the way to (``password_from``), or None when it needs none."""
    if source.password_from is None:
        return None
    if source.password_from == "project-postgres":
        from lakehouse import postgres

        return postgres.server_password(config)
    variable = source.password_from.removeprefix("env:")
    if variable not in os.environ:
        raise SourceError(f"{source.file}: the password comes from ${variable}, which is not set")
    return os.environ[variable]


def connection_options(source: DatabaseSource, config: LakehouseConfig) -> dict[str, str]:
    """Spark JDBC options (url, driver, user, password) for ``source`` in this environment."""
    from lakehouse.sources.jdbc import read_options

    return read_options(
        expand(source.url, config), expand(source.user, config), source_password(source, config), source.driver
    )


def raw_snapshots(ctx: JobContext, source: DatabaseSource, tables: list[SourceTable]) -> list[snapshots.RawSnapshot]:
    """``tables`` as read the way the step's options say (``method``: jdbc, dump or csv)."""
    options = ctx.options
    method = read_method(ctx)
    if method == "jdbc":
        jdbc = connection_options(source, ctx.config)
        return [snapshots.read_jdbc(ctx.spark, source, table, jdbc) for table in tables]
    if method == "dump":
        if not options.get("dump_file"):
            raise ValueError("--from dump needs --dump-file")
        return snapshots.read_pg_dump(ctx.spark, options["dump_file"], source, tables)
    if not options.get("csv_dir"):
        raise ValueError("--from csv needs --csv-dir")
    folder = options["csv_dir"].rstrip("/")
    return [snapshots.read_csv_export(ctx.spark, f"{folder}/{table.name}.csv", source, table) for table in tables]


def read_method(ctx: JobContext) -> str:
    """How the step reads its tables (``--from``: jdbc, the default, dump or csv)."""
    method = ctx.options.get("method") or "jdbc"
    if method not in METHODS:
        raise ValueError(f"--from must be one of {', '.join(METHODS)}, not {method!r}")
    return method


def checksums(ctx: JobContext, source: DatabaseSource, tables: list[SourceTable]) -> dict[str, str | None]:
    """Each table's server checksum by bronze name (``None``: none to be had, the table is read)."""
    from lakehouse.sources.jdbc import qualified_name

    if read_method(ctx) != "jdbc":
        return {table.bronze_name: None for table in tables}
    jdbc = connection_options(source, ctx.config)
    return {
        table.bronze_name: server_checksums.server_checksum(
            ctx.spark, jdbc, qualified_name(jdbc["url"], table.name, source.schema)
        )
        for table in tables
    }


def ingest_database(ctx: JobContext, step: Step) -> JobResult:
    """Land a snapshot of every (selected) table of the database source behind ``step``."""
    source: DatabaseSource = ctx.config.project.source(step.source)
    result = JobResult(ctx.job_name, ctx.run_id)
    landed = unchanged = not_read = quarantined = 0
    wanted = ctx.options.get("table")
    tables = [source.table(name) for name in wanted] if wanted else list(source.tables)
    checksum = checksums(ctx, source, tables)
    to_read = []
    for table in tables:
        if server_checksums.unchanged(
            ctx.spark, ctx.config, ctx.job_name, table.bronze_name, checksum[table.bronze_name]
        ):
            not_read += 1
            print(f"  {table.bronze_name}: unchanged on the server (same checksum as its last snapshot), not read")
        else:
            to_read.append(table)
    read = raw_snapshots(ctx, source, to_read)
    try:
        for raw in read:
            declaration = ctx.config.table(raw.table.bronze_name)
            path = ctx.config.table_path(declaration.name)
            before = current_version(ctx.spark, path)
            outcome = snapshots.land_snapshot(ctx.spark, ctx.config, raw, ctx.job_name, ctx.run_id)
            server_checksums.remember(
                ctx.config, ctx.job_name, declaration.name, checksum[declaration.name], outcome.version
            )
            result.writes.append(write_result(ctx.spark, declaration, path, before))
            landed += outcome.landed
            unchanged += not outcome.landed
            quarantined += outcome.quarantined
            state = f"snapshot {outcome.snapshot_id}" + ("" if outcome.landed else " unchanged: nothing landed")
            print(f"  {outcome.table}: {state}, {outcome.rows} rows, {outcome.quarantined} quarantined")
    finally:
        for raw in read:
            raw.release()
    result.counts.update(
        {
            "snapshots landed": landed,
            "snapshots unchanged": unchanged,
            "tables unchanged on the server (not read)": not_read,
            "rows quarantined": quarantined,
        }
    )
    return result
