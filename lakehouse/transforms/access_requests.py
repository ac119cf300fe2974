"""bronze.access_logs -> silver.access_requests: one typed row per request, client IPs pseudonymised.

Personal fields never reach silver: the client address and the authenticated user become keyed hashes
(:mod:`lakehouse.transforms.privacy`), ``ident``, the query string, the referrer's path and ``extra_fields`` are
dropped; in quarantined lines the leading host/ident/user fields, query strings and anything that looks
like an IP address are masked.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.storage import quarantine
from lakehouse.transforms.privacy import IPV4_PATTERN, IPV6_PATTERN, MASK, pseudonym_text

DUPLICATE_REASON = "duplicate_request"
MISSING_STATUS_REASON = "missing_status"

_BOT_PATTERN = r"(?i)(bot|crawl|spider|slurp)"
_REFERRER_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)"
# What may identify a client in a line the parser could not split: the leading "host ident user" of
# the log format, query strings, IPv4 addresses, and IPv6 addresses (eight groups, or any form with "::"; a time
# such as 13:55:36 has neither).
_LEADING_IDENTITY = r"^\S+ \S+ \S+ \["
_QUERY_STRING = r"\?[^\s\"]*"
_IPV4 = IPV4_PATTERN
_IPV6 = IPV6_PATTERN

SILVER_COLUMNS = (
    "request_id",
    "request_time",
    "request_date",
    "client_key",
    "auth_user_key",
    "method",
    "path",
    "has_query_string",
    "protocol",
    "status",
    "status_class",
    "is_error",
    "response_bytes",
    "referrer_host",
    "user_agent",
    "is_bot",
    "source_file",
    "ingest_time",
)


def with_request_id(bronze: DataFrame, key: bytes) -> DataFrame:
    """Add ``request_id``: a keyed hash of (source file, raw line, occurrence of that line in that file).

    Bronze keeps no line numbers, so a line is identified by its file, its text and which repeat of that
    text it is within one landing (``run_id``): the same file landed twice gives the same ids (caught
    as duplicates), while two identical requests in one file stay two requests. Keyed, because the raw
    line holds the client address and an unkeyed hash could be brute-forced over the address space.
    """
    occurrence = F.row_number().over(Window.partitionBy("source_file", "value", "run_id").orderBy("ingest_time"))
    identity = F.concat_ws("\n", F.col("source_file"), F.coalesce(F.col("value"), F.lit("")), occurrence)
    return bronze.withColumn("request_id", pseudonym_text(identity, key, "access_request"))


def mark_rejects(requests: DataFrame, existing_ids: DataFrame | None = None) -> DataFrame:
    """Set ``_reject_reason``: bronze's ``parse_error``, ``missing_status`` (status logged as ``-``), or
    ``duplicate_request`` for a repeat of a ``request_id`` in this frame or in ``existing_ids`` (a
    one-column frame of ids already published). Within the frame the earliest landing wins."""
    parse_reason = F.when(F.col("parse_error").isNotNull(), F.col("parse_error")).when(
        F.col("status").isNull(), F.lit(MISSING_STATUS_REASON)
    )
    marked = requests.withColumn(quarantine.REASON, parse_reason)
    good = F.col(quarantine.REASON).isNull()
    order = Window.partitionBy("request_id").orderBy("ingest_time", "run_id")
    marked = marked.withColumn("__rank", F.when(good, F.row_number().over(order)))
    is_duplicate = F.col("__rank") > 1
    if existing_ids is not None:
        known = existing_ids.select(F.col("request_id").alias("__known_id")).distinct()
        marked = marked.join(known, marked["request_id"] == known["__known_id"], "left")
        is_duplicate = is_duplicate | F.col("__known_id").isNotNull()
    marked = marked.withColumn(
        quarantine.REASON, F.when(good & is_duplicate, F.lit(DUPLICATE_REASON)).otherwise(F.col(quarantine.REASON))
    )
    return marked.drop("__rank", "__known_id")


def _null_if_blank(column: Column) -> Column:
    return F.when((column == "") | (column == "-"), None).otherwise(column)


def requests_with_outcome(marked: DataFrame, key: bytes, rule: str = "silver.access_requests") -> DataFrame:
    """Every marked line in the columns of ``silver.access_requests`` (pseudonymised, declared order) with the
    quarantine protocol's columns (:mod:`lakehouse.storage.quarantine`): the reason, and the line with its personal
    parts masked."""
    status = F.col("status")
    user_agent = _null_if_blank(F.col("user_agent"))
    columns = {
        "request_id": F.col("request_id"),
        "request_time": F.col("request_time"),
        "request_date": F.to_date("request_time"),
        "client_key": pseudonym_text(F.col("client_host"), key, "ip"),
        "auth_user_key": pseudonym_text(_null_if_blank(F.col("auth_user")), key, "http_user"),
        "method": F.col("method"),
        "path": F.when(F.col("path").isNotNull(), F.regexp_extract("path", r"^([^?#]*)", 1)),
        "has_query_string": F.col("path").contains("?"),
        "protocol": F.col("protocol"),
        "status": status,
        "status_class": F.concat((status / 100).cast("int").cast("string"), F.lit("xx")),
        "is_error": status >= 400,
        "response_bytes": F.col("response_bytes"),
        "referrer_host": _null_if_blank(F.lower(F.regexp_extract("referrer", _REFERRER_HOST, 1))),
        "user_agent": user_agent,
        "is_bot": F.coalesce(user_agent.rlike(_BOT_PATTERN), F.lit(False)),
        "source_file": F.col("source_file"),
        "ingest_time": F.col("ingest_time"),
    }
    protocol = quarantine.reject(
        F.col(quarantine.REASON), record=mask_personal(F.col("value")), rule=rule, source=F.col("source_file")
    )
    return marked.select(*[columns[name].alias(name) for name in SILVER_COLUMNS], *protocol.values())


def mask_personal(line: Column) -> Column:
    """``line`` with the leading host/ident/user fields, query strings and IPv4/IPv6-looking tokens masked."""
    masked = F.regexp_replace(line, _LEADING_IDENTITY, f"{MASK} {MASK} {MASK} [")
    masked = F.regexp_replace(masked, _QUERY_STRING, "?" + MASK)
    masked = F.regexp_replace(masked, _IPV4, MASK)
    return F.regexp_replace(masked, _IPV6, MASK)
