"""The file formats of file sources: declarations, parsing on made-up, real and hostile input.

Real input: logs written by others, shipped in Debian's ``fail2ban`` and ``logstalgia`` packages and
fetched at run time (:mod:`lakehouse.install.sample_logs`). Hostile input: ``tests/corpus`` (its README says
what each file holds), run through every format.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import corpus
import pytest
from pyspark.sql import functions as F

from lakehouse.install.datasets import logstalgia_access_log
from lakehouse.install.sample_logs import annotation_lines, fail2ban_sample
from lakehouse.sources.formats import (
    FORMATS,
    FileFormat,
    FormatError,
    bronze_schema,
    infer_columns,
    parse_lines,
    read_files,
)
from lakehouse.transforms.access_logs import PARSED_COLUMNS, parse_access_log_lines

MIB = 1 << 20
UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A collected timestamp (naive, in the session's time zone: UTC here) as an aware UTC datetime."""
    return None if value is None else value.replace(tzinfo=UTC)


def parse_folder(spark, folder: Path, fmt: FileFormat) -> list:
    files = spark.read.format("binaryFile").load(str(folder))
    rows = parse_lines(read_files(spark, files, fmt), fmt).collect()
    return sorted(rows, key=lambda r: (r.source_file, r.line_number is None, r.line_number or 0))


def parse(
    spark,
    tmp_path: Path,
    fmt: FileFormat,
    content: str | bytes | list[str],
    name: str = "input.log",
    modified: datetime | None = None,
) -> list:
    """The parsed rows of one file holding ``content`` (lines joined by \\n)."""
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    if isinstance(content, list):
        content = "\n".join(content) + "\n"
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    if modified is not None:
        os.utime(path, (modified.timestamp(), modified.timestamp()))
    return parse_folder(spark, folder, fmt)


# --- declarations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        (FileFormat("parquet"), "format 'parquet' is unknown: use one of text, jsonl"),
        (
            FileFormat("text", options={"delimiter": ","}),
            "option 'delimiter' does not apply to format text: it takes no options",
        ),
        (
            FileFormat("csv", options={"sep": ";"}),
            "option 'sep' does not apply to format csv: its options are delimiter",
        ),
        (FileFormat("csv", options={"header": False}), "a csv source without a header needs `columns`"),
        (
            FileFormat("csv", columns=(("a", "int"),), options={"delimiter": ";;"}),
            "option delimiter ';;': use one character",
        ),
        (
            FileFormat("csv", columns=(("a", "int"),), options={"header": "yes"}),
            "option header 'yes': use true or false",
        ),
        (FileFormat("jsonl", columns=(("a", "varchar"),)), "column type 'varchar' is not supported"),
        (FileFormat("jsonl", columns=(("a", "decimal(40,2)"),)), "column type 'decimal(40,2)' is not supported"),
        (
            FileFormat("jsonl", columns=(("value", "string"),)),
            "column 'value' is a column every bronze table has: rename it",
        ),
        (FileFormat("jsonl", columns=(("a b", "string"),)), "column 'a b' is not a column name"),
        (FileFormat("jsonl", columns=(("__x", "string"),)), "column '__x' is not a column name"),
        (FileFormat("jsonl", columns=(("a", "int"), ("A", "string"))), "column 'A' is declared twice"),
        (FileFormat("access_log", columns=(("a", "int"),)), "columns: format access_log has fixed columns"),
        (
            FileFormat("syslog", options={"timezone": "Mars/Olympus"}),
            "option timezone 'Mars/Olympus' is not a time zone",
        ),
        (FileFormat("syslog", options={"timezone": "+25:00"}), "option timezone '+25:00' is not a time zone"),
        (FileFormat("regex"), "option pattern is missing"),
        (FileFormat("regex", options={"pattern": r"(\S+) (.*)"}), "option pattern has no named group"),
        (FileFormat("regex", options={"pattern": r"(?P<a>x)(?P<a2>y)(?P<A>z)"}), "names group 'A' twice"),
        (
            FileFormat("regex", options={"pattern": r"(?P<value>.*)"}),
            "group 'value' is a column every bronze table has",
        ),
        (
            FileFormat("regex", options={"pattern": r"(?P<a>.*)"}, columns=(("b", "int"),)),
            "column 'b' is not a named group",
        ),
        (FileFormat("text", max_line_bytes=0), "max_line_bytes 0: use a whole number from 1 to"),
    ],
)
def test_a_declaration_that_cannot_work_names_the_option_and_the_fix(fmt, message):
    with pytest.raises(FormatError, match=None) as error:
        fmt.validate()
    assert message in str(error.value)


def test_regex_patterns_are_checked_the_way_java_will_run_them(spark):
    with pytest.raises(FormatError, match="does not compile as a Java regex"):
        FileFormat("regex", options={"pattern": r"(?P<a>x)?(?(1)y|z)"}).validate()  # Python-only conditional
    with pytest.raises(FormatError, match="does not compile as a Java regex"):
        FileFormat("regex", options={"pattern": r"(?P<a>x"}).validate()
    # Java-only syntax (a Unicode class) that Python's re refuses is fine: Java is what runs it
    java_only = FileFormat("regex", options={"pattern": r"(?<word>\p{L}+) (?P<rest>.*)"})
    java_only.validate()
    assert [f.name for f in java_only.parsed_schema()] == ["word", "rest", "_rescued_data"]


