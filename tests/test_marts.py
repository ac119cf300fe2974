"""The analyst marts, SQL definitions of the demo project (tables/gold/*.sql), on hand-made rows with
numbers worked out by hand; and the steps that publish them, on tiny input tables."""

import json
from dataclasses import replace
from datetime import date, datetime

import pytest
from delta.tables import DeltaTable
from pyspark.sql import types as T

from helpers import DEMO_PROJECT, demo_table, run_step, sorted_rows
from lakehouse.engine.definitions import compute_definition
from lakehouse.project import load_project
from lakehouse.project.schemas import load_schema
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.writer import check_schema

DEMO = load_project(DEMO_PROJECT)
MARTS = ("gold.daily_active_users", "gold.http_status_daily", "gold.flight_delays_monthly", "gold.user_activity_daily")


def mart(spark, name, **frames):
    """The rows of the mart ``name`` (its SQL file) from hand-made input frames (``silver_events=...``)."""
    return compute_definition(spark, DEMO, name, {key.replace("_", ".", 1): df for key, df in frames.items()})


def daily_active_users(events):
    return mart(events.sparkSession, "gold.daily_active_users", silver_events=events)


def http_status_daily(requests):
    return mart(requests.sparkSession, "gold.http_status_daily", silver_access_requests=requests)


def flight_delays_monthly(flights, airlines):
    return mart(flights.sparkSession, "gold.flight_delays_monthly", silver_flights=flights, silver_airlines=airlines)


NOV_1, NOV_2 = date(2026, 11, 1), date(2026, 11, 2)
SNAPSHOT = [T.StructField("_snapshot_id", T.StringType()), T.StructField("_snapshot_time", T.TimestampType())]
FLIGHTS_SCHEMA = T.StructType(
    [*load_schema(DEMO_PROJECT / "schemas/bronze/nycflights13/flights.yaml").fields, *SNAPSHOT]
)
AIRLINES_SCHEMA = T.StructType(
    [*load_schema(DEMO_PROJECT / "schemas/bronze/nycflights13/airlines.yaml").fields, *SNAPSHOT]
)


EVENTS = [  # (user_key, event_type, event_date)
    (10, "login", NOV_1),
    (10, "view", NOV_1),
    (10, "view", NOV_1),
    (20, "upload", NOV_1),
    (30, "like", NOV_1),
    (10, "like", NOV_2),
    (10, "like", NOV_2),
]
REQUESTS = [  # (client_key, status, response_bytes, is_bot, request_date)
    ("c1", 200, 100, False, NOV_1),
    ("c1", 200, 50, False, NOV_1),
    ("c2", 200, None, False, NOV_1),
    ("c2", 404, 10, False, NOV_1),
    ("c3", 500, 0, True, NOV_2),
]


def events(spark, rows=EVENTS):
    return spark.createDataFrame(
        [(f"e{i}", user, kind, when) for i, (user, kind, when) in enumerate(rows)],
        "event_id string, user_key bigint, event_type string, event_date date",
    )


def requests(spark, rows=REQUESTS):
    return spark.createDataFrame(
        [(f"r{i}", *row) for i, row in enumerate(rows)],
        "request_id string, client_key string, status int, response_bytes bigint, is_bot boolean, request_date date",
    )


def flight(carrier, month, dep_time, dep_delay, arr_delay):
    values = {
        "year": 2013,
        "month": month,
        "day": 1,
        "carrier": carrier,
        "dep_time": dep_time,
        "dep_delay": dep_delay,
        "arr_delay": arr_delay,
        "_snapshot_id": "s1",
        "_snapshot_time": datetime(2026, 11, 1),
    }
    return tuple(values.get(name) for name in FLIGHTS_SCHEMA.names)


FLIGHTS = [
    flight("AA", 1, 500, 2.0, 15.0),  # on time: exactly 15 minutes late counts
    flight("AA", 1, 600, -3.0, 20.0),
    flight("AA", 1, None, None, None),  # cancelled
    flight("AA", 1, 700, 30.0, 40.0),
    flight("AA", 1, 800, 1.0, -5.0),
    flight("AA", 1, 900, 5.0, None),  # diverted: departed, no arrival delay
    flight("AA", 2, 1000, 90.0, 100.0),
    flight("ZZ", 1, None, None, None),  # a carrier silver.airlines does not know, all cancelled
]


def flights(spark, rows=FLIGHTS):
    return spark.createDataFrame(rows, FLIGHTS_SCHEMA)


def airlines(spark):
    when = datetime(2026, 11, 1)
    return spark.createDataFrame(
        [("AA", "American Airlines Inc.", "s1", when), ("UA", "United Air Lines Inc.", "s1", when)], AIRLINES_SCHEMA
    )


def test_daily_active_users_counts_each_user_once_per_day(spark):
    result = daily_active_users(events(spark))
    check_schema(result, demo_table("gold.daily_active_users"))
    assert sorted_rows(result) == [
        # day, active users, events, events per user, logins, views, likes, uploads
        (NOV_1, 3, 5, 5 / 3, 1, 2, 1, 1),
        (NOV_2, 1, 2, 2.0, 0, 0, 2, 0),  # one user twice is one active user
    ]


