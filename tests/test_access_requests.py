"""bronze.access_logs -> silver.access_requests: pseudonymised, typed, every line accounted for, exactly once."""

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from helpers import run_step
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.quarantine import REASON
from lakehouse.transforms.access_requests import DUPLICATE_REASON, mark_rejects, mask_personal, with_request_id
from lakehouse.transforms.privacy import KEY_VARIABLE, python_pseudonym_text

KEY = "test-pseudonym-key-0123456789"
GET_A = (
    '10.0.0.1 - alice [10/Oct/2026:13:55:36 +0000] "GET /a?email=alice@example.com HTTP/1.1" 200 2326 '
    '"https://Ref.Example.com/page?x=1" "Mozilla/5.0"'
)
GET_B = '10.0.0.1 - - [10/Oct/2026:13:56:00 +0000] "GET /b HTTP/1.1" 404 - "-" "Googlebot/2.1"'
LINES = [
    GET_A,
    GET_B,
    GET_B,  # the same request line twice in one file: two requests, not a duplicate
    '2001:db8::7 - - [11/Oct/2026:00:00:01 +0000] "POST /upload HTTP/2" 500 10 "-" "curl/8"',
    "just some text from 10.0.0.9",
    '10.0.0.2 - - [99/Foo/2026:13:55:36 +0000] "GET / HTTP/1.0" 200 5',
    '10.0.0.3 - - [10/Oct/2026:13:55:36 +0000] "GET /?user=alice HTTP/1.0" - 5',
    "",
    '10.0.0.4 - - [10/Oct/2026:13:55:36 +0000] "GET /x HTTP/1.0" 999 5 "-" "-"',
]
PRIVATE = ["10.0.0.1", "2001:db8::7", "10.0.0.9", "10.0.0.2", "10.0.0.3", "10.0.0.4", "alice"]
TABLES = ("bronze.access_logs", "silver.access_requests", "silver.access_requests_quarantine")


def land(config, name, lines):
    folder = Path(config.landing_path("access_logs"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")


def versions(spark, config):
    return {table: current_version(spark, config.table_path(table)) for table in TABLES}


def pseudonym(value, purpose):
    return python_pseudonym_text(value, KEY.encode(), purpose)


@pytest.fixture
def quiet_config(config, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    return replace(config, quality=replace(config.quality, data_docs=False))  # the gates run; no HTML site


@pytest.mark.e2e
def test_requests_are_pseudonymised_typed_and_every_line_accounted_for(spark, quiet_config):
    config = quiet_config
    land(config, "access.log", LINES)
    run_step(spark, config, "ingest_access_logs")
    result = run_step(spark, config, "silver.access_requests")

    bronze = read_table(spark, config, "bronze.access_logs")
    silver = read_table(spark, config, "silver.access_requests")
    quarantine = read_table(spark, config, "silver.access_requests_quarantine")
    assert bronze.count() == len(LINES) == silver.count() + quarantine.count()
    assert silver.count() == 4 == result.counts["rows accepted"] - 1  # the 999 is parsed, then quarantined
    reasons = sorted((r.reason, r.record) for r in quarantine.collect())
    assert [reason for reason, _ in reasons] == [
        "bad_timestamp",
        "empty_line",
        "expectation_failed:status_is_http",
        "missing_status",
        "not_access_log_format",
    ]
    assert dict(reasons)["not_access_log_format"] == "just some text from <masked>"
    assert (
        dict(reasons)["bad_timestamp"]
        == '<masked> <masked> <masked> [99/Foo/2026:13:55:36 +0000] "GET / HTTP/1.0" 200 5'
    )
    assert '"GET /?<masked> HTTP/1.0" - 5' in dict(reasons)["missing_status"]

    # no raw address or user name anywhere in silver (its quarantine included)
    for table in (silver, quarantine):
        text = "\n".join(str(row) for row in table.collect())
        assert not [value for value in PRIVATE if value in text], table
    rows = sorted(silver.collect(), key=lambda r: (r.request_time, r.request_id))
    a, b1, b2, upload = rows
    assert a.client_key == b1.client_key == b2.client_key == pseudonym("10.0.0.1", "ip")
    assert upload.client_key == pseudonym("2001:db8::7", "ip") != a.client_key
    assert (a.auth_user_key, b1.auth_user_key) == (pseudonym("alice", "http_user"), None)
    assert len({r.request_id for r in rows}) == 4
    assert (a.request_date, a.method, a.path, a.has_query_string, a.referrer_host) == (
        date(2026, 10, 10),
        "GET",
        "/a",
        True,
        "ref.example.com",
    )
    assert (a.status_class, a.is_error, a.response_bytes, a.is_bot) == ("2xx", False, 2326, False)
    assert (b1.status_class, b1.is_error, b1.response_bytes, b1.referrer_host, b1.is_bot) == (
        "4xx",
        True,
        None,
        None,
        True,
    )
    assert (upload.request_time, upload.request_date, upload.status_class) == (
        datetime(2026, 10, 11, 0, 0, 1),
        date(2026, 10, 11),
        "5xx",
    )

    # a re-run finds nothing new and commits nothing
    before = versions(spark, config)
    run_step(spark, config, "silver.access_requests")
    assert versions(spark, config) == before


def test_a_file_landed_twice_gives_duplicates_not_new_requests(spark):
    def landing(run_id, ingest_hour):
        return [
            (line, None, 200, "file:/logs/access.log", datetime(2026, 11, 1, ingest_hour), run_id)
            for line in (GET_A, GET_B, GET_B)
        ]

    bronze = spark.createDataFrame(
        landing("run-1", 1) + landing("run-2", 2),
        "value string, parse_error string, status int, source_file string, ingest_time timestamp, run_id string",
    )
    marked = mark_rejects(with_request_id(bronze, KEY.encode())).collect()
    first = [r for r in marked if r.run_id == "run-1"]
    second = [r for r in marked if r.run_id == "run-2"]
    assert [r[REASON] for r in first] == [None] * 3
    assert [r[REASON] for r in second] == [DUPLICATE_REASON] * 3
    assert {r.request_id for r in first} == {r.request_id for r in second} and len({r.request_id for r in first}) == 3


def test_masking_hides_addresses_and_queries_but_keeps_times(spark):
    line = 'from 2001:db8::7, ::1 and 192.168.0.10 at 13:55:36: "GET /p?token=abc HTTP/1.1"'
    masked = spark.createDataFrame([(line,)], "value string").select(mask_personal(F.col("value"))).first()[0]
    assert masked == 'from <masked>, <masked> and <masked> at 13:55:36: "GET /p?<masked> HTTP/1.1"'