@pytest.mark.parametrize("name", FORMATS)
def test_bronze_schema_puts_the_parsed_columns_between_value_and_parse_error(name):
    fmt = {
        "regex": FileFormat("regex", options={"pattern": r"(?P<a>\S+) (?P<b>.*)"}),
        "csv": FileFormat("csv", columns=(("id", "bigint"),)),
    }.get(name, FileFormat(name))
    schema = bronze_schema(fmt)
    parsed = [f.name for f in fmt.parsed_schema()]
    assert [f.name for f in schema] == [
        "value",
        *parsed,
        "parse_error",
        "line_number",
        "source_file",
        "source_modified_at",
        "ingest_time",
        "run_id",
    ]
    assert all(f.metadata.get("comment") for f in schema)
    assert {f.name for f in schema if not f.nullable} == {"source_file", "ingest_time", "run_id"}
    expected = {
        "text": [],
        "jsonl": ["_rescued_data"],
        "csv": ["id", "_rescued_data"],
        "regex": ["a", "b", "_rescued_data"],
    }
    if name in expected:
        assert parsed == expected[name]


# --- access_log -------------------------------------------------------------------------------------

COMBINED = '10.0.0.1 - alice [10/Oct/2000:13:55:36 -0700] "GET /a b.gif HTTP/1.0" 200 2326 "http://x/" "curl/8"'


