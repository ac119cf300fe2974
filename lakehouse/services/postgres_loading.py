"""Put source data into the project's PostgreSQL and take it out again as dumps and CSV exports.

Tables are created from the same column files bronze is typed with (``schemas/bronze/<source>/<table>.yaml``),
so the source database and its bronze snapshots cannot disagree on a column.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from pyspark.sql import types as T

from lakehouse.project.schemas import load_schema
from lakehouse.project.sources import DatabaseSource as SourceDatabase
from lakehouse.project.sources import SourceTable
from lakehouse.services import postgres
from lakehouse.services.postgres import PostgresServer

_PG_TYPES = {
    T.StringType: "text",
    T.IntegerType: "integer",
    T.LongType: "bigint",
    T.ShortType: "smallint",
    T.DoubleType: "double precision",
    T.FloatType: "real",
    T.BooleanType: "boolean",
    T.DateType: "date",
    T.TimestampType: "timestamptz",
    T.BinaryType: "bytea",
}


def create_table_sql(database: SourceDatabase, table: SourceTable) -> str:
    """``CREATE TABLE`` for a source table from its column file, with its declared primary key."""
    columns = []
    for field in load_schema(table.columns_file).fields:
        pg_type = _PG_TYPES.get(type(field.dataType))
        if pg_type is None:
            raise ValueError(f"{table.columns_file}: no PostgreSQL type for {field.dataType.simpleString()}")
        columns.append(f'"{field.name}" {pg_type}')
    key = ", ".join(f'"{k}"' for k in table.keys)
    return f'CREATE TABLE {database.schema}."{table.name}" ({", ".join(columns)}, PRIMARY KEY ({key}))'


def create_tables(server: PostgresServer, database: SourceDatabase, recreate: bool = True) -> None:
    """Create the database and every table it declares (dropping what was there when ``recreate``)."""
    postgres.create_database(server, database.name, drop_existing=recreate)
    ddl = ";\n".join(create_table_sql(database, table) for table in database.tables)
    postgres.psql(server, database.name, ddl)


def copy_csv_in(server: PostgresServer, database: SourceDatabase, table: SourceTable, csv_path: Path) -> int:
    """Load a CSV file with a header row into a table (``csv_null_value`` read as NULL); return its row count."""
    columns = ", ".join(f'"{f.name}"' for f in load_schema(table.columns_file).fields)
    null = database.csv_null_value.replace("'", "''")
    postgres.psql(
        server,
        database.name,
        f"\\copy {database.schema}.\"{table.name}\" ({columns}) FROM '{csv_path}' "
        f"WITH (FORMAT csv, HEADER true, NULL '{null}')",
    )
    return row_count(server, database, table)


def copy_rows_in(server: PostgresServer, database: SourceDatabase, table: SourceTable, rows: list[tuple]) -> int:
    """Load Python rows (in the column file's order; ``None`` = NULL, datetimes in UTC) into a table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(["\\N" if v is None else (v.isoformat() if isinstance(v, datetime) else v) for v in row])
    columns = ", ".join(f'"{f.name}"' for f in load_schema(table.columns_file).fields)
    postgres.psql(
        server,
        database.name,
        f"\\copy {database.schema}.\"{table.name}\" ({columns}) FROM pstdin WITH (FORMAT csv, NULL '\\N')",
        stdin=buffer.getvalue(),
    )
    return row_count(server, database, table)


def copy_csv_out(server: PostgresServer, database: SourceDatabase, table: SourceTable, csv_path: Path) -> Path:
    """Export a table as CSV with a header row (``csv_null_value`` for NULL): a per-table CSV export."""
    null = database.csv_null_value.replace("'", "''")
    postgres.psql(
        server,
        database.name,
        f"\\copy {database.schema}.\"{table.name}\" TO '{csv_path}' WITH (FORMAT csv, HEADER true, NULL '{null}')",
    )
    return csv_path


def row_count(server: PostgresServer, database: SourceDatabase, table: SourceTable) -> int:
    return int(postgres.psql(server, database.name, f'SELECT count(*) FROM {database.schema}."{table.name}"').strip())


LOADED_MARK = "loaded by lakehouse"


def _mark(content: str) -> str:
    return f"{LOADED_MARK}: {content}" if content else LOADED_MARK


def mark_loaded(server: PostgresServer, database: SourceDatabase, content: str = "") -> None:
    """Record that every table of ``database`` was loaded with ``content`` (e.g. the scenario's seed and
    scale); a load that died half-way leaves no mark."""
    mark = _mark(content).replace("'", "''")
    postgres.psql(server, database.name, f"COMMENT ON DATABASE \"{database.name}\" IS '{mark}'")


def is_loaded(server: PostgresServer, name: str, content: str = "") -> bool:
    """True when database ``name`` exists and a load of ``content`` into it finished."""
    comment = postgres.psql(
        server,
        "postgres",
        f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'",
    ).strip()
    return comment == _mark(content)
