"""The native Arrow loader yields exactly Spark's rows at the pinned version, sharded and shuffled;
every data-parallel rank gets as many batches as the others, whatever the files' layout."""

import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from helpers import write_loader_versions as write_versions
from lakehouse.catalog import current_version, read_table
from lakehouse.loaders.arrow_loader import (
    DeltaArrowDataset,
    Snapshot,
    UnsupportedTableError,
    arrow_dataloader,
    make_loader,
    resolve_snapshot,
)
from lakehouse.loaders.augment import CellDropout
from lakehouse.loaders.columns import UnsupportedColumnError
from lakehouse.loaders.split import Split
from helpers import demo_table

GOLD = demo_table("gold.user_activity_daily")
COLUMNS = ["user_key", "day_index", "n_events", "n_views"]


def loaded_rows(batches):
    rows = []
    for batch in batches:
        rows += list(zip(*(batch[name].tolist() for name in COLUMNS)))
    return rows


# Row-group sizes per file, 859 rows each (the size of the demo's gold.photo_popularity_training).
LAYOUTS = {
    "one file, one row group": [[859]],
    "four files, uneven row groups": [[500], [300, 40, 1], [18], [0]],
}


def write_layout(folder, sizes_per_file) -> Snapshot:
    """Parquet files with these row groups (a size 0: a file without any), keys 0..N-1 in file order,
    ``n_views = 2 * key``; the Snapshot the Arrow loader reads them through (no Spark)."""
    schema = pa.schema([("user_key", pa.int64()), ("n_views", pa.int64())])
    files, key = [], 0
    for number, sizes in enumerate(sizes_per_file):
        path = folder / f"part-{number}.parquet"
        with pq.ParquetWriter(path, schema) as writer:
            for size in sizes:
                if size:
                    keys = np.arange(key, key + size, dtype=np.int64)
                    writer.write_table(pa.table({"user_key": keys, "n_views": 2 * keys}, schema=schema), row_group_size=size)
                    key += size
        files.append(path.as_uri())
    return Snapshot("layout", 0, tuple(files), ("user_key", "n_views"))


def rank_batches(snapshot, rank, world_size, workers=0, drop_last=False, shuffle_seed=11, epoch=0, batch_size=50, **options):
    """Rank ``rank``'s epoch as keys per batch, through ``make_loader`` as ``arrow_dataloader`` builds it
    (chunks of 3 batches, so that chunks span row groups)."""
    dataset = DeltaArrowDataset(snapshot, batch_size=batch_size, shuffle_seed=shuffle_seed, rank=rank,
                                world_size=world_size, chunk_batches=3, drop_last=drop_last, **options)
    dataset.set_epoch(epoch)
    loader = make_loader(dataset, workers)
    batches = list(loader)
    if snapshot.table == "layout":  # each row's columns still belong together
        assert all(torch.equal(batch["n_views"], 2 * batch["user_key"]) for batch in batches)
    assert len(batches) == len(loader) == dataset.num_batches()
    return [batch["user_key"].tolist() for batch in batches]


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
        assert set(seen.values()) == {1}  # nothing padded or dropped: every row exactly once


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_rank_gets_as_many_batches_whatever_the_layout(tmp_path, layout, workers):
    snapshot = write_layout(tmp_path, LAYOUTS[layout])
    for world_size in (1, 2, 3, 4):
        for drop_last in (False, True):
            per_rank = [rank_batches(snapshot, rank, world_size, workers, drop_last) for rank in range(world_size)]
            assert_equal_shares(per_rank, 859, world_size, drop_last)
    per_rank = [rank_batches(snapshot, rank, 4, workers, shuffle_seed=None) for rank in range(4)]
    assert [b[0][0] for b in per_rank] == [0, 214, 429, 644]  # unshuffled: contiguous runs in file order


def test_the_ranks_rows_depend_on_seed_and_epoch_only(tmp_path):
    snapshot = write_layout(tmp_path, LAYOUTS["four files, uneven row groups"])

    def rows(rank, epoch, workers=0):
        return [key for batch in rank_batches(snapshot, rank, 3, workers, epoch=epoch) for key in batch]

    epoch0 = [rows(rank, 0) for rank in range(3)]
    assert [rows(rank, 0) for rank in range(3)] == epoch0  # the same order again
    assert [sorted(rows(rank, 0, workers=2)) for rank in range(3)] == [sorted(r) for r in epoch0]  # same rows
    epoch1 = [rows(rank, 1) for rank in range(3)]
    assert all(set(a) != set(b) for a, b in zip(epoch0, epoch1))  # a new epoch deals other rows to each rank
    (tmp_path / "one").mkdir()
    one_file = write_layout(tmp_path / "one", [[859]])
    first = {tuple(sorted(k for b in rank_batches(one_file, 0, 4, epoch=e) for k in b)) for e in range(3)}
    assert len(first) == 3  # even a single row group is dealt anew each epoch


