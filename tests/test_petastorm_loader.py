"""Petastorm, both ways (converter and batch reader): Spark's rows at the pinned version, a converter
cache that lives exactly as long as its table version, sharding, seeded shuffling, transforms."""

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import torch

from helpers import write_loader_versions
from lakehouse.catalog import read_table
from lakehouse.loaders.augment import CellDropout
from lakehouse.loaders.columns import UnsupportedColumnError
from lakehouse.loaders.petastorm_loader import cached_converter, petastorm_dataloader
from lakehouse.loaders.split import Split
from lakehouse.tables import get_table
from lakehouse.writer import Commit, append_rows

GOLD = "gold.user_activity_daily"
COLUMNS = ["user_key", "day_index", "n_events", "n_views"]


def keys(config, spark, version, **options):
    with petastorm_dataloader(spark, config, GOLD, version=version, columns=COLUMNS, batch_size=64, **options) as loader:
        return [u for batch in loader for u in batch["user_key"].tolist()]


@pytest.mark.parametrize("via", ["converter", "batch_reader"])
def test_each_way_yields_sparks_rows_at_each_version_sharded_and_shuffled(spark, config, via):
    v2, v3 = write_loader_versions(spark, config)
    for version in (v2, v3):
        with petastorm_dataloader(spark, config, GOLD, version=version, columns=COLUMNS, batch_size=64, via=via) as loader:
            loaded = [tuple(row) for b in loader for row in zip(*(b[name].tolist() for name in COLUMNS))]
        expected = [tuple(r) for r in read_table(spark, config, GOLD, version=version).select(*COLUMNS).collect()]
        assert sorted(loaded) == sorted(expected)
    per_rank = [keys(config, spark, v3, via=via, rank=rank, world_size=3, shuffle_seed=5) for rank in range(3)]
    assert all(per_rank) and Counter(u for ranked in per_rank for u in ranked) == Counter(range(1000, 1600))
    epoch0 = keys(config, spark, v3, via=via, shuffle_seed=5, epoch=0, workers_count=1)
    assert keys(config, spark, v3, via=via, shuffle_seed=5, epoch=0, workers_count=1) == epoch0  # seeded
    assert keys(config, spark, v3, via=via, shuffle_seed=5, epoch=1, workers_count=1) != epoch0  # a new epoch, a new order


def test_converter_cache_is_reused_while_the_version_holds_and_dropped_when_it_moves(spark, config):
    v2, v3 = write_loader_versions(spark, config)
    root = Path(config.loader_cache) / "converter" / GOLD
    first = cached_converter(spark, config, GOLD, v3, COLUMNS)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")}
    again = cached_converter(spark, config, GOLD, v3, COLUMNS)
    assert again.cache_dir_url == first.cache_dir_url and again.file_urls == first.file_urls
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")} == mtimes  # nothing materialised again
    holdout = cached_converter(spark, config, GOLD, v3, COLUMNS, split=Split("user_key", "holdout"))
    assert holdout.cache_dir_url != first.cache_dir_url and 0 < len(holdout) < len(first)
    old = cached_converter(spark, config, GOLD, v2, COLUMNS)  # an older pinned version next to the latest
    assert len(old) == 500 and Path(first.cache_dir_url.removeprefix("file://")).exists()

    row = spark.createDataFrame([(9999, date(2026, 11, 2), 1, 1, 1, 1, 0, 0)], get_table(GOLD).schema)
    v4 = append_rows(spark, config, get_table(GOLD), row, Commit("t", "r4")).version
    newest = cached_converter(spark, config, GOLD, v4, COLUMNS)
    assert len(newest) == 601
    for stale in (first, holdout, old):  # v2 and v3 are neither the pinned nor the latest version now
        assert not Path(stale.cache_dir_url.removeprefix("file://")).exists()
    assert len(list(root.glob("v*.json"))) == 1


@pytest.mark.parametrize("via", ["converter", "batch_reader"])
def test_split_and_transform_run_in_the_reader_workers(spark, config, via):
    _, v3 = write_loader_versions(spark, config)
    holdout = {r.user_key for r in read_table(spark, config, GOLD, version=v3).where(Split("user_key", "holdout").where()).collect()}
    with petastorm_dataloader(spark, config, GOLD, version=v3, columns=COLUMNS, batch_size=100, via=via,
                              split=Split("user_key", "holdout"), transform=CellDropout(["n_views"], p=0.5)) as loader:
        batches = list(loader)
    loaded = [u for b in batches for u in b["user_key"].tolist()]
    views = torch.cat([b["n_views"] for b in batches])
    assert sorted(loaded) == sorted(holdout)
    assert views.dtype == torch.float32 and 0.25 * len(loaded) < int(torch.isnan(views).sum()) < 0.75 * len(loaded)


def test_refuses_columns_it_cannot_turn_into_tensors(spark, config):
    write_loader_versions(spark, config)
    with pytest.raises(UnsupportedColumnError, match=r"event_date \(date\)"):
        with petastorm_dataloader(spark, config, GOLD, columns=["user_key", "event_date"]):
            pass
    with pytest.raises(UnsupportedColumnError, match=r"encoded columns must be binary: event_date \(date\)"):
        with petastorm_dataloader(spark, config, GOLD, columns=COLUMNS, encoded=["event_date"]):
            pass
