"""Database snapshots in bronze -> silver current state (type 1) and history (type 2), pseudonymised."""

import csv
import os
from datetime import datetime

import pytest
from pyspark.sql import functions as F

from helpers import DEMO_PROJECT, run_step
from lakehouse.project import load_project
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.quarantine import REASON
from lakehouse.transforms.privacy import (
    PseudonymKeyError,
    pseudonym_id,
    pseudonym_key,
    pseudonym_text,
    pseudonymise,
    python_pseudonym_id,
    python_pseudonym_text,
)
from lakehouse.transforms.snapshot_changes import mark_key_problems

KEY = b"a test key that is long enough"
USERS = load_project(DEMO_PROJECT).source("appdb").table("users")
HEADER = ("user_id", "email", "display_name", "country", "created_at", "updated_at")


def land_users_csv(spark, config, folder, rows, taken_at: datetime):
    """Write users.csv as the application exported it at ``taken_at`` and land it in bronze."""
    folder.mkdir(parents=True)
    path = folder / "users.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    os.utime(path, (taken_at.timestamp(), taken_at.timestamp()))
    return run_step(spark, config, "ingest_appdb", tables=["users"], method="csv", csv_dir=str(folder))


def user(user_id, country, email=None):
    return (
        user_id,
        email or f"user{user_id}@example.com",
        f"Name{user_id}",
        country,
        "2026-01-01 00:00:00",
        "2026-01-02 00:00:00",
    )


def test_spark_pseudonyms_equal_python_hmac(spark):
    df = spark.createDataFrame([(7, "ana@example.com"), (None, None)], "user_id bigint, email string")
    rows = df.select(
        pseudonym_id(F.col("user_id"), KEY, "user").alias("u"), pseudonym_text(F.col("email"), KEY, "email").alias("e")
    ).collect()
    assert rows[0].u == python_pseudonym_id(7, KEY, "user") and 0 < rows[0].u < 2**60
    assert rows[0].e == python_pseudonym_text("ana@example.com", KEY, "email") and len(rows[0].e) == 64
    assert rows[1].u is None and rows[1].e is None
    # another key or another purpose gives an unrelated pseudonym
    assert python_pseudonym_id(7, b"another key of enough length", "user") != rows[0].u
    assert python_pseudonym_id(7, KEY, "photo") != rows[0].u


def test_pseudonymise_replaces_and_drops_private_columns(spark):
    df = spark.createDataFrame(
        [user(1, "DE")], ", ".join(f"{c} string" if c != "user_id" else "user_id bigint" for c in HEADER)
    )
    out = pseudonymise(df, USERS.private, KEY)
    assert out.columns == ["user_key", "email_hash", "country", "created_at", "updated_at"]
    row = out.first()
    assert row.user_key == python_pseudonym_id(1, KEY, "user")
    assert "user1@example.com" not in str(row) and "Name1" not in str(row)


