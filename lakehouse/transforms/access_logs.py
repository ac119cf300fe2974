"""Access log lines -> typed columns: the ``access_log`` file format of :mod:`lakehouse.sources.formats`.

This module keeps the entry point ``bronze.access_logs`` was built with; the parsing itself (Apache and
Nginx "combined" and "common", Nginx and Traefik extras, possessive regexes that survive megabyte URLs,
HTTP/0.9 request lines) lives in :func:`lakehouse.sources.formats.access_log_columns`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.sources.formats import ACCESS_LOG_PATTERN, access_log_columns

# For Python's re too (bench/sources.py's baseline): it knows no \z before Python 3.14.
LINE_PATTERN = ACCESS_LOG_PATTERN.replace(r"\z", "$")
# The columns bronze.access_logs declares (schemas/bronze/access_logs.yaml); the format's newer
# `duration_ms` is not among them yet.
PARSED_COLUMNS = (
    "client_host",
    "ident",
    "auth_user",
    "request_time",
    "request_line",
    "method",
    "path",
    "protocol",
    "status",
    "response_bytes",
    "referrer",
    "user_agent",
    "extra_fields",
)


def parse_access_log_lines(lines: DataFrame) -> DataFrame:
    """Add the parsed columns of :data:`PARSED_COLUMNS` and ``parse_error`` to a frame with ``value``.

    ``parse_error`` is null for a parsed line, else ``empty_line``, ``not_access_log_format`` or
    ``bad_timestamp``; the parsed columns of such a line are all null.
    """
    frame, parsed, reason = access_log_columns(lines)
    frame = frame.withColumn("parse_error", reason)
    ok = F.col("parse_error").isNull()
    return frame.select(
        *lines.columns, "parse_error", *[F.when(ok, parsed[name]).alias(name) for name in PARSED_COLUMNS]
    )