def test_a_rank_reads_only_the_row_groups_holding_its_rows(tmp_path, monkeypatch):
    snapshot = write_layout(tmp_path, [[100] * 8])  # one file, 8 row groups of 100
    reads = []
    read_row_group = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, *args, **kwargs: reads.append(i) or read_row_group(self, i, *args, **kwargs))
    for world_size, most in ((4, 8), (3, 8 + 2)):  # ranges of 200 rows fit 2 groups; of 267, 2 boundaries are shared
        reads.clear()
        per_rank = [rank_batches(snapshot, rank, world_size) for rank in range(world_size)]
        assert_equal_shares(per_rank, 800, world_size, False)
        assert len(reads) <= most and Counter(reads).keys() == set(range(8))


def test_yields_exactly_sparks_rows_at_each_version(spark, config):
    v2, v3 = write_versions(spark, config)
    for version in (v2, v3):
        loader = arrow_dataloader(spark, config, GOLD.name, version=version, columns=COLUMNS, batch_size=64)
        expected = [tuple(r) for r in read_table(spark, config, GOLD.name, version=version).select(*COLUMNS).collect()]
        assert sorted(loaded_rows(loader)) == sorted(expected)
    batch = next(iter(arrow_dataloader(spark, config, GOLD.name, version=v3, columns=COLUMNS, batch_size=64)))
    assert batch["user_key"].dtype == torch.int64 and batch["day_index"].dtype == torch.int32
    assert len(batch["user_key"]) == 64


def test_every_row_once_per_epoch_across_ranks_and_workers_with_seeded_shuffle(spark, config):
    _, v3 = write_versions(spark, config)
    snapshot = resolve_snapshot(spark, config, GOLD.name, version=v3, columns=COLUMNS)
    orders = {}
    for epoch in (0, 1):
        seen = Counter()
        for rank in range(3):
            dataset = DeltaArrowDataset(snapshot, batch_size=50, shuffle_seed=7, rank=rank, world_size=3)
            dataset.set_epoch(epoch)
            ids = [u for b in DataLoader(dataset, batch_size=None, num_workers=2) for u in b["user_key"].tolist()]
            seen.update(ids)
            orders[(epoch, rank)] = ids
        assert seen == Counter(range(1000, 1600))  # each row exactly once across the three ranks
    again = DeltaArrowDataset(snapshot, batch_size=50, shuffle_seed=7, rank=0, world_size=3)
    assert [u for b in DataLoader(again, batch_size=None, num_workers=2) for u in b["user_key"].tolist()] == orders[(0, 0)]
    assert orders[(0, 0)] != orders[(1, 0)]  # a new epoch, a new order


def test_transform_runs_in_the_workers(spark, config):
    _, v3 = write_versions(spark, config)
    dropout = CellDropout(["n_views"], p=0.5, seed=1)
    loader = arrow_dataloader(spark, config, GOLD.name, version=v3, columns=COLUMNS, batch_size=100,
                              num_workers=2, transform=dropout)
    views = torch.cat([b["n_views"] for b in loader])
    blanked = int(torch.isnan(views).sum())
    assert views.dtype == torch.float32 and 0.35 * 600 < blanked < 0.65 * 600