def test_key_comes_from_the_environment_or_a_local_file(config, tmp_path):
    assert pseudonym_key(config, environ={"LAKEHOUSE_PSEUDONYM_KEY": "k" * 20}) == b"k" * 20
    with pytest.raises(PseudonymKeyError, match="at least"):
        pseudonym_key(config, environ={"LAKEHOUSE_PSEUDONYM_KEY": "short"})
    from dataclasses import replace

    from lakehouse.project.config import PrivacyConfig

    local = replace(config, privacy=PrivacyConfig(key_file=str(tmp_path / "secrets" / "k")))
    generated = pseudonym_key(local, environ={})
    assert generated == pseudonym_key(local, environ={}) and len(generated) == 64  # made once, then reused
    assert oct((tmp_path / "secrets" / "k").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(PseudonymKeyError, match="LAKEHOUSE_PSEUDONYM_KEY"):
        pseudonym_key(replace(config, privacy=PrivacyConfig(key_file=None)), environ={})

    # processes that start at once on a fresh checkout all end up with one and the same complete key
    import multiprocessing

    fresh = replace(config, privacy=PrivacyConfig(key_file=str(tmp_path / "race" / "k")))
    with multiprocessing.get_context("fork").Pool(4) as pool:
        keys = pool.starmap(pseudonym_key, [(fresh, {})] * 16)
    assert len(set(keys)) == 1 and len(keys[0]) == 64 and keys[0] == pseudonym_key(fresh, environ={})
    assert sorted(p.name for p in (tmp_path / "race").iterdir()) == ["k"]  # no drafts left behind


def test_null_and_repeated_keys_are_marked(spark):
    df = spark.createDataFrame([(1, "a"), (2, "b"), (2, "c"), (None, "d")], "k bigint, v string")
    reasons = {(r.k, r.v): r[REASON] for r in mark_key_problems(df, ("k",)).collect()}
    assert reasons == {(1, "a"): None, (2, "b"): "duplicate_key", (2, "c"): "duplicate_key", (None, "d"): "null_key:k"}


@pytest.mark.e2e
def test_snapshots_become_current_state_and_history(spark, config, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_PSEUDONYM_KEY", KEY.decode())
    t1, t2, t3 = datetime(2026, 11, 1, 12), datetime(2026, 11, 2, 12), datetime(2026, 11, 3, 12)
    land_users_csv(spark, config, tmp_path / "s1", [user(1, "US"), user(2, "DE"), user(3, "FR")], t1)
    # day 2: user 2 moved, user 3 deleted their account, user 4 signed up; user 5 is exported twice (a bug)
    land_users_csv(
        spark, config, tmp_path / "s2", [user(1, "US"), user(2, "BR"), user(4, "JP"), user(5, "IN"), user(5, "GB")], t2
    )

    first = run_step(spark, config, "silver.users")
    assert first.counts["snapshots applied"] == 2
    assert (
        first.counts["snapshot rows in"] == 8 and first.counts["rows quarantined"] == 2
    )  # rows in = out + quarantined

    key_of = {python_pseudonym_id(i, KEY, "user"): i for i in range(1, 6)}
    current = {key_of[r.user_key]: r for r in read_table(spark, config, "silver.users").collect()}
    assert {i: r.country for i, r in current.items()} == {1: "US", 2: "BR", 4: "JP"}
    assert current[1]._snapshot_time == t1 and current[2]._snapshot_time == t2  # unchanged rows keep their snapshot
    quarantined = read_table(spark, config, "silver.users_quarantine").collect()
    assert sorted(r.reason for r in quarantined) == ["duplicate_key", "duplicate_key"]
    assert all("@example.com" not in r.record for r in quarantined)  # no raw e-mail in silver, not even there

    history = sorted(
        (
            (key_of[r.user_key], r.country, r.valid_from, r.valid_to, r.is_current, r.deleted)
            for r in read_table(spark, config, "silver.users_history").collect()
        ),
        key=lambda row: (row[0], row[2]),
    )
    assert history == [
        (1, "US", t1, None, True, False),
        (2, "DE", t1, t2, False, False),
        (2, "BR", t2, None, True, False),
        (3, "FR", t1, t2, False, True),
        (4, "JP", t2, None, True, False),
    ]
    silver_text = " ".join(
        str(r) for t in ("silver.users", "silver.users_history") for r in read_table(spark, config, t).collect()
    )
    assert "example.com" not in silver_text and "Name1" not in silver_text

    # nothing new: a re-run commits nothing
    versions = {t: current_version(spark, config.table_path(t)) for t in ("silver.users", "silver.users_history")}
    again = run_step(spark, config, "silver.users")
    assert again.counts["snapshots applied"] == 0
    assert {t: current_version(spark, config.table_path(t)) for t in versions} == versions

    # day 3: user 3 comes back, user 4 changes e-mail (a private column: still a new version)
    land_users_csv(
        spark,
        config,
        tmp_path / "s3",
        [user(1, "US"), user(2, "BR"), user(3, "FR"), user(4, "JP", "new4@example.com")],
        t3,
    )
    run_step(spark, config, "silver.users")
    history = read_table(spark, config, "silver.users_history")
    current_versions = history.where("is_current").select("user_key", "email_hash", "country", "valid_from")
    current_now = read_table(spark, config, "silver.users").select("user_key", "email_hash", "country")
    assert sorted(current_versions.drop("valid_from").collect()) == sorted(current_now.collect())
    versions_of = {key_of[r.user_key]: r["count"] for r in history.groupBy("user_key").count().collect()}
    assert versions_of == {1: 1, 2: 2, 3: 2, 4: 2}
    assert history.where("is_current AND valid_to IS NOT NULL").count() == 0


@pytest.mark.e2e
def test_content_that_comes_back_lands_each_time_and_an_untyped_row_keeps_its_key(spark, config, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_PSEUDONYM_KEY", KEY.decode())
    a, b = [user(1, "US"), user(2, "DE")], [user(1, "US"), user(2, "BR")]
    for day, rows in enumerate((a, b, a, b), start=1):  # the same two contents, alternating
        landed = land_users_csv(spark, config, tmp_path / f"s{day}", rows, datetime(2026, 11, day, 12))
        assert landed.counts["snapshots landed"] == 1, day
    bronze = read_table(spark, config, "bronze.appdb_users")
    assert bronze.select("_snapshot_time").distinct().count() == 4 and bronze.count() == 8
    applied = run_step(spark, config, "silver.users")
    assert applied.counts["snapshots applied"] == 4
    key_of = {python_pseudonym_id(i, KEY, "user"): i for i in (1, 2)}
    current = {key_of[r.user_key]: r.country for r in read_table(spark, config, "silver.users").collect()}
    assert current == {1: "US", 2: "BR"}  # silver ends at B
    history = read_table(spark, config, "silver.users_history").where(
        F.col("user_key") == python_pseudonym_id(2, KEY, "user")
    )
    assert sorted(r.country for r in history.collect()) == ["BR", "BR", "DE", "DE"]

    # user 2's row comes with a time that does not type: it is quarantined in bronze, and silver keeps user 2
    broken = (2, "b@example.com", "Ben", "CL", "yesterday at noon", "2026-01-02 00:00:00")
    land_users_csv(spark, config, tmp_path / "s5", [user(1, "US"), broken], datetime(2026, 11, 5, 12))
    reasons = [r.reason for r in read_table(spark, config, "bronze.appdb_users_quarantine").collect()]
    assert reasons == ["bad_value:created_at"]
    assert run_step(spark, config, "silver.users").counts["snapshots applied"] == 1
    current = {key_of[r.user_key]: r.country for r in read_table(spark, config, "silver.users").collect()}
    assert current == {1: "US", 2: "BR"}  # held, not deleted (and not changed to the unusable row's values)
    open_versions = read_table(spark, config, "silver.users_history").where("is_current")
    assert sorted(key_of[r.user_key] for r in open_versions.collect()) == [1, 2]
    assert read_table(spark, config, "silver.users_history").where("deleted").count() == 0
