"""Petastorm, both ways (converter and batch reader): Spark's rows at the pinned version, a converter
cache that lives exactly as long as its table version, sharding (every rank as many batches), seeded
row-group shuffling, transforms."""

import math
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from helpers import demo_table, write_loader_versions
from lakehouse.loaders.arrow_loader import resolve_snapshot
from lakehouse.loaders.augment import CellDropout
from lakehouse.loaders.columns import UnsupportedColumnError
from lakehouse.loaders.petastorm_loader import batch_reader_loader, cached_converter, petastorm_dataloader
from lakehouse.loaders.split import Split
from lakehouse.storage.catalog import current_version, read_table
from lakehouse.storage.writer import Commit, append_rows

GOLD = "gold.user_activity_daily"
COLUMNS = ["user_key", "day_index", "n_events", "n_views"]


def keys(config, spark, version, **options):
    with petastorm_dataloader(
        spark, config, GOLD, version=version, columns=COLUMNS, batch_size=64, **options
    ) as loader:
        return [u for batch in loader for u in batch["user_key"].tolist()]


@pytest.mark.parametrize("via", ["converter", "batch_reader"])
def test_each_way_yields_sparks_rows_at_each_version_sharded_and_shuffled(spark, config, via):
    v2, v3 = write_loader_versions(spark, config)
    for version in (v2, v3):
        with petastorm_dataloader(
            spark, config, GOLD, version=version, columns=COLUMNS, batch_size=64, via=via
        ) as loader:
            loaded = [tuple(row) for b in loader for row in zip(*(b[name].tolist() for name in COLUMNS))]
        expected = [tuple(r) for r in read_table(spark, config, GOLD, version=version).select(*COLUMNS).collect()]
        assert sorted(loaded) == sorted(expected)
    per_rank = [keys(config, spark, v3, via=via, rank=rank, world_size=3, shuffle_seed=5) for rank in range(3)]
    assert all(per_rank) and Counter(u for ranked in per_rank for u in ranked) == Counter(range(1000, 1600))
    epoch0 = keys(config, spark, v3, via=via, shuffle_seed=5, epoch=0, workers_count=1)
    assert keys(config, spark, v3, via=via, shuffle_seed=5, epoch=0, workers_count=1) == epoch0  # seeded
    assert (
        keys(config, spark, v3, via=via, shuffle_seed=5, epoch=1, workers_count=1) != epoch0
    )  # a new epoch, a new order


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

    row = spark.createDataFrame([(9999, date(2026, 11, 2), 1, 1, 1, 1, 0, 0)], demo_table(GOLD).schema)
    v4 = append_rows(spark, config, demo_table(GOLD), row, Commit("t", "r4")).version
    newest = cached_converter(spark, config, GOLD, v4, COLUMNS)
    assert len(newest) == 601
    for stale in (first, holdout, old):  # v2 and v3 are neither the pinned nor the latest version now
        assert not Path(stale.cache_dir_url.removeprefix("file://")).exists()
    assert len(list(root.glob("v*.json"))) == 1


@pytest.mark.parametrize("via", ["converter", "batch_reader"])
def test_split_and_transform_run_in_the_reader_workers(spark, config, via):
    _, v3 = write_loader_versions(spark, config)
    holdout = {
        r.user_key
        for r in read_table(spark, config, GOLD, version=v3).where(Split("user_key", "holdout").where()).collect()
    }
    with petastorm_dataloader(
        spark,
        config,
        GOLD,
        version=v3,
        columns=COLUMNS,
        batch_size=100,
        via=via,
        split=Split("user_key", "holdout"),
        transform=CellDropout(["n_views"], p=0.5),
    ) as loader:
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


# Row-group sizes per file, 859 rows each (as tests/test_arrow_loader.py's).
LAYOUTS = {
    "one file, one row group": [[859]],
    "four files, uneven row groups": [[500], [300, 40, 1], [18], [0]],
}


def write_layout(folder, sizes_per_file) -> list[str]:
    """Parquet files with these row groups (0: a file without any), keys 0..N-1, ``n_views = 2 * key``."""
    schema = pa.schema([("user_key", pa.int64()), ("n_views", pa.int64())])
    files, key = [], 0
    for number, sizes in enumerate(sizes_per_file):
        path = folder / f"part-{number}.parquet"
        with pq.ParquetWriter(path, schema) as writer:
            for size in sizes:
                if size:
                    keys = np.arange(key, key + size, dtype=np.int64)
                    writer.write_table(
                        pa.table({"user_key": keys, "n_views": 2 * keys}, schema=schema), row_group_size=size
                    )
                    key += size
        files.append(path.as_uri())
    return files


def batches_of(loader, layout=True) -> list[list[int]]:
    """Keys per batch; the loader's length is its batch count; a layout's rows keep their columns together."""
    batches = list(loader)
    assert len(batches) == len(loader)
    if layout:
        assert all(torch.equal(b["n_views"], 2 * b["user_key"]) for b in batches)
    return [b["user_key"].tolist() for b in batches]