def test_refuses_what_it_cannot_read_faithfully(spark, config):
    write_versions(spark, config)
    with pytest.raises(UnsupportedColumnError, match=r"event_date \(date\)"):
        resolve_snapshot(spark, config, GOLD.name, columns=["user_key", "event_date"])
    silver = demo_table("silver.events")
    spark.createDataFrame([], silver.schema).write.format("delta").partitionBy("event_date").save(config.table_path(silver.name))
    with pytest.raises(UnsupportedTableError, match="partition columns"):
        resolve_snapshot(spark, config, silver.name, columns=["user_key", "event_date"])
    spark.sql(f"ALTER TABLE delta.`{config.table_path(GOLD.name)}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    with pytest.raises(UnsupportedTableError, match="deletion vectors"):
        resolve_snapshot(spark, config, GOLD.name, columns=COLUMNS)


def test_a_split_keeps_the_rows_sparks_where_keeps(spark, config):
    _, v3 = write_versions(spark, config)
    expected_holdout = {r.user_key for r in read_table(spark, config, GOLD.name, version=v3).where(Split("user_key", "holdout").where()).collect()}
    seen = {}
    for side in ("train", "holdout"):
        loader = arrow_dataloader(spark, config, GOLD.name, version=v3, columns=COLUMNS, batch_size=64,
                                  split=Split("user_key", side), num_workers=2)
        seen[side] = [u for b in loader for u in b["user_key"].tolist()]
    assert set(seen["holdout"]) == expected_holdout and 0.1 * 600 < len(expected_holdout) < 0.3 * 600
    assert sorted(seen["train"] + seen["holdout"]) == list(range(1000, 1600))


def _ddp_rank(rank: int, world_size: int, init_file: str, snapshot, out: dict) -> None:
    """One data-parallel process: join the gloo group, read its share of the train split with rank and
    world size left to torch.distributed, one all-reduce per batch as DDP's gradient sync does (a rank
    with fewer batches than the others would leave them waiting there), gather every rank's keys."""
    from datetime import timedelta

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=300))
    try:
        dataset = DeltaArrowDataset(snapshot, batch_size=32, shuffle_seed=3, split=Split("user_key"))
        dataset.set_epoch(1)
        mine, rows = [], torch.zeros(1, dtype=torch.int64)
        for batch in DataLoader(dataset, batch_size=None, num_workers=2):
            step = torch.tensor([len(batch["user_key"])])
            dist.all_reduce(step)
            rows += step
            mine.append(batch["user_key"].tolist())
        gathered = [None] * world_size
        dist.all_gather_object(gathered, mine)
        if rank == 0:
            out["per_rank"], out["rows"] = gathered, int(rows)
    finally:
        dist.destroy_process_group()


def write_one_file(spark, config) -> int:
    """gold.user_activity_daily's v3 (users 1000..1599) rewritten as one Parquet file; its version."""
    _, v3 = write_versions(spark, config)
    path = config.table_path(GOLD.name)
    read_table(spark, config, GOLD.name, version=v3).coalesce(1).write.format("delta").mode("overwrite").save(path)
    return current_version(spark, path)


def test_data_parallel_ranks_from_torch_distributed_share_the_train_split_of_one_file(spark, config, tmp_path):
    import torch.multiprocessing as mp

    version = write_one_file(spark, config)
    snapshot = resolve_snapshot(spark, config, GOLD.name, version=version, columns=COLUMNS)
    assert len(snapshot.files) == 1
    train = {r.user_key for r in read_table(spark, config, GOLD.name, version=version).where(Split("user_key").where()).collect()}
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_ddp_rank, args=(2, str(tmp_path / "rendezvous"), snapshot, out), nprocs=2, join=True)
        per_rank, rows = out["per_rank"], out["rows"]
    assert len(per_rank[0]) == len(per_rank[1]) > 1
    assert [len(b) for b in per_rank[0]] == [len(b) for b in per_rank[1]]
    seen = Counter(u for batches in per_rank for batch in batches for u in batch)
    assert set(seen) == train and rows == sum(seen.values()) == 2 * math.ceil(len(train) / 2)


def test_ranks_of_arrow_dataloader_share_the_train_split_in_equal_batches(spark, config):
    version = write_one_file(spark, config)
    train = {r.user_key for r in read_table(spark, config, GOLD.name, version=version).where(Split("user_key").where()).collect()}
    snapshot = resolve_snapshot(spark, config, GOLD.name, version=version, columns=COLUMNS)
    for world_size in (1, 2, 3, 4):
        per_rank = [rank_batches(snapshot, rank, world_size, shuffle_seed=4, split=Split("user_key")) for rank in range(world_size)]
        assert {u for batches in per_rank for b in batches for u in b} == train
        assert_equal_shares(per_rank, len(train), world_size, False)
    loader = arrow_dataloader(spark, config, GOLD.name, version=version, columns=COLUMNS, batch_size=50,
                              split=Split("user_key"), rank=2, world_size=3, shuffle_seed=4, num_workers=2)
    rank2 = rank_batches(snapshot, 2, 3, shuffle_seed=4, split=Split("user_key"))
    assert len(loader) == len(rank2) and sorted(u for b in loader for u in b["user_key"].tolist()) == sorted(sum(rank2, []))
