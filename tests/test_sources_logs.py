"""Access logs -> bronze.access_logs: the real Logstalgia log, rotated and gzip files, rescued lines."""

import gzip
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from helpers import run_step
from lakehouse.install.datasets import logstalgia_access_log
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.transforms.access_logs import parse_access_log_lines

LOGSTALGIA_LINES = 3260


def ingest(spark, config):
    return run_step(spark, config, "ingest_access_logs")


def test_parser_types_fields_and_rescues_what_does_not_parse(spark):
    lines = [
        '10.0.0.1 - alice [10/Oct/2000:13:55:36 -0700] "GET /a b.gif HTTP/1.0" 200 2326 "http://x/" "curl/8"',
        '::1 - - [10/Oct/2000:13:55:36 +0000] "GET /q?x=\\"y\\" HTTP/1.1" 404 - "-" "agent \\"quoted\\""',
        'h - - [10/Oct/2000:13:55:36 +0000] "POST /upload HTTP/2" 201 10',  # common format
        "",
        "just some text",
        'h - - [99/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 5',
        'h - - [10/Oct/2000:13:55:36 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"',  # TLS bytes sent to port 80
    ]
    rows = parse_access_log_lines(spark.createDataFrame([(line,) for line in lines], "value string")).collect()
    assert len(rows) == len(lines)
    first, second, common, empty, text, bad_time, tls = rows
    assert (first.client_host, first.auth_user, first.status, first.response_bytes, first.user_agent) == (
        "10.0.0.1",
        "alice",
        200,
        2326,
        "curl/8",
    )
    # a request line with a space in the path is kept raw rather than split wrongly
    assert (first.method, first.path, first.request_line) == (None, None, "GET /a b.gif HTTP/1.0")
    assert str(first.request_time) == "2000-10-10 20:55:36"  # -0700 taken into account, stored as UTC
    assert (second.status, second.response_bytes, second.path) == (404, None, '/q?x=\\"y\\"')
    assert second.user_agent == 'agent \\"quoted\\"'
    assert (common.method, common.protocol, common.referrer, common.parse_error) == ("POST", "HTTP/2", None, None)
    assert [empty.parse_error, text.parse_error, bad_time.parse_error] == [
        "empty_line",
        "not_access_log_format",
        "bad_timestamp",
    ]
    assert text.client_host is None and text.value == "just some text"
    assert tls.parse_error is None and tls.method is None and tls.status == 400


@pytest.mark.e2e
def test_real_access_log_lands_every_line_then_only_new_files(spark, config):
    landing = config.landing_path("access_logs")
    target = Path(landing)
    target.mkdir(parents=True)
    shutil.copy(logstalgia_access_log(), target / "access.log")
    first = ingest(spark, config)
    bronze = read_table(spark, config, "bronze.access_logs")
    assert bronze.count() == LOGSTALGIA_LINES == first.counts["lines read"]
    parsed = bronze.where(F.col("parse_error").isNull())
    rescued = bronze.where(F.col("parse_error").isNotNull())
    assert parsed.count() + rescued.count() == LOGSTALGIA_LINES
    assert rescued.where(F.col("value").isNull()).count() == 0  # rescued lines keep their raw text
    assert parsed.count() == LOGSTALGIA_LINES  # the real sample is all well-formed combined + 1 field
    assert parsed.where(F.col("status").isNull() | F.col("request_time").isNull()).count() == 0
    assert parsed.select(F.countDistinct("client_host")).first()[0] == 220
    assert bronze.where(F.col("ingest_time").isNull() | F.col("run_id").isNull()).count() == 0

    version = current_version(spark, config.table_path("bronze.access_logs"))
    ingest(spark, config)
    assert current_version(spark, config.table_path("bronze.access_logs")) == version  # nothing new, no commit

    # rotation: yesterday's file gzip-compressed, with two lines a broken server wrote
    rotated = target / "access.log.1.gz"
    sample = logstalgia_access_log().read_text().splitlines()[:10]
    rotated.write_bytes(gzip.compress("\n".join([*sample, "GET / HTTP/1.1", "\x00\x00garbage"]).encode() + b"\n"))
    ingest(spark, config)
    bronze = read_table(spark, config, "bronze.access_logs")
    assert bronze.count() == LOGSTALGIA_LINES + 12
    new_rows = bronze.where(F.col("source_file").endswith(".gz"))
    assert new_rows.count() == 12
    assert sorted(r.parse_error for r in new_rows.where("parse_error IS NOT NULL").collect()) == [
        "not_access_log_format",
        "not_access_log_format",
    ]
