from datetime import date

from helpers import assert_same_rows

from lakehouse.tables import get_table
from lakehouse.transforms.activity import user_activity_daily
from lakehouse.writer import check_schema

NOV_1 = (date(2026, 11, 1) - date(1970, 1, 1)).days


def test_counts_per_user_and_day(spark):
    events = spark.createDataFrame(
        [
            (1, "login", date(2026, 11, 1)),
            (1, "view", date(2026, 11, 1)),
            (1, "view", date(2026, 11, 1)),
            (1, "like", date(2026, 11, 2)),
            (2, "upload", date(2026, 11, 1)),
        ],
        "user_key bigint, event_type string, event_date date",
    )
    expected = spark.createDataFrame(
        [
            (1, date(2026, 11, 1), NOV_1, 3, 1, 2, 0, 0),
            (1, date(2026, 11, 2), NOV_1 + 1, 1, 0, 0, 1, 0),
            (2, date(2026, 11, 1), NOV_1, 1, 0, 0, 0, 1),
        ],
        "user_key bigint, event_date date, day_index int, n_events bigint, n_logins bigint, "
        "n_views bigint, n_likes bigint, n_uploads bigint",
    )
    result = user_activity_daily(events)
    assert_same_rows(result, expected)
    check_schema(result, get_table("gold.user_activity_daily"))
