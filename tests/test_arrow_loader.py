"""The native Arrow loader yields exactly Spark's rows at the pinned version, sharded and shuffled."""

from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from helpers import write_loader_versions as write_versions
from lakehouse.catalog import read_table
from lakehouse.loaders.arrow_loader import (
    DeltaArrowDataset,
    UnsupportedTableError,
    arrow_dataloader,
    resolve_snapshot,
)
from lakehouse.loaders.augment import CellDropout
from lakehouse.loaders.columns import UnsupportedColumnError
from lakehouse.loaders.split import Split
from lakehouse.tables import get_table

GOLD = get_table("gold.user_activity_daily")
COLUMNS = ["user_key", "day_index", "n_events", "n_views"]


def loaded_rows(batches):
    rows = []
    for batch in batches:
        rows += list(zip(*(batch[name].tolist() for name in COLUMNS)))
    return rows


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
    silver = get_table("silver.events")
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
    """One data-parallel process: join the gloo group, read its shard with rank/world size left to
    torch.distributed, gather every rank's keys."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        dataset = DeltaArrowDataset(snapshot, batch_size=32, shuffle_seed=3)
        dataset.set_epoch(1)
        mine = [u for b in DataLoader(dataset, batch_size=None) for u in b["user_key"].tolist()]
        gathered = [None] * world_size
        dist.all_gather_object(gathered, mine)
        if rank == 0:
            out["per_rank"] = gathered
    finally:
        dist.destroy_process_group()


def test_data_parallel_ranks_from_torch_distributed_see_every_row_once(spark, config, tmp_path):
    import torch.multiprocessing as mp

    _, v3 = write_versions(spark, config)
    snapshot = resolve_snapshot(spark, config, GOLD.name, version=v3, columns=COLUMNS)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_ddp_rank, args=(2, str(tmp_path / "rendezvous"), snapshot, out), nprocs=2, join=True)
        per_rank = out["per_rank"]
    assert all(per_rank) and Counter(u for keys in per_rank for u in keys) == Counter(range(1000, 1600))