def test_http_status_daily_counts_requests_clients_bytes_and_shares(spark):
    result = http_status_daily(requests(spark))
    check_schema(result, demo_table("gold.http_status_daily"))
    assert sorted_rows(result) == [
        # day, status, class, error, requests, clients, bytes ('-' = 0), bots, day's requests, share
        (NOV_1, 200, "2xx", False, 3, 2, 150, 0, 4, 0.75),
        (NOV_1, 404, "4xx", True, 1, 1, 10, 0, 4, 0.25),
        (NOV_2, 500, "5xx", True, 1, 1, 0, 1, 1, 1.0),
    ]
    shares = {}
    for row in result.collect():
        shares[row.request_date] = shares.get(row.request_date, 0) + row.share_of_day
    assert shares == {NOV_1: 1.0, NOV_2: 1.0}


def test_flight_delays_monthly_by_hand(spark):
    result = flight_delays_monthly(flights(spark), airlines(spark))
    check_schema(result, demo_table("gold.flight_delays_monthly"))
    rows = {(r.carrier, r.month): r.asDict() for r in result.collect()}
    assert set(rows) == {("AA", 1), ("AA", 2), ("ZZ", 1)}
    # AA, January: arrival delays -5, 15, 20, 40 (the cancelled and the diverted flight have none)
    assert rows[("AA", 1)] == {
        "carrier": "AA",
        "airline_name": "American Airlines Inc.",
        "year": 2013,
        "month": 1,
        "month_start": date(2013, 1, 1),
        "flights": 6,
        "cancelled_flights": 1,
        "cancelled_share": 1 / 6,
        "flights_with_arr_delay": 4,
        "mean_dep_delay": 7.0,  # (2 - 3 + 30 + 1 + 5) / 5
        "mean_arr_delay": 17.5,  # (15 + 20 + 40 - 5) / 4
        "median_arr_delay": 17.5,  # halfway between 15 and 20
        "p90_arr_delay": 34.0,  # rank 0.9 * 3 = 2.7: 20 + 0.7 * (40 - 20)
        "on_time_share": 0.5,  # -5 and 15 of 4
    }
    february = rows[("AA", 2)]
    assert (february["flights"], february["median_arr_delay"], february["p90_arr_delay"]) == (1, 100.0, 100.0)
    assert (february["on_time_share"], february["cancelled_flights"]) == (0.0, 0)
    unknown = rows[("ZZ", 1)]
    assert unknown["airline_name"] is None  # kept without a name, not dropped by the join
    assert (unknown["flights"], unknown["cancelled_flights"], unknown["cancelled_share"]) == (1, 1, 1.0)
    assert [unknown[c] for c in ("mean_arr_delay", "median_arr_delay", "p90_arr_delay", "on_time_share")] == [None] * 4


def test_marts_are_deterministic(spark):
    fractional = FLIGHTS + [flight("AA", 1, 1100, 0.1, 0.7), flight("AA", 1, 1200, 0.2, 1.3)]
    cases = [
        (daily_active_users, lambda rows: [events(spark, rows)], EVENTS),
        (http_status_daily, lambda rows: [requests(spark, rows)], REQUESTS),
        (flight_delays_monthly, lambda rows: [flights(spark, rows), airlines(spark)], fractional),
    ]
    for transform, inputs, rows in cases:
        first = sorted_rows(transform(*inputs(rows)))
        assert sorted_rows(transform(*inputs(rows))) == first
        # another order and partitioning of the same rows: the same result, to the last bit
        shuffled = [df.repartition(3) for df in inputs(list(reversed(rows)))]
        assert sorted_rows(transform(*shuffled)) == first, transform.__name__


def test_user_activity_counts_per_user_and_day(spark):
    day = (NOV_1 - date(1970, 1, 1)).days
    result = mart(spark, "gold.user_activity_daily", silver_events=events(spark))
    check_schema(result, demo_table("gold.user_activity_daily"))
    assert sorted_rows(result) == [
        # user, day, day index, events, logins, views, likes, uploads
        (10, NOV_1, day, 3, 1, 2, 0, 0),
        (10, NOV_2, day + 1, 2, 0, 0, 2, 0),
        (20, NOV_1, day, 1, 0, 0, 0, 1),
        (30, NOV_1, day, 1, 0, 0, 1, 0),
    ]


@pytest.mark.e2e
def test_steps_publish_each_mart_pinned_to_its_input_versions(spark, config):
    config = replace(config, quality=replace(config.quality, data_docs=False))  # the gates run; no HTML site
    inputs = {
        "silver.events": events(spark),
        "silver.access_requests": requests(spark),
        "silver.flights": flights(spark),
        "silver.airlines": airlines(spark),
    }
    for name, df in inputs.items():  # stand-ins with the columns the marts read
        df.write.format("delta").save(config.table_path(name))
    inputs["silver.events"].write.format("delta").mode("append").save(config.table_path("silver.events"))

    for table in MARTS[:3]:
        result = run_step(spark, config, table)
        assert result.writes[0].committed and result.counts["rows published"] > 0
        path = config.table_path(table)
        commit = DeltaTable.forPath(spark, path).history(1).first()
        assert json.loads(commit.userMetadata)["inputs"] == {
            name: current_version(spark, config.table_path(name)) for name in DEMO.table(table).upstreams
        }
        assert json.loads(commit.userMetadata)["job"] == table
    dau = sorted_rows(read_table(spark, config, "gold.daily_active_users"))
    assert [row[:3] for row in dau] == [(NOV_1, 3, 10), (NOV_2, 1, 4)]  # silver.events v1 holds every row twice
    assert read_table(spark, config, "gold.http_status_daily").count() == 3
    assert read_table(spark, config, "gold.flight_delays_monthly").count() == 3
