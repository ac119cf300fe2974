"""The photo popularity training table end to end: PostgreSQL + logs + photos -> bronze -> silver -> gold."""

import argparse
from dataclasses import replace

import pytest
from pyspark.sql import functions as F

from helpers import sorted_rows
from lakehouse.catalog import current_version, read_table
from lakehouse.job import run_job
from lakehouse.pipeline import load_job, pipeline_job_names
from lakehouse.privacy import pseudonym_key, python_pseudonym_id
from lakehouse.scenario.sources import stage_sources

GOLD = "gold.photo_popularity_training"
APPDB_ONLY = {"ingest_database": {"database": ["appdb"]}, "build_silver_snapshots": {"database": ["appdb"]}}


def run(spark, config, name):
    args = argparse.Namespace(**APPDB_ONLY.get(name, {}))
    return run_job(name, load_job(name).run, args, spark=spark, config=config)


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory, pg_server):
    from conftest import make_config

    config = make_config(tmp_path_factory.mktemp("popularity"))
    config = replace(config, privacy=replace(config.privacy, key_file=str(tmp_path_factory.mktemp("key") / "key")))
    stage_sources(config)
    results = {name: run(spark, config, name) for name in pipeline_job_names(select=[GOLD])}
    return config, results


@pytest.mark.e2e
def test_every_photo_is_a_training_row_or_left_out_for_a_reason(spark, built):
    config, results = built
    counts = results["build_gold_photo_popularity"].counts
    photos = read_table(spark, config, "silver.photos").count()
    gold = read_table(spark, config, GOLD)
    left_out = {k: v for k, v in counts.items() if k.startswith("photos left out")}
    assert counts["photos in silver"] == photos and gold.count() == counts["training rows"] > 0.8 * photos
    assert gold.count() + sum(left_out.values()) == photos
    assert left_out.get("photos left out: label_window_open", 0) > 0  # the last day's photos are still collecting likes
    assert gold.where(F.col("model_version").isNull()).count() == 0
    assert gold.agg(F.sum("likes_24h")).first()[0] > 0


@pytest.mark.e2e
def test_features_recomputed_by_brute_force_use_only_the_past(spark, built):
    config, _ = built
    gold = read_table(spark, config, GOLD).select("photo_id", "author_key", "uploaded_at", "author_logins_before",
                                                 "author_likes_received_before", "likes_24h")
    events = read_table(spark, config, "silver.events")
    photos = read_table(spark, config, "silver.photos").select("photo_id", F.col("user_key").alias("owner"))
    logins = (
        gold.join(events.where("event_type = 'login'").select("user_key", "event_time"), F.col("user_key") == F.col("author_key"), "left")
        .groupBy("photo_id").agg(F.count(F.when(F.col("event_time") < F.col("uploaded_at"), 1)).alias("expected"))
    )
    received = (
        events.where("event_type = 'like'").join(photos, "photo_id").select("owner", "event_time")
        .join(gold.select("photo_id", "author_key", "uploaded_at"), F.col("owner") == F.col("author_key"))
        .where(F.col("event_time") < F.col("uploaded_at")).groupBy("photo_id").agg(F.count(F.lit(1)).alias("expected"))
    )
    label = (
        events.where("event_type = 'like'").select("photo_id", "event_time").join(gold.select("photo_id", "uploaded_at"), "photo_id")
        .where((F.col("event_time") >= F.col("uploaded_at")) & (F.col("event_time") < F.col("uploaded_at") + F.expr("INTERVAL 24 HOURS")))
        .groupBy("photo_id").agg(F.count(F.lit(1)).alias("expected"))
    )
    for column, expected in (("author_logins_before", logins), ("author_likes_received_before", received), ("likes_24h", label)):
        compared = gold.join(expected, "photo_id", "left").where(F.col(column) != F.coalesce("expected", F.lit(0)))
        assert compared.count() == 0, f"{column}: {compared.limit(3).collect()}"
    assert gold.where("author_logins_before > 0").count() > 0


@pytest.mark.e2e
def test_authors_are_pseudonyms_consistent_across_the_database_and_the_logs(spark, built):
    config, _ = built
    key = pseudonym_key(config)
    raw = {r.photo_id: r.user_id for r in read_table(spark, config, "bronze.appdb_photos").select("photo_id", "user_id").collect()}
    gold = read_table(spark, config, GOLD).select("photo_id", "author_key").collect()
    assert all(row.author_key == python_pseudonym_id(raw[row.photo_id], key, "user") for row in gold)
    assert not {row.author_key for row in gold} & set(raw.values())
    users = read_table(spark, config, "silver.users")
    assert "email" not in users.columns and "display_name" not in users.columns
    assert users.where(F.col("email_hash").contains("@")).count() == 0


@pytest.mark.e2e
def test_same_silver_versions_give_byte_for_byte_the_same_gold(spark, built):
    config, results = built
    first = current_version(spark, config.table_path(GOLD))
    again = run(spark, config, "build_gold_photo_popularity")
    second = current_version(spark, config.table_path(GOLD))
    assert second > first and again.counts["training rows"] == results["build_gold_photo_popularity"].counts["training rows"]
    assert sorted_rows(read_table(spark, config, GOLD, version=first)) == sorted_rows(read_table(spark, config, GOLD, version=second))
