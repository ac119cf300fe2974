"""silver -> gold.photo_popularity_training: one row per photo, everything known when it was uploaded.

The lecture's nightly training table: photo metadata from the application database, the author's
activity computed from the event logs, the photo classifier's outputs and the image itself, with the
popularity label "likes in the first 24 hours".

Point-in-time correctness: every author feature counts only events strictly before the photo's upload
time (the moment the label window opens), computed with running sums over each user's timeline, never
by joining all of a user's events to all of their photos, so the cost stays linear however busy a user
is. Follows use the application's ``created_at`` (a follow counts from the moment it was made, until a
snapshot saw it deleted). Photos whose label window has not closed yet (it ends after the newest event in
silver) are left out: their label is still growing.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

LABEL_WINDOW_HOURS = 24
RECENT_DAYS = 7
_MICROS_PER_DAY = 86_400 * 1_000_000
EVENT_KINDS = ("login", "view", "like", "upload")


def _micros(column: str) -> Column:
    return F.unix_micros(F.col(column))


def author_features_before_upload(events: DataFrame, photos: DataFrame) -> DataFrame:
    """Per photo: counts of its author's own events of each kind, and of likes the author's photos
    received, over all time and over the last 7 days, all strictly before ``uploaded_at``.

    ``events``: silver.events (user_key, event_type, photo_id, event_time); ``photos``: (photo_id,
    user_key, uploaded_at). Each photo puts two marker rows on its author's timeline, one at its upload and
    one 7 days before it; a running sum ending one microsecond before each marker counts the events before
    it, and the last 7 days are the difference of the two. (A sliding 7-day frame would give the same
    numbers, but Spark recomputes a sliding frame over every row in it at every step: quadratic in a busy
    author's week, 495 s of the 100x bench.)
    """
    acted = events.select(
        "user_key",
        _micros("event_time").alias("at"),
        *[(F.col("event_type") == k).cast("int").alias(f"n_{k}") for k in EVENT_KINDS],
        F.lit(0).alias("n_likes_received"),
    )
    received = (
        events.where(F.col("event_type") == "like")
        .join(photos.select("photo_id", F.col("user_key").alias("author_key")), "photo_id")
        .select(
            F.col("author_key").alias("user_key"),
            _micros("event_time").alias("at"),
            *[F.lit(0).alias(f"n_{k}") for k in EVENT_KINDS],
            F.lit(1).alias("n_likes_received"),
        )
    )
    counted = [*[f"n_{k}" for k in EVENT_KINDS], "n_likes_received"]
    timeline = acted.unionByName(received).select(
        "*", F.lit(None).cast("bigint").alias("photo_id"), F.lit(None).cast("boolean").alias("week_before")
    )
    zeros = [F.lit(0).alias(c) for c in counted]
    upload = _micros("uploaded_at")
    markers = [
        photos.select("user_key", at.alias("at"), *zeros, "photo_id", F.lit(week).alias("week_before"))
        for at, week in ((upload, False), (upload - RECENT_DAYS * _MICROS_PER_DAY, True))
    ]
    before = Window.partitionBy("user_key").orderBy("at").rangeBetween(Window.unboundedPreceding, -1)
    running = (
        timeline.unionByName(markers[0])
        .unionByName(markers[1])
        .select(
            "photo_id",
            "week_before",
            *[F.coalesce(F.sum(c).over(before), F.lit(0)).alias(c) for c in counted],
        )
    )
    at_marker = running.where(F.col("photo_id").isNotNull()).groupBy("photo_id")
    names = {"login": "logins", "view": "views", "like": "likes_given", "upload": "uploads"}
    features = []
    for column in counted:
        name = names.get(column[2:], "likes_received")
        at_upload = F.max(F.when(~F.col("week_before"), F.col(column)))
        a_week_earlier = F.max(F.when(F.col("week_before"), F.col(column)))
        features += [
            at_upload.cast("bigint").alias(f"author_{name}_before"),
            (at_upload - a_week_earlier).cast("bigint").alias(f"author_{name}_7d"),
        ]
    return at_marker.agg(*features)


_FOREVER = 1 << 62  # microseconds after the epoch: later than any timestamp (year ~146,000)


def followers_at_upload(follows_history: DataFrame, photos: DataFrame) -> DataFrame:
    """Per photo: how many users followed its author when it was uploaded (made before, not yet seen deleted).

    ``follows_history``: silver's history of appdb.follows (follower_key, followee_key, created_at,
    valid_to, deleted); ``photos``: (photo_id, user_key, uploaded_at). A version counts from just after
    its ``created_at`` until just before its ``valid_to`` if a snapshot saw it deleted, for good otherwise.
    The versions of one follow are merged into the spans it counted; each span is +1 at its start and -1
    after its end on the followee's timeline, and a running sum at the upload counts the followers, each
    once. Linear in follows and photos, where joining every photo to every follow of its author grows with
    their product (a popular author's).
    """
    pair = ["follower_key", "followee_key"]
    start = _micros("created_at") + 1
    end = F.when(~F.col("deleted"), F.lit(_FOREVER)).otherwise(_micros("valid_to") - 1)
    counted = (
        follows_history.where(F.col("follower_key").isNotNull() & F.col("followee_key").isNotNull())
        .select(*pair, start.alias("start"), end.alias("end"))
        .where(F.col("start") <= F.col("end"))  # a null time or a version deleted before it was made: never
    )
    by_start = Window.partitionBy(*pair).orderBy("start", "end")
    reach = F.max("end").over(by_start.rowsBetween(Window.unboundedPreceding, -1))  # the spans so far end here
    opens = F.when(reach.isNull() | (F.col("start") > reach + 1), 1).otherwise(0)
    spans = (
        counted.withColumn("opens", opens)
        .withColumn("span", F.sum("opens").over(by_start.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy(*pair, "span")
        .agg(F.min("start").alias("start"), F.max("end").alias("end"))
    )
    changes = spans.select(
        F.col("followee_key").alias("user_key"), F.col("start").alias("at"), F.lit(1).alias("change")
    ).unionByName(
        spans.where(F.col("end") < _FOREVER).select(
            F.col("followee_key").alias("user_key"), (F.col("end") + 1).alias("at"), F.lit(-1).alias("change")
        )
    )
    markers = photos.select("user_key", _micros("uploaded_at").alias("at"), F.lit(0).alias("change"), "photo_id")
    up_to = Window.partitionBy("user_key").orderBy("at").rangeBetween(Window.unboundedPreceding, 0)
    return (
        changes.withColumn("photo_id", F.lit(None).cast("bigint"))
        .unionByName(markers)
        .select("photo_id", F.coalesce(F.sum("change").over(up_to), F.lit(0)).alias("author_followers"))
        .where(F.col("photo_id").isNotNull())
    )


def likes_in_first_hours(events: DataFrame, photos: DataFrame, hours: int = LABEL_WINDOW_HOURS) -> DataFrame:
    """Per photo: likes with ``uploaded_at <= event_time < uploaded_at + hours`` (the label)."""
    likes = events.where(F.col("event_type") == "like").select("photo_id", "event_time")
    window_end = F.col("uploaded_at") + F.expr(f"INTERVAL {hours} HOURS")
    return (
        photos.select("photo_id", "uploaded_at")
        .join(likes, "photo_id")
        .where((F.col("event_time") >= F.col("uploaded_at")) & (F.col("event_time") < window_end))
        .groupBy("photo_id")
        .agg(F.count(F.lit(1)).alias("likes_24h"))
    )


def latest_model_predictions(predictions: DataFrame) -> DataFrame:
    """The predictions of the newest model version only (by when its first prediction was made)."""
    newest = (
        predictions.groupBy("model_version")
        .agg(F.min("predicted_at").alias("since"))
        .orderBy(F.desc("since"), F.desc("model_version"))
        .limit(1)
    )
    return predictions.join(newest.select("model_version"), "model_version")


def photo_popularity_training(
    photos: DataFrame,
    users: DataFrame,
    follows_history: DataFrame,
    events: DataFrame,
    image_references: DataFrame,
    images: DataFrame,
    predictions: DataFrame,
) -> DataFrame:
    """The gold table's rows (see the module doc). Photos without a valid image, or whose label window
    is still open, are not in it; :func:`excluded_photos` says which and why."""
    horizon = events.agg(F.max("event_time").alias("horizon"))
    eligible = (
        photos.crossJoin(horizon)
        .where(F.col("uploaded_at") + F.expr(f"INTERVAL {LABEL_WINDOW_HOURS} HOURS") <= F.col("horizon"))
        .drop("horizon")
    )
    image = image_references.select(F.col("object_uri").alias("image_uri"), "content_hash").join(
        images.select(
            "content_hash", F.col("label").alias("category"), "width", "height", F.col("content").alias("image")
        ),
        "content_hash",
    )
    predicted = latest_model_predictions(predictions).select(
        "content_hash",
        "model_version",
        "predicted_class",
        "predicted_label",
        F.col("confidence").alias("prediction_confidence"),
        "class_probabilities",
    )
    author = users.select(
        F.col("user_key"), F.col("country").alias("author_country"), F.col("created_at").alias("author_created_at")
    )
    keys = eligible.select("photo_id", "user_key", "uploaded_at")
    rows = (
        eligible.join(image, "image_uri")
        .join(predicted, "content_hash", "left")
        .join(author, "user_key", "left")
        .join(author_features_before_upload(events, keys), "photo_id", "left")
        .join(followers_at_upload(follows_history, keys), "photo_id", "left")
        .join(likes_in_first_hours(events, keys), "photo_id", "left")
    )
    zero_if_missing = [
        "author_followers",
        "likes_24h",
        *[
            f"author_{n}_{w}"
            for n in ("logins", "views", "likes_given", "uploads", "likes_received")
            for w in ("before", "7d")
        ],
    ]
    rows = rows.fillna(0, subset=zero_if_missing)
    return rows.select(
        "photo_id",
        F.col("user_key").alias("author_key"),
        "uploaded_at",
        F.hour("uploaded_at").alias("upload_hour"),
        F.dayofweek("uploaded_at").alias("upload_weekday"),
        F.length(F.coalesce("caption", F.lit(""))).alias("caption_length"),
        "category",
        "content_hash",
        "width",
        "height",
        "image",
        "model_version",
        "predicted_class",
        "predicted_label",
        "prediction_confidence",
        "class_probabilities",
        "author_country",
        F.floor((F.unix_seconds("uploaded_at") - F.unix_seconds("author_created_at")) / 86_400)
        .cast("int")
        .alias("author_account_age_days"),
        "author_followers",
        *[c for c in zero_if_missing if c.startswith("author_") and c != "author_followers"],
        F.col("likes_24h").cast("int").alias("likes_24h"),
    )


def excluded_photos(photos: DataFrame, training: DataFrame, events: DataFrame) -> dict[str, int]:
    """How many photos are not in the training rows, by reason (``label_window_open``, ``no_valid_image``)."""
    horizon = events.agg(F.max("event_time").alias("horizon"))
    missing = photos.join(training.select("photo_id"), "photo_id", "left_anti").crossJoin(horizon)
    open_window = F.col("uploaded_at") + F.expr(f"INTERVAL {LABEL_WINDOW_HOURS} HOURS") > F.col("horizon")
    counts = missing.groupBy(
        F.when(open_window, "label_window_open").otherwise("no_valid_image").alias("reason")
    ).count()
    return {row.reason: row["count"] for row in counts.collect()}
