"""silver.events -> gold.user_activity_daily: what each user did on each UTC day."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def user_activity_daily(events: DataFrame) -> DataFrame:
    """One row per (user_key, event_date) with counts of all events and of each event type."""

    def count_of(event_type: str):
        return F.count(F.when(F.col("event_type") == event_type, True)).alias(f"n_{event_type}s")

    return (
        events.groupBy("user_key", "event_date")
        .agg(
            F.count(F.lit(1)).alias("n_events"),
            count_of("login"),
            count_of("view"),
            count_of("like"),
            count_of("upload"),
        )
        .withColumn("day_index", F.datediff("event_date", F.lit("1970-01-01")).cast("int"))
        .select("user_key", "event_date", "day_index", "n_events", "n_logins", "n_views", "n_likes", "n_uploads")
    )
