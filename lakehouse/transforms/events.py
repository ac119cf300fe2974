"""bronze.app_events -> silver.events: parse the raw JSON lines, type them, find the bad and the duplicate."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.storage import quarantine
from lakehouse.transforms.privacy import pseudonym_id

EVENT_TYPES = ("login", "view", "like", "upload")
EVENTS_ON_A_PHOTO = ("view", "like", "upload")
DUPLICATE_REASON = "duplicate_event_id"


def parse_app_events(raw: DataFrame) -> DataFrame:
    """Parse ``bronze.app_events`` lines into typed event columns plus ``_reject_reason``.

    ``_reject_reason`` is null for a good line and names the first problem otherwise:
    ``invalid_json``, ``missing_field:<name>``, ``bad_type:<name>``, ``bad_timestamp``,
    ``unknown_event_type``. Every input row comes out exactly once; nothing is dropped here.
    """
    with_doc = raw.withColumn("__doc", F.expr("try_parse_json(value)"))

    def text(name: str) -> Column:
        return F.expr(f"try_variant_get(__doc, '$.{name}', 'string')")

    def typed(name: str, type_name: str) -> Column:
        return F.expr(f"try_variant_get(__doc, '$.{name}', '{type_name}')")

    parsed = with_doc.select(
        "*",
        text("event_id").alias("event_id"),
        typed("user_id", "bigint").alias("user_id"),
        text("event_type").alias("event_type"),
        typed("photo_id", "bigint").alias("photo_id"),
        F.expr("try_to_timestamp(try_variant_get(__doc, '$.ts', 'string'))").alias("event_time"),
        text("user_id").alias("__user_id_text"),
        text("photo_id").alias("__photo_id_text"),
        text("ts").alias("__ts_text"),
    )
    is_object = F.expr("__doc IS NOT NULL AND schema_of_variant(__doc) LIKE 'OBJECT<%'")
    reason = (
        F.when(~is_object, F.lit("invalid_json"))
        .when(F.col("event_id").isNull() | (F.trim("event_id") == ""), F.lit("missing_field:event_id"))
        .when(F.col("__user_id_text").isNull(), F.lit("missing_field:user_id"))
        .when(F.col("user_id").isNull(), F.lit("bad_type:user_id"))
        .when(F.col("event_type").isNull(), F.lit("missing_field:event_type"))
        .when(~F.col("event_type").isin(*EVENT_TYPES), F.lit("unknown_event_type"))
        .when(F.col("__ts_text").isNull(), F.lit("missing_field:ts"))
        .when(F.col("event_time").isNull(), F.lit("bad_timestamp"))
        .when(
            F.col("event_type").isin(*EVENTS_ON_A_PHOTO) & F.col("__photo_id_text").isNull(),
            F.lit("missing_field:photo_id"),
        )
        .when(F.col("__photo_id_text").isNotNull() & F.col("photo_id").isNull(), F.lit("bad_type:photo_id"))
    )
    return (
        parsed.withColumn(quarantine.REASON, reason)
        .withColumn("event_date", F.to_date("event_time"))
        .drop("__doc", "__user_id_text", "__photo_id_text", "__ts_text")
    )


def mark_duplicates(events: DataFrame, existing_ids: DataFrame | None = None) -> DataFrame:
    """Set ``_reject_reason`` to ``duplicate_event_id`` on every repeat of an ``event_id``.

    Within ``events`` the first delivery wins (earliest ingest, then source file, then the raw text,
    so the choice is deterministic); an event whose id is already in ``existing_ids`` (a one-column
    DataFrame of ids already published) is a duplicate too. Rows already rejected stay as they are.
    """
    good = F.col(quarantine.REASON).isNull()
    order = Window.partitionBy("event_id").orderBy("ingest_time", "source_file", "value")
    ranked = events.withColumn("__rank", F.when(good, F.row_number().over(order)))
    if existing_ids is not None:
        known = existing_ids.select(F.col("event_id").alias("__known_id")).distinct()
        ranked = ranked.join(known, ranked["event_id"] == known["__known_id"], "left")
        is_duplicate = (F.col("__rank") > 1) | (good & F.col("__known_id").isNotNull())
    else:
        is_duplicate = F.col("__rank") > 1
    marked = ranked.withColumn(
        quarantine.REASON, F.when(good & is_duplicate, F.lit(DUPLICATE_REASON)).otherwise(F.col(quarantine.REASON))
    )
    return marked.drop("__rank", "__known_id")


SILVER_COLUMNS = (
    "event_id",
    "user_key",
    "event_type",
    "photo_id",
    "event_time",
    "event_date",
    "source_file",
    "ingest_time",
)
# A raw line names the app's user id; what the quarantine keeps of it carries the pseudonym instead.
_USER_ID_FIELD = r'"user_id"\s*:\s*("[^"]*"|[^,}\s]*)'


def mask_user_id(line: Column, pseudonym_key: bytes) -> Column:
    """``line`` with its ``"user_id": <value>`` replaced by ``"user_key": <pseudonym of that value>``."""
    raw = F.regexp_extract(line, _USER_ID_FIELD, 1)
    unquoted = F.regexp_replace(raw, r'^"|"$', "")
    pseudonym = pseudonym_id(unquoted, pseudonym_key, "user").cast("string")
    return F.when(
        raw != "",
        F.regexp_replace(line, _USER_ID_FIELD, F.concat(F.lit('"user_key": '), F.coalesce(pseudonym, F.lit("null")))),
    ).otherwise(line)


def events_with_outcome(marked: DataFrame, pseudonym_key: bytes, rule: str = "parse_app_events") -> DataFrame:
    """Every marked line in the columns of ``silver.events`` (the app's user id replaced by its keyed
    pseudonym ``user_key``, :mod:`lakehouse.transforms.privacy`) with the quarantine protocol's columns
    (:mod:`lakehouse.storage.quarantine`): the reason, and the raw line with the user id pseudonymised."""
    reason = F.col(quarantine.REASON)
    columns = {
        "event_id": F.col("event_id"),
        "user_key": pseudonym_id(F.col("user_id"), pseudonym_key, "user"),
        "event_type": F.col("event_type"),
        "photo_id": F.col("photo_id"),
        "event_time": F.col("event_time"),
        "event_date": F.col("event_date"),
        "source_file": F.col("source_file"),
        "ingest_time": F.col("ingest_time"),
    }
    protocol = quarantine.reject(
        reason, record=mask_user_id(F.col("value"), pseudonym_key), rule=rule, source=F.col("source_file")
    )
    return marked.select(*[columns[name].alias(name) for name in SILVER_COLUMNS], *protocol.values())