def test_access_log_lines_parse_or_are_rescued_and_nothing_crashes_the_parser(spark, tmp_path):
    long_url = "/" + "u" * 6000
    huge_url = "/" + "h" * MIB
    escaped_url = "/" + '\\"' * (MIB // 2)  # a megabyte of escapes: the quoted-field loop must not recurse
    lines = [
        COMBINED,
        '::1 - - [10/Oct/2000:13:55:36 +0000] "GET /q?x=\\"y\\" HTTP/1.1" 404 - "-" "agent \\"quoted\\""',
        'h - - [10/Oct/2000:13:55:36 +0000] "POST /upload HTTP/2" 201 10',  # common format
        "",
        "just some text",
        'h - - [99/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 5',
        'h - - [10/Oct/2000:13:55:36 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"',  # TLS bytes sent to port 80
        'h - - [10/Oct/2000:13:55:36 +0000] "GET /" 200 5',  # HTTP/0.9: threw under ANSI mode
        f'h - - [10/Oct/2000:13:55:36 +0000] "GET {long_url} HTTP/1.1" 200 5 "-" "-"',  # overflowed the Java stack
        f'h - - [10/Oct/2000:13:55:36 +0000] "GET {huge_url} HTTP/1.1" 200 5 "-" "-"',
        f'h - - [10/Oct/2000:13:55:36 +0000] "GET {escaped_url} HTTP/1.1" 200 5 "-" "-"',
        '10.0.0.2 - - [18/Nov/2018:21:34:30 +0000] "GET /dashboard/ HTTP/2.0" 401 17 "-" "Firefox/57.0" 72 '
        '"Auth for frontend-Host-traefik-0" "/dashboard/" 12ms',  # Traefik
        'h - - [10/Oct/2000:13:55:36 +0000] "GET /n HTTP/1.1" 200 5 "-" "curl/8" 0.123',  # nginx $request_time
        'h - - [10/Oct/2000:13:55:36 +0000] "GET /n HTTP/1.1" 200 5 "-" "curl/8" "203.0.113.9"',  # x-forwarded-for
        COMBINED.replace("curl/8", "curl/8\x01\x02"),  # the parser's own separators inside a field
        'h - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 99999999999999999999999 "-" "-"',
    ]
    rows = parse(spark, tmp_path, FileFormat("access_log", max_line_bytes=4 * MIB), lines)
    assert [r.line_number for r in rows] == list(range(1, len(lines) + 1))
    assert [r.value for r in rows] == lines
    (
        first,
        second,
        common,
        empty,
        text,
        bad_time,
        tls,
        http09,
        long,
        huge,
        escaped,
        traefik,
        nginx,
        forwarded,
        separators,
        big_bytes,
    ) = rows
    assert (first.client_host, first.auth_user, first.status, first.response_bytes, first.user_agent) == (
        "10.0.0.1",
        "alice",
        200,
        2326,
        "curl/8",
    )
    assert (first.method, first.path, first.request_line) == (None, None, "GET /a b.gif HTTP/1.0")  # kept raw
    assert as_utc(first.request_time) == utc(2000, 10, 10, 20, 55, 36)  # -0700 applied
    assert (second.status, second.response_bytes, second.path, second.user_agent) == (
        404,
        None,
        '/q?x=\\"y\\"',
        'agent \\"quoted\\"',
    )
    assert (common.method, common.protocol, common.referrer, common.parse_error) == ("POST", "HTTP/2", None, None)
    assert [empty.parse_error, text.parse_error, bad_time.parse_error] == [
        "empty_line",
        "not_access_log_format",
        "bad_timestamp",
    ]
    assert text.client_host is None and text.value == "just some text"
    assert tls.parse_error is None and tls.method is None and tls.status == 400
    assert (http09.parse_error, http09.method, http09.path, http09.protocol) == (None, "GET", "/", None)
    for row, url in ((long, long_url), (huge, huge_url), (escaped, escaped_url)):
        assert (row.parse_error, row.method, row.path, row.protocol) == (None, "GET", url, "HTTP/1.1")
    assert (traefik.duration_ms, traefik.extra_fields) == (
        12,
        '72 "Auth for frontend-Host-traefik-0" "/dashboard/" 12ms',
    )
    assert (nginx.duration_ms, nginx.extra_fields) == (123, "0.123")
    assert (forwarded.duration_ms, forwarded.extra_fields) == (None, '"203.0.113.9"')
    assert separators.parse_error is None and separators.user_agent == "curl/8\x01\x02"
    assert [getattr(separators, c) for c in PARSED_COLUMNS if c != "user_agent"] == [
        getattr(first, c) for c in PARSED_COLUMNS if c != "user_agent"
    ]
    assert (big_bytes.parse_error, big_bytes.status, big_bytes.response_bytes) == (None, 200, None)

    # the entry point bronze.access_logs was built with: same parse, its 13 columns after parse_error
    legacy = parse_access_log_lines(spark.createDataFrame([(COMBINED,), ('h - - [x] "GET /" 200 5',)], "value string"))
    assert legacy.columns == ["value", "parse_error", *PARSED_COLUMNS]
    assert [(r.client_host, r.status, r.parse_error) for r in legacy.collect()] == [
        ("10.0.0.1", 200, None),
        (None, None, "bad_timestamp"),
    ]


# --- syslog -----------------------------------------------------------------------------------------

SYSLOG_LINES = [
    "Nov 30 06:25:01 web1 sshd[1234]: Accepted publickey for alice from 192.0.2.7 port 50122 ssh2",
    "Nov 30 06:25:02 web1 sudo:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
    "Nov 30 06:17:01 web1 CRON[4242]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
    "Nov 30 06:25:03 mx postfix/smtpd[987]: connect from unknown[198.51.100.4]",
    "Nov 30 06:25:04 web1 systemd[1]: Started Session 5 of User alice.",
    "Nov 30 06:25:05 web1 kernel: [  970.699396] usb 1-1: new high-speed USB device number 2",
    "<38>Nov 30 06:25:06 web1 sshd[77]: with a PRI",
    "Apr  2 17:51:27 <4.3> pancake sshd[55624]: FreeBSD syslogd -v",
    "Apr  2 17:51:28 <auth.info> pancake sshd[55625]: FreeBSD syslogd -vv",
    "<34>1 2026-11-30T06:25:01.003Z mymachine.example.com su - ID47 "
    '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \ufeff\'su root\' failed',
    "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    '<38>1 2019-07-08T17:40:17.954167-04:00 h sshd 55555 - [timeQuality tzKnown="1"][x@1 t="[b\\]"] Failed',
    "<34>1 - host app - - - no timestamp",
    "2026-11-30T06:25:01.123456+00:00 web1 sshd[123]: rsyslog's default file format",
    "2026-11-30T07:25:01+0100 web1 sshd[124]: journalctl -o short-iso (older systemd)",
    "2026-11-30T06:25:01.5+00:00 web1 sshd[125]: journalctl -o short-iso-precise",
    "Nov 30 06:25:01.250000 web1 sshd[126]: journalctl -o short-precise",
    "Dec 31 23:59:59 web1 sshd[1]: written just before New Year",
    "Jan  1 00:10:00 web1 sshd[2]: written just after",
    "Feb 30 06:25:01 web1 sshd[1]: no such day",
    "-- Reboot --",
    "",
]


def test_syslog_forms_programs_and_the_year_rfc3164_leaves_out(spark, tmp_path):
    written = utc(2027, 1, 1, 0, 30)  # the file was last written just after New Year
    rows = parse(spark, tmp_path, FileFormat("syslog"), SYSLOG_LINES, modified=written)
    assert len(rows) == len(SYSLOG_LINES)
    by_line = {r.value: r for r in rows}

    def row(prefix: str):
        return next(r for v, r in by_line.items() if v.startswith(prefix))

    expected = {  # prefix: (hostname, program, pid, syslog_format)
        "Nov 30 06:25:01 web1 sshd": ("web1", "sshd", 1234, "rfc3164"),
        "Nov 30 06:25:02 web1 sudo": ("web1", "sudo", None, "rfc3164"),
        "Nov 30 06:17:01 web1 CRON": ("web1", "CRON", 4242, "rfc3164"),
        "Nov 30 06:25:03 mx postfix": ("mx", "postfix/smtpd", 987, "rfc3164"),
        "Nov 30 06:25:04 web1 systemd": ("web1", "systemd", 1, "rfc3164"),
        "Nov 30 06:25:05 web1 kernel": ("web1", "kernel", None, "rfc3164"),
        "<34>1": ("mymachine.example.com", "su", None, "rfc5424"),
        "<165>1": ("192.0.2.1", "myproc", 8710, "rfc5424"),
        "2026-11-30T06:25:01.123456": ("web1", "sshd", 123, "rfc3339"),
        "2026-11-30T07:25:01+0100": ("web1", "sshd", 124, "rfc3339"),
    }
    for prefix, columns in expected.items():
        found = row(prefix)
        assert (found.hostname, found.program, found.pid, found.syslog_format, found.parse_error) == (*columns, None), (
            prefix
        )
    assert (
        row("Nov 30 06:25:02").message
        == "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update"
    )
    assert row("Nov 30 06:25:05").message == "[  970.699396] usb 1-1: new high-speed USB device number 2"
    assert as_utc(row("Nov 30 06:25:01 web1 sshd").event_time) == utc(2026, 11, 30, 6, 25, 1)  # the year before
    assert as_utc(row("Dec 31").event_time) == utc(2026, 12, 31, 23, 59, 59)
    assert as_utc(row("Jan  1").event_time) == utc(2027, 1, 1, 0, 10)
    assert (row("<38>Nov").facility, row("<38>Nov").severity) == (4, 6)
    assert (row("Apr  2 17:51:27").facility, row("Apr  2 17:51:27").severity, row("Apr  2 17:51:27").hostname) == (
        4,
        3,
        "pancake",
    )
    assert (row("Apr  2 17:51:28").facility, row("Apr  2 17:51:28").severity) == (4, 6)
    su = row("<34>1 2026")
    assert (su.facility, su.severity, su.msgid, su.message) == (4, 2, "ID47", "'su root' failed")  # BOM dropped
    assert su.structured_data == '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
    assert as_utc(su.event_time) == utc(2026, 11, 30, 6, 25, 1, 3000)
    donuts = row("<165>1")
    assert (donuts.facility, donuts.severity, as_utc(donuts.event_time)) == (20, 5, utc(2003, 8, 24, 12, 14, 15, 3))
    nested = row("<38>1 2019")
    assert nested.structured_data == '[timeQuality tzKnown="1"][x@1 t="[b\\]"]' and nested.message == "Failed"
    assert as_utc(nested.event_time) == utc(2019, 7, 8, 21, 40, 17, 954167)
    assert (row("<34>1 -").event_time, row("<34>1 -").parse_error) == (None, None)  # NILVALUE time: no error
    assert as_utc(row("2026-11-30T07:25:01+0100").event_time) == utc(2026, 11, 30, 6, 25, 1)
    assert as_utc(row("2026-11-30T06:25:01.5").event_time) == utc(2026, 11, 30, 6, 25, 1, 500000)
    assert as_utc(row("Nov 30 06:25:01.25").event_time) == utc(2026, 11, 30, 6, 25, 1, 250000)
    assert [row("Feb 30").parse_error, row("-- Reboot").parse_error, by_line[""].parse_error] == [
        "bad_timestamp",
        "not_syslog_format",
        "empty_line",
    ]
    assert all(r.event_time is not None for r in rows if r.parse_error is None and not r.value.startswith("<34>1 -"))


def test_syslog_times_without_an_offset_are_read_in_the_declared_zone(spark, tmp_path):
    lines = [
        "Jul 14 12:00:00 h app[1]: summer",
        "2026-01-15T12:00:00 h app[1]: winter, no offset",
        "2026-01-15T12:00:00+00:00 h app[1]: an offset wins",
    ]
    rows = parse(
        spark, tmp_path, FileFormat("syslog", options={"timezone": "Europe/Paris"}), lines, modified=utc(2026, 12, 1)
    )
    assert [as_utc(r.event_time) for r in rows] == [utc(2026, 7, 14, 10), utc(2026, 1, 15, 11), utc(2026, 1, 15, 12)]


# --- jsonl ------------------------------------------------------------------------------------------

JSON_COLUMNS = (
    ("id", "bigint"),
    ("name", "string"),
    ("score", "double"),
    ("ok", "boolean"),
    ("at", "timestamp"),
    ("day", "date"),
    ("price", "decimal(5,2)"),
)


def test_jsonl_takes_declared_fields_typed_and_rescues_the_rest(spark, tmp_path):
    lines = [
        '{"id": 1, "name": "ann", "score": 2, "ok": true, "at": "2026-11-30T06:25:01Z", "day": "2026-11-30", '
        '"price": 9.99, "extra": {"deep": [1, 2]}}',
        '{"id": "42", "name": {"first": "bob"}, "score": "high", "ok": 1, "at": "yesterday", "price": 1234.5}',
        '{"id": 1.5, "name": [1, "two"], "score": null, "ok": null}',
        '{"id": 99999999999999999999, "name": 7, "day": "30/11/2026"}',
        "{}",
        '{"a": 1} trailing',
        '{"a": 1}{"b": 2}',
        "[1, 2]",
        '"text"',
        "{bad",
        "",
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
    ]
    rows = parse(spark, tmp_path, FileFormat("jsonl", JSON_COLUMNS), lines, name="events.jsonl")
    good, misfit, nested, overflow, empty_object, *bad = rows
    assert (good.id, good.name, good.score, good.ok, as_utc(good.at), str(good.day), str(good.price)) == (
        1,
        "ann",
        2.0,
        True,
        utc(2026, 11, 30, 6, 25, 1),
        "2026-11-30",
        "9.99",
    )
    assert json.loads(good._rescued_data) == {"extra": {"deep": [1, 2]}}
    # a value of the wrong JSON type, or that does not fit, is null in its column and kept in _rescued_data
    assert (misfit.id, misfit.name, misfit.score, misfit.ok, misfit.at, misfit.price) == (
        None,
        '{"first":"bob"}',
        None,
        None,
        None,
        None,
    )
    assert json.loads(misfit._rescued_data) == {
        "id": "42",
        "score": "high",
        "ok": 1,
        "at": "yesterday",
        "price": 1234.5,
    }
    assert (nested.id, nested.name, nested.score, nested.ok) == (None, '[1,"two"]', None, None)
    assert json.loads(nested._rescued_data) == {"id": 1.5}  # nulls fit any column
    assert (overflow.id, overflow.name, overflow.day) == (None, "7", None)
    assert json.loads(overflow._rescued_data) == {"id": 99999999999999999999, "day": "30/11/2026"}
    assert (empty_object.parse_error, empty_object._rescued_data) == (None, None)
    assert [r.parse_error for r in bad] == [
        "invalid_json",
        "invalid_json",
        "not_a_json_object",
        "not_a_json_object",
        "invalid_json",
        "empty_line",
        "invalid_json",
        "invalid_json",  # nested 100,000 deep: Spark's parser stops at 1,000 levels
    ]
    assert all(r.id is None and r._rescued_data is None for r in bad)

    undeclared = parse(spark, tmp_path, FileFormat("jsonl"), ['{"b": [1], "a": "x"}', "{}"], name="x.jsonl")
    assert [r._rescued_data for r in undeclared] == ['{"a":"x","b":[1]}', None]


# --- csv --------------------------------------------------------------------------------------------


def test_csv_records_are_typed_by_the_declared_columns_and_misfits_rescued(spark, tmp_path):
    content = (
        'id,name,amount,note\n1,"Ann\nSmith",10.50,first\n2,Bob,lots,\n3,,-1\nx,Eve,1e2,"said ""hi"""\n'
        "4,Dan,99999.999,n\n"
    )
    fmt = FileFormat("csv", (("id", "bigint"), ("name", "string"), ("amount", "decimal(7,2)")))
    rows = parse(spark, tmp_path, fmt, content, name="people.csv")
    assert [
        (r.line_number, r.id, r.name, str(r.amount) if r.amount is not None else None, r.parse_error) for r in rows
    ] == [
        (2, 1, "Ann\nSmith", "10.50", None),
        (4, 2, "Bob", None, None),
        (5, None, None, None, "wrong_field_count:3"),
        (6, None, "Eve", "100.00", None),
        (7, 4, "Dan", None, None),
    ]
    assert [json.loads(r._rescued_data) if r._rescued_data else None for r in rows] == [
        {"note": "first"},
        {"amount": "lots", "note": None},
        None,
        {"id": "x", "note": 'said "hi"'},
        {"amount": "99999.999", "note": "n"},
    ]
    assert rows[0].value == '1,"Ann\nSmith",10.50,first'


# --- regex ------------------------------------------------------------------------------------------


def test_regex_groups_become_columns_typed_where_declared(spark, tmp_path):
    pattern = r"(?P<level>[A-Z]+) \[(?<thread_id>[^\]]*)\] (?:took (?P<millis>\S+) ms )?(?P<message>.*)"
    fmt = FileFormat("regex", (("millis", "int"), ("thread_id", "bigint")), {"pattern": pattern})
    assert [f.name for f in fmt.parsed_schema()] == ["level", "thread_id", "millis", "message", "_rescued_data"]
    lines = ["INFO [7] took 12 ms done", "WARN [main] took many ms slow", "DEBUG [] quiet", "no match here", ""]
    rows = parse(spark, tmp_path, fmt, lines)
    assert [(r.level, r.thread_id, r.millis, r.message, r.parse_error) for r in rows] == [
        ("INFO", 7, 12, "done", None),
        ("WARN", None, None, "slow", None),
        ("DEBUG", None, None, "quiet", None),  # an empty group is null
        (None, None, None, None, "no_match"),
        (None, None, None, None, "no_match"),
    ]
    assert json.loads(rows[1]._rescued_data) == {"thread_id": "main", "millis": "many"}
    assert rows[0]._rescued_data is None and rows[2]._rescued_data is None


# --- infer_columns ----------------------------------------------------------------------------------


def test_infer_columns_from_sampled_json_lines():
    sample = [
        '{"id": 1, "name": "ann", "score": 1, "ok": true, "at": "2026-11-30T06:25:01Z", '
        '"tags": ["a"], "user-agent": "x"}',
        '{"id": 2, "score": 2.5, "ok": false, "day": "2026-11-30", "maybe": null, "mixed": 1}',
        '{"mixed": "one", "ID": 3}',
        "not json",
        "[1]",
        "[" * 5000 + "]" * 5000,
    ]
    assert infer_columns(sample, FileFormat("jsonl")) == (
        ("id", "bigint"),
        ("name", "string"),
        ("score", "double"),
        ("ok", "boolean"),
        ("at", "timestamp"),
        ("tags", "string"),
        ("day", "date"),
        ("maybe", "string"),
        ("mixed", "string"),
    )


def test_infer_columns_from_a_csv_header_and_values():
    sample = [
        "id,First Name,amount,joined,active,zip,when,value",
        "1,Ann,10.5,2026-11-30,true,01234,2026-11-30 06:25:01,x",
        "2,Bob,3,2026-12-01,false,99501,2026-12-01T00:00:00Z,y",
        "3,,,,,,,",
        '4,"Eve"x,word,not a date,maybe,1,2,z',
    ]  # a malformed record is left out, not fatal
    columns = infer_columns(sample, FileFormat("csv"))
    assert columns == (
        ("id", "bigint"),
        ("First_Name", "string"),
        ("amount", "double"),
        ("joined", "date"),
        ("active", "boolean"),
        ("zip", "string"),
        ("when", "timestamp"),
        ("value_", "string"),
    )
    FileFormat("csv", columns).validate()  # what it infers can be declared
    assert infer_columns(["1;x", "2;y"], FileFormat("csv", options={"header": False, "delimiter": ";"})) == (
        ("_c0", "bigint"),
        ("_c1", "string"),
    )


# --- real logs made by others -----------------------------------------------------------------------

REAL_SYSLOG = ("sshd", "postfix", "bsd/syslog-v.txt", "bsd/syslog-vv.txt", "testcase-wrong-char.log")


def copy_samples(folder: Path, names, modified: datetime) -> dict[str, Path]:
    folder.mkdir()
    copies = {}
    for name in names:
        source = Path(name) if name.startswith("/") else fail2ban_sample(name)
        copy = folder / Path(name).name
        shutil.copyfile(source, copy)
        os.utime(copy, (modified.timestamp(), modified.timestamp()))
        copies[Path(name).name] = copy
    return copies


def test_real_sshd_postfix_and_syslog_files_parse(spark, tmp_path):
    copies = copy_samples(tmp_path / "syslog", REAL_SYSLOG, utc(2026, 12, 1))
    rows = parse_folder(spark, tmp_path / "syslog", FileFormat("syslog"))
    by_file: dict[str, list] = {}
    for row in rows:
        by_file.setdefault(row.source_file.rsplit("/", 1)[1], []).append(row)
    for name, path in copies.items():
        found = by_file[name]
        parsed = [r for r in found if r.parse_error is None]
        lines = len(path.read_bytes().splitlines())
        assert len(found) == lines == len(parsed) + sum(r.parse_error is not None for r in found), name
        log_lines = lines - annotation_lines(path)  # fail2ban's '#' annotations and blank lines are no log
        assert len(parsed) >= 0.98 * log_lines, (name, len(parsed), log_lines)
        assert all(r.value.lstrip().startswith("#") or not r.value.strip() for r in found if r.parse_error), name

    sshd = [r for r in by_file["sshd"] if r.parse_error is None]
    assert sum(r.program == "sshd" for r in sshd) >= 0.95 * len(sshd)
    assert sum(r.pid is not None for r in sshd) >= 0.95 * len(sshd)
    hostless = [r for r in sshd if r.value.startswith(("Nov 23 21:50:19 sshd[8148]:", "Feb 17 17:40:17 sshd[19725]:"))]
    assert len(hostless) == 3 and all((r.hostname, r.program) == (None, "sshd") for r in hostless)  # no host logged
    assert sum(r.hostname is not None for r in sshd) >= 0.9 * len(sshd)
    assert {r.syslog_format for r in sshd} == {"rfc3164", "rfc3339", "rfc5424"}
    failed = next(r for r in sshd if r.value.startswith("Feb 25 14:34:10 belka sshd[31602]: Failed password"))
    assert (failed.hostname, failed.program, failed.pid, as_utc(failed.event_time)) == (
        "belka",
        "sshd",
        31602,
        utc(2026, 2, 25, 14, 34, 10),
    )
    rfc5424 = next(r for r in sshd if r.value.startswith("<38>1 2019-07-08T17:40:16.954167-04:00"))
    assert (rfc5424.hostname, rfc5424.program, rfc5424.pid, rfc5424.facility, rfc5424.severity) == (
        "hostname.example.com",
        "sshd",
        57915,
        4,
        6,
    )
    assert as_utc(rfc5424.event_time) == utc(2019, 7, 8, 21, 40, 16, 954167)
    rsyslog = next(r for r in sshd if r.value.startswith("2015-04-16T18:02:50.321974+00:00 host sshd[2716]"))
    assert (rsyslog.hostname, rsyslog.pid, as_utc(rsyslog.event_time)) == (
        "host",
        2716,
        utc(2015, 4, 16, 18, 2, 50, 321974),
    )

    postfix = [r for r in by_file["postfix"] if r.parse_error is None]
    # postfix/smtpd, and multi-instance postfix-incoming/smtpd, postfix-smo/submission/smtpd
    assert postfix and all(r.program.startswith("postfix") and "/" in r.program and r.pid for r in postfix)
    assert "postfix-smo/submission/smtpd" in {r.program for r in postfix}
    christmas = next(r for r in postfix if r.value.startswith("Dec 25 02:35:54 platypus postfix/smtpd[9144]"))
    assert as_utc(christmas.event_time) == utc(2025, 12, 25, 2, 35, 54)  # after the file's December 1st: last year
    assert {(r.facility, r.severity) for r in by_file["syslog-vv.txt"]} == {(4, 6)}  # <auth.info>
    assert {(r.facility, r.severity) for r in by_file["syslog-v.txt"]} == {(4, 3), (4, 6)}  # <4.3>, <4.6>
    wrong_char = by_file["testcase-wrong-char.log"]  # a byte that is not UTF-8 in a real log
    assert all(r.parse_error is None and r.program == "sshd" for r in wrong_char)
    assert any("\ufffd" in r.message for r in wrong_char)


def test_real_access_logs_parse(spark, tmp_path):
    names = ("traefik-auth", "nginx-bad-request", "nginx-botsearch", str(logstalgia_access_log()))
    copies = copy_samples(tmp_path / "access", names, utc(2026, 12, 1))
    rows = parse_folder(spark, tmp_path / "access", FileFormat("access_log"))
    by_file: dict[str, list] = {}
    for row in rows:
        by_file.setdefault(row.source_file.rsplit("/", 1)[1], []).append(row)
    for name, path in copies.items():
        assert len(by_file[name]) == len(path.read_bytes().splitlines()), name
    logstalgia = by_file["example.log"]
    assert len(logstalgia) == 3260 and all(r.parse_error is None for r in logstalgia)
    assert len({r.client_host for r in logstalgia}) == 220
    traefik = [r for r in by_file["traefik-auth"] if r.parse_error is None]
    assert len(traefik) >= 5 and all(r.duration_ms is not None and r.extra_fields for r in traefik)
    assert {(r.status, r.duration_ms) for r in traefik} == {(401, 0), (200, 4)}
    nginx = [r for r in by_file["nginx-bad-request"] if r.parse_error is None]
    assert len(nginx) >= 0.98 * (len(by_file["nginx-bad-request"]) - annotation_lines(copies["nginx-bad-request"]))
    assert {r.request_line for r in nginx if r.method is None} >= {""}  # `""`: a request that never came
    botsearch = Counter(r.parse_error for r in by_file["nginx-botsearch"])
    assert (
        botsearch[None] >= 8 and botsearch["not_access_log_format"] >= 4
    )  # its nginx error-log lines are no access log


def test_a_filter_on_the_parsed_rows_keeps_the_plan_small(spark, tmp_path, no_codegen_fallback):
    """Counting rescued rows, as an ingestion run does, must not inline the parse into the filter."""
    (tmp_path / "a.log").write_text("Nov 30 06:25:01 web1 sshd[1]: x\nnot syslog\n")
    files = spark.read.format("binaryFile").load(str(tmp_path))
    for fmt in CORPUS_FORMATS.values():
        rescued = parse_lines(read_files(spark, files, fmt), fmt).where(F.col("parse_error").isNotNull())
        assert len(rescued._jdf.queryExecution().optimizedPlan().toString()) < 100_000, fmt.name
    syslog = CORPUS_FORMATS["syslog"]
    rescued = parse_lines(read_files(spark, files, syslog), syslog).where(F.col("parse_error").isNotNull())
    assert rescued.count() == 1  # and the generated code compiles (no interpreted fallback)


# --- the hostile corpus, through every format -------------------------------------------------------

CORPUS_FORMATS = {
    "text": FileFormat("text"),
    "jsonl": FileFormat("jsonl", (("a", "bigint"), ("ok", "boolean"))),
    "csv": FileFormat("csv", (("id", "bigint"), ("name", "string"), ("amount", "double"))),
    "access_log": FileFormat("access_log"),
    "syslog": FileFormat("syslog"),
    "regex": FileFormat("regex", (("n", "int"),), {"pattern": r"(?P<word>\w+) (?P<n>\S+).*"}),
}
READ_REASONS = ("line_too_long", "truncated_file:", "corrupt_file:", "unsupported_compression:")
FORMAT_REASONS = {
    "text": set(),
    "jsonl": {"empty_line", "invalid_json", "not_a_json_object"},
    "csv": {"empty_line", "malformed_csv_row", "record_too_long", "header_mismatch", "wrong_field_count:"},
    "access_log": {"empty_line", "not_access_log_format", "bad_timestamp"},
    "syslog": {"empty_line", "not_syslog_format", "bad_timestamp"},
    "regex": {"no_match"},
}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return corpus.build(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def no_codegen_fallback(spark):
    """Fail instead of quietly running interpreted when generated code does not compile (too big)."""
    before = spark.conf.get("spark.sql.codegen.fallback")
    spark.conf.set("spark.sql.codegen.fallback", "false")
    yield
    spark.conf.set("spark.sql.codegen.fallback", before)


def corpus_rows(spark, folder: Path, fmt: FileFormat) -> dict[str, list]:
    files = spark.read.format("binaryFile").load(str(folder))
    parsed = parse_lines(read_files(spark, files, fmt), fmt)
    # exactly the bronze columns, but the two the ingestion run adds
    assert [(f.name, f.dataType) for f in parsed.schema] == [
        (f.name, f.dataType) for f in bronze_schema(fmt) if f.name not in ("ingest_time", "run_id")
    ]
    rows = parsed.select(
        F.element_at(F.split("source_file", "/"), -1).alias("file"),
        "line_number",
        "parse_error",
        F.length("value").alias("length"),
        F.size(F.split("value", "\n")).alias("lines"),
        F.substring("value", 1, 200).alias("head"),
    ).collect()
    by_file: dict[str, list] = {path.name: [] for path in folder.iterdir()}
    for row in rows:
        by_file[row.file].append(row)
    return {
        name: sorted(found, key=lambda r: (r.line_number is None, r.line_number or 0))
        for name, found in by_file.items()
    }


def check_every_line_is_one_row(name: str, path: Path, found: list, fmt: FileFormat) -> None:
    """Rows in = rows landed: one per line (per record for csv), one more for a damaged file."""
    if name in corpus.UNREADABLE:
        assert [(r.line_number, r.parse_error) for r in found] == [(None, corpus.UNREADABLE[name])]
        return
    lines, file_level = found, []
    if name in corpus.DAMAGED:
        *lines, last = found
        file_level = [last]
        assert last.line_number is None and last.length is None and last.parse_error.startswith(corpus.DAMAGED[name])
        assert len(lines) >= 100  # what came before the damage landed
    assert all(r.line_number is not None and r.length is not None for r in lines), name
    if fmt.name == "csv":  # each line is in exactly one record (or the header, when it is not a row)
        spans = [(r.line_number, r.line_number + r.lines - 1) for r in lines]
        assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:])), name
        if name not in corpus.DAMAGED and spans:
            assert spans[-1][1] == corpus.line_count(path), name
    else:
        expected = len(lines) if name in corpus.DAMAGED else corpus.line_count(path)
        assert [r.line_number for r in lines] == list(range(1, expected + 1)), name
    assert len(found) == len(lines) + len(file_level)


