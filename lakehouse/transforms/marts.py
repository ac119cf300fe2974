"""Silver -> gold analyst marts: daily active users, HTTP status per day, flight delays per month.

Every aggregate is exact and order-independent, so the same input rows always give the same output
rows: counts and distinct counts, exact ``percentile``, and means summed as decimals (a sum of
doubles depends on the order Spark happens to add them in).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.transforms.events import EVENT_TYPES

ON_TIME_MINUTES = 15


def daily_active_users(events: DataFrame) -> DataFrame:
    """Per ``event_date`` of ``silver.events``: distinct active users (``user_key``), events, events per
    active user, and the count of each event type (``n_logins``, ``n_views``, ...)."""
    per_type = [F.count(F.when(F.col("event_type") == kind, True)).alias(f"n_{kind}s") for kind in EVENT_TYPES]
    return (
        events.groupBy("event_date")
        .agg(F.countDistinct("user_key").alias("active_users"), F.count(F.lit(1)).alias("n_events"), *per_type)
        .withColumn("events_per_user", F.col("n_events") / F.when(F.col("active_users") > 0, F.col("active_users")))
        .select("event_date", "active_users", "n_events", "events_per_user", *[f"n_{kind}s" for kind in EVENT_TYPES])
    )


def http_status_daily(requests: DataFrame) -> DataFrame:
    """Per ``request_date`` and ``status`` of ``silver.access_requests``: requests, distinct clients,
    bytes sent, bot requests, and the status's share of that day's requests (with the day's total).

    ``response_bytes`` logged as ``-`` count as 0 bytes. The shares of one day sum to 1.
    """
    per_status = requests.groupBy("request_date", "status").agg(
        F.count(F.lit(1)).alias("requests"),
        F.countDistinct("client_key").alias("distinct_clients"),
        F.coalesce(F.sum("response_bytes"), F.lit(0)).cast("bigint").alias("response_bytes"),
        F.count(F.when(F.col("is_bot"), True)).alias("bot_requests"),
    )
    day = Window.partitionBy("request_date")
    return per_status.select(
        "request_date",
        "status",
        F.concat((F.col("status") / 100).cast("int").cast("string"), F.lit("xx")).alias("status_class"),
        (F.col("status") >= 400).alias("is_error"),
        "requests",
        "distinct_clients",
        "response_bytes",
        "bot_requests",
        F.sum("requests").over(day).alias("day_requests"),
        (F.col("requests") / F.sum("requests").over(day)).alias("share_of_day"),
    )


def _exact_mean(column: str) -> Column:
    return F.avg(F.col(column).cast("decimal(20,6)")).cast("double")


def flight_delays_monthly(flights: DataFrame, airlines: DataFrame) -> DataFrame:
    """Per carrier (with the airline's name) and ``year``/``month`` of ``silver.flights``: flights,
    cancelled flights (no ``dep_time``), mean departure and arrival delay, exact median and 90th
    percentile of arrival delay, and the share of flights with an arrival delay that arrived on time
    (``arr_delay <= 15``). Delays are in minutes; flights without an ``arr_delay`` (cancelled, diverted)
    are left out of the arrival statistics, which are null for a month with none.
    """
    # silver.airlines is keyed by carrier; min() only keeps a duplicate from multiplying the flights
    names = airlines.groupBy("carrier").agg(F.min("name").alias("airline_name"))
    arr_delay = F.col("arr_delay")
    arrived = F.count(arr_delay)
    return (
        flights.join(names, "carrier", "left")
        .groupBy("carrier", "airline_name", "year", "month")
        .agg(
            F.count(F.lit(1)).alias("flights"),
            F.count(F.when(F.col("dep_time").isNull(), True)).alias("cancelled_flights"),
            arrived.alias("flights_with_arr_delay"),
            _exact_mean("dep_delay").alias("mean_dep_delay"),
            _exact_mean("arr_delay").alias("mean_arr_delay"),
            F.percentile(arr_delay, F.lit(0.5)).alias("median_arr_delay"),
            F.percentile(arr_delay, F.lit(0.9)).alias("p90_arr_delay"),
            (F.count(F.when(arr_delay <= ON_TIME_MINUTES, True)) / F.when(arrived > 0, arrived)).alias("on_time_share"),
        )
        .select(
            "carrier",
            "airline_name",
            "year",
            "month",
            F.make_date("year", "month", F.lit(1)).alias("month_start"),
            "flights",
            "cancelled_flights",
            (F.col("cancelled_flights") / F.col("flights")).alias("cancelled_share"),
            "flights_with_arr_delay",
            "mean_dep_delay",
            "mean_arr_delay",
            "median_arr_delay",
            "p90_arr_delay",
            "on_time_share",
        )
    )
