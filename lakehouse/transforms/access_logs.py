"""Access log lines -> typed columns: Apache/Nginx "combined" format, "common" format accepted too.

A line is ``host ident user [time] "request" status bytes "referrer" "user agent"`` (the last two are
absent in "common" format); anything after the user agent (Logstalgia's sample has one more quoted
field) is kept in ``extra_fields``. Lines that do not fit keep their raw text in ``value`` and get a
``parse_error``; nothing is dropped.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
LINE_PATTERN = (
    r"^(\S+) (\S+) (\S+) \[([^\]]+)\] " + _QUOTED + r" (\d{3}|-) (\d+|-)"
    r"(?: " + _QUOTED + " " + _QUOTED + r")?\s*(.*)$"
)
_GROUPS = {
    "client_host": 1, "ident": 2, "auth_user": 3, "__time": 4, "request_line": 5, "__status": 6,
    "__bytes": 7, "referrer": 8, "user_agent": 9, "extra_fields": 10,
}
REQUEST_PATTERN = r"^(\S+) (\S+)(?: (\S+))?$"
TIME_FORMAT = "dd/MMM/yyyy:HH:mm:ss Z"
PARSED_COLUMNS = (
    "client_host", "ident", "auth_user", "request_time", "request_line", "method", "path", "protocol",
    "status", "response_bytes", "referrer", "user_agent", "extra_fields",
)


def _group(name: str) -> Column:
    return F.regexp_extract("value", LINE_PATTERN, _GROUPS[name])


def _null_if_empty(column: Column) -> Column:
    return F.when(column == "", None).otherwise(column)


def parse_access_log_lines(lines: DataFrame) -> DataFrame:
    """Add the parsed columns of :data:`PARSED_COLUMNS` and ``parse_error`` to a frame with ``value``.

    ``parse_error`` is null for a parsed line, else ``empty_line``, ``not_access_log_format`` or
    ``bad_timestamp``; the parsed columns of such a line are all null.
    """
    matches = F.col("value").rlike(LINE_PATTERN)
    request_time = F.try_to_timestamp(_group("__time"), F.lit(TIME_FORMAT))
    request_line = _group("request_line")
    status_text, bytes_text = _group("__status"), _group("__bytes")
    error = (
        F.when(F.col("value").isNull() | (F.trim("value") == ""), F.lit("empty_line"))
        .when(~matches, F.lit("not_access_log_format"))
        .when(request_time.isNull(), F.lit("bad_timestamp"))
    )
    parsed = {
        "client_host": _group("client_host"),
        "ident": _group("ident"),
        "auth_user": _group("auth_user"),
        "request_time": request_time,
        "request_line": request_line,
        "method": _null_if_empty(F.regexp_extract(request_line, REQUEST_PATTERN, 1)),
        "path": _null_if_empty(F.regexp_extract(request_line, REQUEST_PATTERN, 2)),
        "protocol": _null_if_empty(F.regexp_extract(request_line, REQUEST_PATTERN, 3)),
        "status": F.when(status_text != "-", status_text.cast("int")),
        "response_bytes": F.when(bytes_text != "-", bytes_text.cast("bigint")),
        "referrer": _null_if_empty(_group("referrer")),
        "user_agent": _null_if_empty(_group("user_agent")),
        "extra_fields": _null_if_empty(_group("extra_fields")),
    }
    with_error = lines.withColumn("parse_error", error)
    return with_error.select(
        "*",
        *[F.when(F.col("parse_error").isNull(), column).alias(name) for name, column in parsed.items()],
    )

