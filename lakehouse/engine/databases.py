"""Land a database source (``kind: database``) in bronze as snapshots: a live JDBC read (the default),
a plain pg_dump file or a folder of per-table CSV exports; the same content twice is a no-op.

Where the database is, its driver and its user come from the source's declaration; its password from
the environment variable it names (``password_from: env:NAME``) or the project's own PostgreSQL server
(``password_from: project-postgres``), never from a file of the project.

A live PostgreSQL table is first asked for its checksum (:mod:`lakehouse.engine.server_checksums`): one
the same as at its last snapshot is not read again.
"""

from __future__ import annotations

import os

from lakehouse.engine import server_checksums, snapshot_landing
from lakehouse.engine.job import JobContext, JobResult
from lakehouse.project.config import LakehouseConfig
from lakehouse.project.sources import DatabaseSource, SourceError, SourceTable, expand
from lakehouse.project.steps import Step
from lakehouse.storage.catalog import current_version
from lakehouse.storage.writer import write_result


def source_password(source: DatabaseSource, config: LakehouseConfig) -> str | None:
    """The password ``source`` declares the way to (``password_from``), or None when it needs none."""
    if source.password_from is None:
        return None
    if source.password_from == "project-postgres":
        from lakehouse.services import postgres

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


def raw_snapshots(
    ctx: JobContext, source: DatabaseSource, tables: list[SourceTable]
) -> list[snapshot_landing.RawSnapshot]:
    """``tables`` as read the way the step's options say (``method``: jdbc, dump or csv)."""
    options = ctx.options
    if options.method == "jdbc":
        jdbc = connection_options(source, ctx.config)
        return [snapshot_landing.read_jdbc(ctx.spark, source, table, jdbc) for table in tables]
    if options.method == "dump":
        if not options.dump_file:
            raise ValueError("--from dump needs --dump-file")
        return snapshot_landing.read_pg_dump(ctx.spark, options.dump_file, source, tables)
    if not options.csv_dir:
        raise ValueError("--from csv needs --csv-dir")
    folder = options.csv_dir.rstrip("/")
    return [
        snapshot_landing.read_csv_export(ctx.spark, f"{folder}/{table.name}.csv", source, table) for table in tables
    ]


def checksums(ctx: JobContext, source: DatabaseSource, tables: list[SourceTable]) -> dict[str, str | None]:
    """Each table's server checksum by bronze name (``None``: none to be had, the table is read)."""
    from lakehouse.sources.jdbc import qualified_name

    if ctx.options.method != "jdbc":
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
    wanted = ctx.options.tables
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
            outcome = snapshot_landing.land_snapshot(ctx.spark, ctx.config, raw, ctx.job_name, ctx.run_id)
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