@pytest.mark.parametrize("name", CORPUS_FORMATS)
def test_the_hostile_corpus_lands_every_line_in_every_format(spark, corpus_dir, no_codegen_fallback, name):
    fmt = CORPUS_FORMATS[name]
    by_file = corpus_rows(spark, corpus_dir, fmt)
    assert by_file["empty.log"] == []  # no line, no row
    for file_name, found in by_file.items():
        check_every_line_is_one_row(file_name, corpus_dir / file_name, found, fmt)
        for row in found:
            reason = row.parse_error
            assert (
                reason is None
                or reason.startswith(READ_REASONS)
                or any(reason == r or (r.endswith(":") and reason.startswith(r)) for r in FORMAT_REASONS[name])
            ), (file_name, reason)
            assert row.length is None or row.length <= MIB  # no value longer than max_line_bytes characters
    for file_name in ("long_line_5mib.log", "long_line_50mib.log.gz"):
        assert [r.parse_error for r in by_file[file_name]][1] == "line_too_long"
        assert by_file[file_name][1].length == (MIB if "5mib" in file_name else MIB // 2)  # é: 2 bytes each
    reasons = {file_name: [r.parse_error for r in found] for file_name, found in by_file.items()}
    CORPUS_CHECKS[name](reasons, by_file)


def _text(reasons, by_file):
    assert {r for found in reasons.values() for r in found} - {None} == {
        "line_too_long",
        "truncated_file:gzip stream ends before its end marker",
        "truncated_file:xz stream ends before its end marker",
        "corrupt_file:gzip CRC check failed",
        "unsupported_compression:zstd",
    }
    assert [r.head for r in by_file["crlf_and_cr.log"]] == [
        "first CRLF line",
        "second CRLF line",
        "lone CR line",
        "after a lone CR",
        "LF line",
        "",
        "",
        "last line, no terminator",
    ]
    assert [r.head for r in by_file["gzip_named_plain.log"]][0] == "gzip bytes behind a .log name"
    assert [r.head for r in by_file["plain_named.gz"]][0] == "plain text behind a .gz name"
    assert by_file["invalid_utf8.log"][0].head == "latin-1 D\ufffdc 31 11:59:59 host sshd[1]: caf\ufffd"
    assert by_file["control_chars.log"][1].head == "\x00\x00\x00"
    assert by_file["bom_header.csv"][0].head == "id,name"


def _jsonl(reasons, by_file):
    assert reasons["json_hostile.jsonl"] == [
        None,
        "invalid_json",
        "invalid_json",
        "not_a_json_object",
        "not_a_json_object",
        "not_a_json_object",
        "not_a_json_object",
        "not_a_json_object",
        "invalid_json",
        "invalid_json",
        "invalid_json",
        None,
        None,
        None,
        None,
        None,
        "invalid_json",
        "empty_line",
        "empty_line",
        None,
    ]
    assert reasons["deep_json_100k.jsonl"] == [None, "invalid_json", "invalid_json", None]
    assert set(reasons["access_hostile.log"]) == {"invalid_json", "not_a_json_object", "empty_line"}


def _csv(reasons, by_file):
    assert [(r.line_number, r.parse_error) for r in by_file["csv_hostile.csv"]] == [
        (2, None),
        (3, None),
        (4, None),
        (6, None),
        (7, "wrong_field_count:4"),
        (8, "wrong_field_count:2"),
        (9, "empty_line"),
        (10, None),
        (11, "malformed_csv_row"),
        (12, None),
        (13, None),
        (14, "malformed_csv_row"),
    ]
    assert by_file["csv_hostile.csv"][-1].lines == 2  # a quote never closed takes the lines after it
    assert reasons["bom_header.csv"] == [None, None]  # the BOM is not part of the header's first name
    assert set(reasons["syslog_hostile.log"]) == {"header_mismatch"}  # a file whose header names no column


def _access_log(reasons, by_file):
    assert reasons["access_hostile.log"] == [
        None,
        None,
        None,
        None,
        None,
        None,
        "not_access_log_format",
        None,
        None,
        "not_access_log_format",
        "bad_timestamp",
        "bad_timestamp",
        "not_access_log_format",
        None,
        None,
        None,
        "not_access_log_format",
        "not_access_log_format",
        None,
        "not_access_log_format",
        "empty_line",
        "empty_line",
    ]
    for good in ("good.log.bz2", "good.log.xz", "good_multimember.log.gz", "corrupt_crc.log.gz", "truncated.log.gz"):
        assert reasons[good][:-1].count(None) >= len(reasons[good]) - 2, good
    assert reasons["control_chars.log"].count(None) == 1 and reasons["invalid_utf8.log"].count(None) == 1


def _syslog(reasons, by_file):
    assert reasons["syslog_hostile.log"] == [
        "not_syslog_format",
        None,
        None,
        "bad_timestamp",
        None,
        "bad_timestamp",
        "not_syslog_format",
        None,
        "bad_timestamp",
        "bad_timestamp",
        "bad_timestamp",
        None,
        None,
        "not_syslog_format",
        "not_syslog_format",
        "bad_timestamp",
        "bad_timestamp",
        None,
        None,
        None,
    ]
    assert reasons["control_chars.log"].count(None) == 1


def _regex(reasons, by_file):
    assert reasons["crlf_and_cr.log"] == [None, None, None, None, None, "no_match", "no_match", None]
    assert set(reasons["binary.bin"]) <= {None, "no_match"}


CORPUS_CHECKS = {
    "text": _text,
    "jsonl": _jsonl,
    "csv": _csv,
    "access_log": _access_log,
    "syslog": _syslog,
    "regex": _regex,
}
