"""The photo popularity training table end to end: PostgreSQL + logs + photos -> bronze -> silver -> gold,
then into both loaders and the training job."""

import argparse
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from pyspark.sql import functions as F

from helpers import sorted_rows
from jobs import train_popularity
from lakehouse.catalog import current_version, read_table
from lakehouse.job import run_job
from lakehouse.loaders.arrow_loader import arrow_dataloader
from lakehouse.loaders.augment import DecodeImages
from lakehouse.loaders.petastorm_loader import petastorm_dataloader
from lakehouse.loaders.split import Split
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


def training_arguments(*options):
    parser = argparse.ArgumentParser()
    train_popularity.add_arguments(parser)
    return parser.parse_args([*options, "--epochs", "2", "--workers", "1"])


@pytest.mark.e2e
@pytest.mark.parametrize("loader", ["arrow", "petastorm"])
def test_training_logs_per_epoch_metrics_the_model_and_the_exact_rows_it_read(spark, built, loader):
    import mlflow
    import mlflow.pytorch

    from lakehouse.lineage.mlflow_runs import configure_mlflow, reproduce, run_inputs

    config, _ = built
    version = current_version(spark, config.table_path(GOLD))
    result = run_job("train_popularity", train_popularity.run, training_arguments("--loader", loader), spark=spark, config=config)
    counts, run_id = result.counts, result.counts["MLflow run"]
    configure_mlflow(config, train_popularity.EXPERIMENT)
    recorded = mlflow.get_run(run_id)
    assert recorded.data.params["loader"] == loader and recorded.data.params["table_version"] == str(version)
    history = mlflow.MlflowClient().get_metric_history(run_id, "holdout_mae")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1]
    assert {(i["name"], i["version"], i["context"]) for i in run_inputs(run_id)} == {
        (f"{GOLD}@v{version}", version, "training"), (f"{GOLD}@v{version}", version, "evaluation")}

    gold = read_table(spark, config, GOLD, version=version)
    trained_on = reproduce(spark, config, run_id)
    assert trained_on.count() == counts["training rows"] and counts["training rows"] + counts["held-out rows"] == gold.count()
    held_out = gold.join(trained_on.select("photo_id"), "photo_id", "left_anti")
    assert held_out.count() == counts["held-out rows"] > 0.1 * gold.count()
    lineage = mlflow.artifacts.load_text(f"runs:/{run_id}/lineage.txt")
    assert f"{GOLD}@{version}" in lineage and "silver.events@" in lineage and "bronze.app_events@" in lineage

    model = mlflow.pytorch.load_model(f"runs:/{run_id}/model")
    with train_popularity.open_batches(
        SimpleNamespace(spark=spark, config=config), training_arguments("--loader", loader), version,
        Split("photo_id", "holdout"), epoch=0,
    ) as batches:
        batch = next(iter(batches))
    predicted = model.eval()(batch)
    assert predicted.shape == batch["photo_id"].shape and torch.isfinite(predicted).all()
    assert counts["held-out MAE (likes)"] < counts["mean-predictor MAE (likes)"] * 1.5


@pytest.mark.e2e
def test_both_loaders_hand_over_the_pictures_spark_holds(spark, built):
    config, _ = built
    version = current_version(spark, config.table_path(GOLD))
    split = Split("photo_id", "holdout")
    expected = {
        r.photo_id: DecodeImages("image")({"image": [r.image]})["image"][0]
        for r in read_table(spark, config, GOLD, version=version).where(split.where()).select("photo_id", "image").collect()
    }
    options = dict(columns=["photo_id", "likes_24h"], encoded=["image"], transform=DecodeImages("image"), split=split, batch_size=50)
    arrow = arrow_dataloader(spark, config, GOLD, version, num_workers=2, **options)
    with petastorm_dataloader(spark, config, GOLD, version, via="batch_reader", **options) as petastorm:
        for loader in (arrow, petastorm):
            seen = {}
            for batch in loader:
                seen.update(zip(batch["photo_id"].tolist(), batch["image"]))
            assert seen.keys() == expected.keys()
            assert all(torch.equal(seen[photo], expected[photo]) for photo in expected)
