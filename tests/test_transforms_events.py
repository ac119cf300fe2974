"""parse_app_events / mark_duplicates on hand-written lines."""

import json
from datetime import datetime

import pytest

from helpers import assert_same_rows, demo_table
from lakehouse.storage import quarantine
from lakehouse.storage.writer import check_schema
from lakehouse.transforms.events import events_with_outcome, mark_duplicates, parse_app_events
from lakehouse.transforms.privacy import python_pseudonym_id

INGESTED = datetime(2026, 11, 2, 0, 0, 0)


def event(**overrides):
    base = {"event_id": "e1", "user_id": 7, "event_type": "view", "photo_id": 3, "ts": "2026-11-01T10:00:00.250Z"}
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def bronze_rows(spark, lines, source="file:/landing/a.jsonl", ingest_time=INGESTED):
    return spark.createDataFrame(
        [(line, source, ingest_time) for line in lines], "value string, source_file string, ingest_time timestamp"
    )


@pytest.mark.parametrize(
    "line, reason",
    [
        (event(), None),
        (event(event_type="login", photo_id=None), None),
        ('{"event_id": "e1", "user_id": 7', "invalid_json"),
        ("", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        (event(event_id=...), "missing_field:event_id"),
        (event(user_id=...), "missing_field:user_id"),
        (event(user_id="user-7"), "bad_type:user_id"),
        (event(event_type="teleport"), "unknown_event_type"),
        (event(ts="yesterday at noon"), "bad_timestamp"),
        (event(ts=...), "missing_field:ts"),
        (event(photo_id=None), "missing_field:photo_id"),
        (event(photo_id="abc"), "bad_type:photo_id"),
    ],
)
def test_each_kind_of_line_gets_its_reason(spark, line, reason):
    row = parse_app_events(bronze_rows(spark, [line])).first()
    assert row[quarantine.REASON] == reason


KEY = b"key of the event tests, long enough"


def test_good_line_is_typed(spark):
    row = parse_app_events(bronze_rows(spark, [event(user_id="42")])).first()
    assert (row.event_id, row.user_id, row.event_type, row.photo_id) == ("e1", 42, "view", 3)
    assert row.event_time == datetime(2026, 11, 1, 10, 0, 0, 250000)
    assert str(row.event_date) == "2026-11-01"


def test_every_line_comes_out_once_and_accepted_rows_fit_the_declared_schema(spark):
    lines = [event(event_id=f"e{i}") for i in range(5)] + ["garbage", "", event(event_id="bad", user_id="user-70021")]
    marked = mark_duplicates(parse_app_events(bronze_rows(spark, lines)))
    outcome = events_with_outcome(marked, KEY)
    accepted = quarantine.accepted(outcome)
    rejected = quarantine.quarantine_rows(outcome, rule="silver.events", source=None, run_id="r1")
    assert accepted.count() == 5 and rejected.count() == 3
    assert {r.user_key for r in accepted.collect()} == {python_pseudonym_id(7, KEY, "user")}  # never the raw id
    check_schema(accepted, demo_table("silver.events"))
    check_schema(rejected, demo_table("silver.events_quarantine"))
    records = {r.reason: r.record for r in rejected.collect()}
    assert records["invalid_json"] in ("garbage", "")
    # the quarantine keeps the line, with the user id pseudonymised: the raw id never leaves bronze
    assert "70021" not in records["bad_type:user_id"] and '"user_key": ' in records["bad_type:user_id"]
    assert str(python_pseudonym_id("user-70021", KEY, "user")) in records["bad_type:user_id"]
    assert {r.rule for r in rejected.collect()} == {"parse_app_events"}
    assert {r.source for r in rejected.collect()} == {"file:/landing/a.jsonl"}


def test_first_delivery_wins_and_repeats_are_duplicates(spark):
    early = bronze_rows(spark, [event(event_id="e1", user_id=1)], source="file:/a.jsonl")
    late = bronze_rows(spark, [event(event_id="e1", user_id=1), event(event_id="e2")], source="file:/b.jsonl")
    marked = mark_duplicates(parse_app_events(early.unionByName(late)))
    rows = {(r.source_file, r.event_id): r[quarantine.REASON] for r in marked.collect()}
    assert rows == {
        ("file:/a.jsonl", "e1"): None,
        ("file:/b.jsonl", "e1"): "duplicate_event_id",
        ("file:/b.jsonl", "e2"): None,
    }


def test_ids_already_published_are_duplicates_but_bad_lines_keep_their_reason(spark):
    batch = parse_app_events(bronze_rows(spark, [event(event_id="old"), event(event_id="new"), "nope"]))
    published = spark.createDataFrame([("old",)], "event_id string")
    marked = mark_duplicates(batch, published)
    expected = spark.createDataFrame(
        [("old", "duplicate_event_id"), ("new", None), (None, "invalid_json")],
        f"event_id string, {quarantine.REASON} string",
    )
    assert_same_rows(marked.select("event_id", quarantine.REASON), expected)