def assert_equal_shares(per_rank, rows, world_size, drop_last, batch_size=50):
    """Every rank the same batch sizes; pad: every row, fewer than world_size twice; drop: none twice."""
    share = rows // world_size if drop_last else math.ceil(rows / world_size)
    sizes = [[len(batch) for batch in batches] for batches in per_rank]
    assert all(s == sizes[0] for s in sizes), sizes
    assert sum(sizes[0]) == share and len(sizes[0]) == math.ceil(share / batch_size)
    seen = Counter(key for batches in per_rank for batch in batches for key in batch)
    if drop_last:
        assert max(seen.values()) == 1 and len(seen) == world_size * share
    else:
        assert len(seen) == rows and sum(seen.values()) == world_size * share
    if rows % world_size == 0:
        assert set(seen.values()) == {1}


@pytest.mark.parametrize("pool, workers", [("dummy", 1), ("thread", 2)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_batch_reader_gives_every_rank_as_many_batches(tmp_path, layout, pool, workers):
    files = write_layout(tmp_path, LAYOUTS[layout])
    for world_size in (1, 2, 3, 4):
        for drop_last in (False, True):
            per_rank = []
            for rank in range(world_size):
                with batch_reader_loader(
                    files,
                    ["user_key", "n_views"],
                    50,
                    workers,
                    pool,
                    shuffle_seed=11,
                    rank=rank,
                    world_size=world_size,
                    drop_last=drop_last,
                ) as loader:
                    per_rank.append(batches_of(loader))
            assert_equal_shares(per_rank, 859, world_size, drop_last)


def test_batch_reader_process_pool_and_split_deal_the_train_side_in_equal_shares(tmp_path):
    files = write_layout(tmp_path, LAYOUTS["four files, uneven row groups"])
    split = Split("user_key")
    train = {int(k) for k in np.arange(859)[split.mask(np.arange(859, dtype=np.int64))]}
    per_rank = []
    for rank in range(2):
        with batch_reader_loader(
            files,
            ["user_key", "n_views"],
            50,
            2,
            "process",
            split=split,
            shuffle_seed=3,
            epoch=2,
            rank=rank,
            world_size=2,
        ) as loader:
            per_rank.append(batches_of(loader))
        assert set(sum(per_rank[-1], [])) <= train and per_rank[-1]
    assert {u for batches in per_rank for b in batches for u in b} == train
    assert_equal_shares(per_rank, len(train), 2, False)


def test_each_way_ranks_share_the_train_split_of_a_one_file_table_in_equal_batches(spark, config):
    """Through ``petastorm_dataloader`` at 3 ranks (Spark resolves the files on each call), then at 1 to 4
    ranks, both remainder policies, through ``batch_reader_loader`` over the same files (what it calls)."""
    _, v3 = write_loader_versions(spark, config)
    path = config.table_path(GOLD)
    read_table(spark, config, GOLD, version=v3).coalesce(1).write.format("delta").mode("overwrite").save(path)
    version = current_version(spark, path)
    split = Split("user_key")
    train = {r.user_key for r in read_table(spark, config, GOLD, version=version).where(split.where()).collect()}
    converter = cached_converter(spark, config, GOLD, version, COLUMNS, split)
    snapshot = resolve_snapshot(config, GOLD, version, COLUMNS)
    files = {"converter": (converter.file_urls, None, None), "batch_reader": (snapshot.files, COLUMNS, split)}
    for via, (urls, fields, reader_split) in files.items():
        assert len(urls) == 1
        per_rank = []
        for rank in range(3):
            with petastorm_dataloader(
                spark,
                config,
                GOLD,
                version=version,
                columns=COLUMNS,
                batch_size=50,
                via=via,
                split=split,
                shuffle_seed=4,
                rank=rank,
                world_size=3,
            ) as loader:
                per_rank.append(batches_of(loader, layout=False))
            with batch_reader_loader(
                urls, fields, 50, 1, "dummy", split=reader_split, shuffle_seed=4, rank=rank, world_size=3
            ) as loader:
                assert sorted(sum(per_rank[-1], [])) == sorted(sum(batches_of(loader, layout=False), []))
        assert {u for batches in per_rank for b in batches for u in b} == train, via
        assert_equal_shares(per_rank, len(train), 3, False)
        for world_size in (1, 2, 3, 4):
            for drop_last in (False, True):
                per_rank = []
                for rank in range(world_size):
                    with batch_reader_loader(
                        urls,
                        fields,
                        50,
                        2,
                        "thread",
                        split=reader_split,
                        shuffle_seed=4,
                        rank=rank,
                        world_size=world_size,
                        drop_last=drop_last,
                    ) as loader:
                        per_rank.append(batches_of(loader, layout=False))
                assert {u for batches in per_rank for b in batches for u in b} <= train
                assert_equal_shares(per_rank, len(train), world_size, drop_last)
