"""gold.photo_popularity_training: point-in-time correct features and the 24-hour label, on tiny frames."""

import random
from datetime import datetime, timedelta

from helpers import demo_table
from lakehouse.storage.writer import check_schema
from lakehouse.transforms.popularity import (
    EVENT_KINDS,
    RECENT_DAYS,
    author_features_before_upload,
    excluded_photos,
    followers_at_upload,
    likes_in_first_hours,
    photo_popularity_training,
)

T = datetime(2026, 11, 5, 12, 0, 0)  # photo 1's upload: the label window opens here
EVENTS_SCHEMA = "user_key bigint, event_type string, photo_id bigint, event_time timestamp"
PHOTOS_SCHEMA = "photo_id bigint, user_key bigint, uploaded_at timestamp"
AUTHOR, FAN = 1, 2

EVENTS = [
    (AUTHOR, "like", 77, T - timedelta(days=30)),  # long ago: counts before, not in the last 7 days
    (AUTHOR, "upload", 0, T - timedelta(days=3)),  # the author's earlier photo 0
    (FAN, "like", 0, T - timedelta(days=2)),  # photo 0 liked: a like the author received
    (AUTHOR, "login", None, T - timedelta(days=2)),
    (AUTHOR, "view", 9, T - timedelta(microseconds=1)),  # just before the upload: counts
    (AUTHOR, "upload", 1, T),  # the upload itself: not "before"
    (AUTHOR, "login", None, T),  # same instant as the upload: not before either
    (AUTHOR, "login", None, T + timedelta(hours=1)),  # after: must not count
    (FAN, "like", 0, T + timedelta(hours=2)),  # after: not a like received before photo 1
    (FAN, "like", 1, T + timedelta(hours=1)),  # label
    (3, "like", 1, T + timedelta(hours=23, minutes=59)),  # label
    (4, "like", 1, T + timedelta(hours=24)),  # window closed: not label
    (FAN, "like", 1, T - timedelta(hours=1)),  # a like before the upload (clock skew): not label
]
PHOTOS = [(0, AUTHOR, T - timedelta(days=3)), (1, AUTHOR, T)]


def frames(spark, events=EVENTS):
    return spark.createDataFrame(events, EVENTS_SCHEMA), spark.createDataFrame(PHOTOS, PHOTOS_SCHEMA)


def by_photo(df):
    return {row.photo_id: row.asDict() for row in df.collect()}


def test_author_features_use_only_events_before_the_upload(spark):
    events, photos = frames(spark)
    features = by_photo(author_features_before_upload(events, photos))[1]
    assert features == {
        "photo_id": 1,
        "author_logins_before": 1,
        "author_logins_7d": 1,
        "author_views_before": 1,
        "author_views_7d": 1,
        "author_likes_given_before": 1,
        "author_likes_given_7d": 0,
        "author_uploads_before": 1,
        "author_uploads_7d": 1,
        # photo 0's like at T-2d, and the skewed like on photo 1 itself at T-1h (it did happen before T)
        "author_likes_received_before": 2,
        "author_likes_received_7d": 2,
    }
    first_photo = by_photo(author_features_before_upload(events, photos))[0]
    assert first_photo["author_likes_given_before"] == 1 and first_photo["author_uploads_before"] == 0


def test_events_after_the_upload_never_change_the_features(spark):
    rng = random.Random(7)
    later = [
        (
            rng.choice([AUTHOR, FAN, 5]),
            rng.choice(["login", "view", "like", "upload"]),
            rng.choice([0, 1, 9]),
            T + timedelta(seconds=rng.randint(0, 5 * 86_400)),
        )
        for _ in range(200)
    ]
    events, photos = frames(spark)
    with_later, _ = frames(spark, EVENTS + later)
    assert (
        by_photo(author_features_before_upload(with_later, photos))[1]
        == by_photo(author_features_before_upload(events, photos))[1]
    )
    # ...while one more event just before the upload does
    earlier, _ = frames(spark, EVENTS + [(AUTHOR, "login", None, T - timedelta(seconds=1))])
    assert by_photo(author_features_before_upload(earlier, photos))[1]["author_logins_before"] == 2


def test_label_counts_likes_in_the_first_24_hours_only(spark):
    events, photos = frames(spark)
    assert by_photo(likes_in_first_hours(events, photos))[1]["likes_24h"] == 2


def test_followers_as_of_the_upload(spark):
    _, photos = frames(spark)
    follows = spark.createDataFrame(
        [
            (3, AUTHOR, T - timedelta(days=1), None, False),  # follows since before: counts
            (4, AUTHOR, T + timedelta(hours=1), None, False),  # followed later: no
            (5, AUTHOR, T - timedelta(days=10), T - timedelta(hours=1), True),  # unfollowed before the upload: no
            (6, AUTHOR, T - timedelta(days=5), T + timedelta(hours=5), True),  # unfollowed after it: counts
            (7, AUTHOR, T - timedelta(days=5), T - timedelta(hours=5), False),  # a changed version, then...
            (7, AUTHOR, T - timedelta(days=5), None, False),  # ...the current one: counted once
        ],
        "follower_key bigint, followee_key bigint, created_at timestamp, valid_to timestamp, deleted boolean",
    )
    assert by_photo(followers_at_upload(follows, photos))[1]["author_followers"] == 3


def test_training_rows_fit_the_table_and_leave_out_open_windows_and_missing_images(spark):
    events, _ = frames(spark)
    photos = spark.createDataFrame(
        [
            (1, AUTHOR, "file:/p/1.png", "new in", T),
            (2, AUTHOR, "file:/p/2.png", "", T + timedelta(hours=3)),  # window still open at the horizon
            (3, FAN, "file:/p/missing.png", None, T - timedelta(days=1)),  # its object never validated
        ],
        "photo_id bigint, user_key bigint, image_uri string, caption string, uploaded_at timestamp",
    )
    users = spark.createDataFrame(
        [(AUTHOR, "DE", T - timedelta(days=100))], "user_key bigint, country string, created_at timestamp"
    )
    follows = spark.createDataFrame(
        [], "follower_key bigint, followee_key bigint, created_at timestamp, valid_to timestamp, deleted boolean"
    )
    refs = spark.createDataFrame(
        [("file:/p/1.png", "h1"), ("file:/p/2.png", "h1")], "object_uri string, content_hash string"
    )
    images = spark.createDataFrame(
        [("h1", "dress", 28, 28, b"png")], "content_hash string, label string, width int, height int, content binary"
    )
    predictions = spark.createDataFrame(
        [
            ("h1", "old", 1, "trouser", 0.6, [0.4, 0.6], T - timedelta(days=9)),
            ("h1", "new", 3, "dress", 0.9, [0.1, 0.9], T - timedelta(days=1)),
        ],
        "content_hash string, model_version string, predicted_class int, predicted_label string, confidence float, "
        "class_probabilities array<float>, predicted_at timestamp",
    )
    rows = photo_popularity_training(photos, users, follows, events, refs, images, predictions)
    check_schema(rows, demo_table("gold.photo_popularity_training"))
    (row,) = rows.collect()
    assert (row.photo_id, row.likes_24h, row.model_version, row.predicted_label, row.category) == (
        1,
        2,
        "new",
        "dress",
        "dress",
    )
    assert (row.author_account_age_days, row.author_followers, row.upload_hour, row.caption_length) == (100, 0, 12, 6)
    assert excluded_photos(photos, rows, events) == {"label_window_open": 1, "no_valid_image": 1}


def test_features_and_followers_equal_their_definition_on_random_timelines_with_ties(spark):
    """The running sums against the definitions, counted row by row in Python: every instant on a 12-hour
    grid or a microsecond off it, so events share an upload's instant, fall exactly 7 days before it or
    just inside or outside; follows with repeated, overlapping and deleted versions, and a deletion before
    the follow was made."""
    rng = random.Random(11)
    grid = [T + timedelta(hours=12 * k) for k in range(-20, 21)]
    grid += [at + timedelta(microseconds=d) for at in grid[::4] for d in (-1, 1)]
    users = [1, 2, 3]
    photos = [(p, rng.choice(users), rng.choice(grid)) for p in range(40)]
    events = [(rng.choice(users), rng.choice(EVENT_KINDS), rng.randrange(40), rng.choice(grid)) for _ in range(400)]
    follows = []
    for follower in range(10, 30):
        for _ in range(rng.randint(1, 3)):  # versions of one follow
            created = rng.choice(grid)
            valid_to = rng.choice([None, *grid])
            deleted = valid_to is not None and rng.random() < 0.7
            follows.append((follower, rng.choice(users[:2]), created, valid_to, deleted))
    author_of = {p: u for p, u, _ in photos}

    def expected(photo):
        _, author, at = photo
        own = [(kind, t) for u, kind, _, t in events if u == author and t < at]
        received = [t for _, kind, p, t in events if kind == "like" and author_of.get(p) == author and t < at]
        week = at - timedelta(days=RECENT_DAYS)
        row = {"photo_id": photo[0]}
        for kind, name in zip(EVENT_KINDS, ("logins", "views", "likes_given", "uploads")):
            row[f"author_{name}_before"] = sum(k == kind for k, _ in own)
            row[f"author_{name}_7d"] = sum(k == kind and t >= week for k, t in own)
        row["author_likes_received_before"] = len(received)
        row["author_likes_received_7d"] = sum(t >= week for t in received)
        made_before = [(f, to, gone) for f, followee, made, to, gone in follows if followee == author and made < at]
        row["author_followers"] = len({f for f, to, gone in made_before if not (gone and to <= at)})
        return row

    events_df, photos_df = (spark.createDataFrame(events, EVENTS_SCHEMA), spark.createDataFrame(photos, PHOTOS_SCHEMA))
    follows_df = spark.createDataFrame(
        follows, "follower_key bigint, followee_key bigint, created_at timestamp, valid_to timestamp, deleted boolean"
    )
    got = by_photo(author_features_before_upload(events_df, photos_df))
    followers = by_photo(followers_at_upload(follows_df, photos_df))
    for photo_id, row in got.items():  # a photo without followers may have no row: the table fills in 0
        row["author_followers"] = followers.get(photo_id, {}).get("author_followers", 0)
    assert got == {photo[0]: expected(photo) for photo in photos}
