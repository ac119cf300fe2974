"""The native Arrow loader yields exactly Spark's rows at the pinned version, sharded and shuffled;
every data-parallel rank gets as many batches as the others, whatever the files' layout."""

import json
import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from helpers import demo_table
from helpers import write_loader_versions as write_versions
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
from lakehouse.storage.catalog import current_version, read_table

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
                    writer.write_table(
                        pa.table({"user_key": keys, "n_views": 2 * keys}, schema=schema), row_group_size=size
                    )
                    key += size
        files.append(path.as_uri())
    return Snapshot("layout", 0, tuple(files), ("user_key", "n_views"))


def rank_batches(
    snapshot, rank, world_size, workers=0, drop_last=False, shuffle_seed=11, epoch=0, batch_size=50, **options
):
    """Rank ``rank``'s epoch as keys per batch, through ``make_loader`` as ``arrow_dataloader`` builds it
    (chunks of 3 batches, so that chunks span row groups)."""
    dataset = DeltaArrowDataset(
        snapshot,
        batch_size=batch_size,
        shuffle_seed=shuffle_seed,
        rank=rank,
        world_size=world_size,
        chunk_batches=3,
        drop_last=drop_last,
        **options,
    )
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
    assert [b[0][0] for b in per_rank] == [0, 50, 100, 150]  # unshuffled: step by step through file order
    assert [b[1][0] for b in per_rank] == [200, 250, 300, 350]


def test_the_ranks_rows_depend_on_seed_and_epoch_only(tmp_path):
    snapshot = write_layout(tmp_path, LAYOUTS["four files, uneven row groups"])

    def rows(rank, epoch, workers=0):
        return [key for batch in rank_batches(snapshot, rank, 3, workers, epoch=epoch) for key in batch]

    epoch0 = [rows(rank, 0) for rank in range(3)]
    assert [rows(rank, 0) for rank in range(3)] == epoch0  # the same order again
    assert [rows(rank, 0, workers=2) for rank in range(3)] == epoch0  # the same order whatever the workers
    epoch1 = [rows(rank, 1) for rank in range(3)]
    assert all(set(a) != set(b) for a, b in zip(epoch0, epoch1))  # a new epoch deals other rows to each rank
    (tmp_path / "one").mkdir()
    one_file = write_layout(tmp_path / "one", [[859]])
    first = {tuple(sorted(k for b in rank_batches(one_file, 0, 4, epoch=e) for k in b)) for e in range(3)}
    assert len(first) == 3  # even a single row group is dealt anew each epoch


def test_each_reading_process_reads_a_window_once(tmp_path, monkeypatch):
    snapshot = write_layout(tmp_path, [[100] * 8])  # one file, 8 row groups of 100
    reads = []  # row groups read whole, or streamed piece by piece (a buffer of 250 rows cuts them in 31-row pieces)
    read_row_group, iter_batches = pq.ParquetFile.read_row_group, pq.ParquetFile.iter_batches
    monkeypatch.setattr(
        pq.ParquetFile,
        "read_row_group",
        lambda self, i, *args, **kwargs: reads.append(i) or read_row_group(self, i, *args, **kwargs),
    )
    monkeypatch.setattr(
        pq.ParquetFile,
        "iter_batches",
        lambda self, *args, row_groups, **kwargs: (
            reads.extend(row_groups) or iter_batches(self, *args, row_groups=row_groups, **kwargs)
        ),
    )
    for world_size, buffer_rows in ((1, 0), (2, 0), (3, 250), (4, 10_000)):
        reads.clear()
        per_rank = [
            rank_batches(snapshot, rank, world_size, shuffle_buffer_rows=buffer_rows) for rank in range(world_size)
        ]
        assert_equal_shares(per_rank, 800, world_size, False)
        assert Counter(reads) == {group: world_size for group in range(8)}  # every rank its share of each window


def keys_of(loader, batches=None):
    """The keys of the next ``batches`` batches of a pass of ``loader`` (all when ``None``), per batch."""
    out = []
    for batch in loader:
        out.append(batch["user_key"].tolist())
        if batches is not None and len(out) == batches:
            break
    return out


def layout_loader(snapshot, workers=0, batch_size=50, rank=0, world_size=1, **options):
    dataset = DeltaArrowDataset(
        snapshot,
        batch_size=batch_size,
        rank=rank,
        world_size=world_size,
        chunk_batches=options.pop("chunk_batches", 3),
        **options,
    )
    return make_loader(dataset, workers)


@pytest.mark.parametrize("workers_before, workers_after", [(0, 2), (2, 0), (2, 3)])
def test_a_killed_epoch_resumes_with_exactly_the_rows_not_yet_seen(tmp_path, workers_before, workers_after):
    snapshot = write_layout(tmp_path, LAYOUTS["four files, uneven row groups"])
    options = dict(shuffle_seed=5, shuffle_buffer_rows=300)
    whole = layout_loader(snapshot, workers_before, **options)
    whole.dataset.set_epoch(2)
    uninterrupted = keys_of(whole)
    for stop_after in (1, 7, len(uninterrupted) - 1, len(uninterrupted)):
        killed = layout_loader(snapshot, workers_before, **options)
        killed.dataset.set_epoch(2)
        seen = keys_of(killed, stop_after)
        state = json.loads(json.dumps(killed.state_dict()))  # saved beside the model: plain JSON
        resumed = layout_loader(snapshot, workers_after, **options)
        resumed.load_state_dict(state)
        assert resumed.dataset.epoch == 2 and len(resumed) == len(uninterrupted) - stop_after
        rest = keys_of(resumed)
        assert seen + rest == uninterrupted  # the same batches in the same order: none lost, none twice
    bigger = layout_loader(snapshot, workers_after, batch_size=64, **options)  # another batch size: the same rows
    bigger.load_state_dict(state | {"position": 0, "epoch": 2})
    assert sum(keys_of(bigger), []) == sum(uninterrupted, [])


def test_resuming_with_another_world_size_continues_the_same_global_order(tmp_path):
    snapshot = write_layout(tmp_path, LAYOUTS["four files, uneven row groups"])  # 859 rows
    options = dict(shuffle_seed=9, shuffle_buffer_rows=400, drop_last=True)
    single = layout_loader(snapshot, batch_size=10, **options)
    global_order = sum(keys_of(single), [])  # one rank: the epoch's whole order
    assert sorted(global_order) == list(range(859))

    def steps(loaders, count=None):
        """Each step's rows, ranks in order (a step: every rank's next batch)."""
        per_rank = [keys_of(loader, count) for loader in loaders]
        assert len({len(batches) for batches in per_rank}) == 1
        return [sum(batches, []) for batches in zip(*per_rank)]

    before = [layout_loader(snapshot, 2, batch_size=10, rank=r, world_size=2, **options) for r in range(2)]
    first = steps(before, 12)
    states = [loader.state_dict() for loader in before]
    assert states[0]["position"] == states[1]["position"] == 12 * 2 * 10  # every rank's state says the same
    after = [layout_loader(snapshot, 0, batch_size=10, rank=r, world_size=3, **options) for r in range(3)]
    for loader in after:
        loader.load_state_dict(states[0])
    rest = steps(after)
    delivered = sum(first + rest, [])
    assert len(delivered) == len(set(delivered))  # none twice
    assert delivered == global_order[: len(delivered)]  # the one order, continued by three ranks
    assert len(global_order) - len(delivered) < 3  # drop_last: only the last remainder over 3 ranks left out


def test_a_state_from_another_order_is_refused(tmp_path):
    snapshot = write_layout(tmp_path, LAYOUTS["one file, one row group"])
    state = layout_loader(snapshot, shuffle_seed=1).state_dict()
    with pytest.raises(ValueError, match=r"shuffle_seed: saved 1, this loader 2"):
        layout_loader(snapshot, shuffle_seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="not an Arrow loader state"):
        layout_loader(snapshot, shuffle_seed=1).load_state_dict({"epoch": 0})


def test_the_shuffle_buffer_mixes_rows_across_row_groups(tmp_path):
    snapshot = write_layout(tmp_path, [[100] * 8])  # keys 100*g .. 100*g+99 in row group g

    def groups_per_batch(buffer_rows):
        loader = layout_loader(snapshot, batch_size=50, shuffle_seed=3, shuffle_buffer_rows=buffer_rows)
        return [len({key // 100 for key in batch}) for batch in keys_of(loader)]

    assert max(groups_per_batch(0)) <= 2  # Petastorm's way: a batch comes from one row group, two at a seam
    assert np.mean(groups_per_batch(400)) > 3.5 and np.mean(groups_per_batch(800)) > 6


def test_the_shuffle_buffer_mixes_row_groups_larger_than_itself(tmp_path):
    snapshot = write_layout(tmp_path, [[2000] * 4])  # keys 2000*g .. in row group g: each 5x the buffer
    loader = layout_loader(snapshot, batch_size=50, shuffle_seed=3, shuffle_buffer_rows=400)
    batches = keys_of(loader)
    delivered = [key for batch in batches for key in batch]
    assert sorted(delivered) == list(range(8000))  # every row once
    assert np.mean([len({key // 2000 for key in batch}) for batch in batches]) > 3  # of 4 groups
    order = loader.dataset.order()
    assert max(int(order.unit_rows[w].sum()) for w in order.windows) <= 400  # the buffer bounds every window

    def lag_one(keys):  # how much a row's place in the files tells of the next row's
        return np.corrcoef(keys[:-1], keys[1:])[0, 1]

    row_groups_only = [
        key
        for batch in keys_of(layout_loader(snapshot, batch_size=50, shuffle_seed=3, shuffle_buffer_rows=0))
        for key in batch
    ]
    assert lag_one(row_groups_only) > 0.9 and abs(lag_one(delivered)) < 0.3


def test_deletion_vectors_and_column_mapping_are_applied_as_spark_applies_them(spark, config):
    _, v3 = write_versions(spark, config)
    path = config.table_path(GOLD.name)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE user_key % 7 = 0 OR user_key = 1500")
    deleted = current_version(spark, path)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name')")
    spark.sql(f"ALTER TABLE delta.`{path}` RENAME COLUMN n_views TO views")
    renamed = current_version(spark, path)
    snapshot = resolve_snapshot(config, GOLD.name, version=deleted, columns=COLUMNS)
    assert snapshot.keep and snapshot.deleted_rows > 0  # the files still hold the deleted rows
    for version, columns in (
        (v3, COLUMNS),
        (deleted, COLUMNS),
        (renamed, ["user_key", "day_index", "n_events", "views"]),
    ):
        expected = sorted(
            tuple(r) for r in read_table(spark, config, GOLD.name, version=version).select(*columns).collect()
        )
        for split in (None, Split("user_key")):
            loader = arrow_dataloader(
                config, GOLD.name, version=version, columns=columns, batch_size=64, shuffle_seed=1, split=split
            )
            rows = [row for b in loader for row in zip(*(b[name].tolist() for name in columns))]
            if split is None:
                assert sorted(rows) == expected, version
            else:
                assert set(rows) == {r for r in expected if Split("user_key").mask(np.array([r[0]]))[0]}
    assert 1500 not in {r[0] for r in expected} and len(expected) < 600


def test_yields_exactly_sparks_rows_at_each_version(spark, config):
    v2, v3 = write_versions(spark, config)
    for version in (v2, v3):
        loader = arrow_dataloader(config, GOLD.name, version=version, columns=COLUMNS, batch_size=64)
        expected = [tuple(r) for r in read_table(spark, config, GOLD.name, version=version).select(*COLUMNS).collect()]
        assert sorted(loaded_rows(loader)) == sorted(expected)
    batch = next(iter(arrow_dataloader(config, GOLD.name, version=v3, columns=COLUMNS, batch_size=64)))
    assert batch["user_key"].dtype == torch.int64 and batch["day_index"].dtype == torch.int32
    assert len(batch["user_key"]) == 64


def test_every_row_once_per_epoch_across_ranks_and_workers_with_seeded_shuffle(spark, config):
    _, v3 = write_versions(spark, config)
    snapshot = resolve_snapshot(config, GOLD.name, version=v3, columns=COLUMNS)
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
    assert [u for b in DataLoader(again, batch_size=None, num_workers=2) for u in b["user_key"].tolist()] == orders[
        (0, 0)
    ]
    assert orders[(0, 0)] != orders[(1, 0)]  # a new epoch, a new order


def test_transform_runs_in_the_workers(spark, config):
    _, v3 = write_versions(spark, config)
    dropout = CellDropout(["n_views"], p=0.5, seed=1)
    loader = arrow_dataloader(
        config, GOLD.name, version=v3, columns=COLUMNS, batch_size=100, num_workers=2, transform=dropout
    )
    views = torch.cat([b["n_views"] for b in loader])
    blanked = int(torch.isnan(views).sum())
    assert views.dtype == torch.float32 and 0.35 * 600 < blanked < 0.65 * 600


def test_refuses_what_it_cannot_read_faithfully(spark, config):
    write_versions(spark, config)
    with pytest.raises(UnsupportedColumnError, match=r"event_date \(date\)"):
        resolve_snapshot(config, GOLD.name, columns=["user_key", "event_date"])
    silver = demo_table("silver.events")
    spark.createDataFrame([], silver.schema).write.format("delta").partitionBy("event_date").save(
        config.table_path(silver.name)
    )
    with pytest.raises(UnsupportedTableError, match="partition columns"):
        resolve_snapshot(config, silver.name, columns=["user_key", "event_date"])


def test_a_split_keeps_the_rows_sparks_where_keeps(spark, config):
    _, v3 = write_versions(spark, config)
    expected_holdout = {
        r.user_key
        for r in read_table(spark, config, GOLD.name, version=v3).where(Split("user_key", "holdout").where()).collect()
    }
    seen = {}
    for side in ("train", "holdout"):
        loader = arrow_dataloader(
            config, GOLD.name, version=v3, columns=COLUMNS, batch_size=64, split=Split("user_key", side), num_workers=2
        )
        seen[side] = [u for b in loader for u in b["user_key"].tolist()]
    assert set(seen["holdout"]) == expected_holdout and 0.1 * 600 < len(expected_holdout) < 0.3 * 600
    assert sorted(seen["train"] + seen["holdout"]) == list(range(1000, 1600))


def _ddp_rank(rank: int, world_size: int, init_file: str, snapshot, out: dict) -> None:
    """One data-parallel process: join the gloo group, read its share of the train split with rank and
    world size left to torch.distributed, one all-reduce per batch as DDP's gradient sync does (a rank
    with fewer batches than the others would leave them waiting there), gather every rank's keys."""
    from datetime import timedelta

    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size, timeout=timedelta(seconds=300)
    )
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
    snapshot = resolve_snapshot(config, GOLD.name, version=version, columns=COLUMNS)
    assert len(snapshot.files) == 1
    train = {
        r.user_key
        for r in read_table(spark, config, GOLD.name, version=version).where(Split("user_key").where()).collect()
    }
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
    train = {
        r.user_key
        for r in read_table(spark, config, GOLD.name, version=version).where(Split("user_key").where()).collect()
    }
    snapshot = resolve_snapshot(config, GOLD.name, version=version, columns=COLUMNS)
    for world_size in (1, 2, 3, 4):
        per_rank = [
            rank_batches(snapshot, rank, world_size, shuffle_seed=4, split=Split("user_key"))
            for rank in range(world_size)
        ]
        assert {u for batches in per_rank for b in batches for u in b} == train
        assert_equal_shares(per_rank, len(train), world_size, False)
    loader = arrow_dataloader(
        config,
        GOLD.name,
        version=version,
        columns=COLUMNS,
        batch_size=50,
        split=Split("user_key"),
        rank=2,
        world_size=3,
        shuffle_seed=4,
        num_workers=2,
    )
    rank2 = rank_batches(snapshot, 2, 3, shuffle_seed=4, split=Split("user_key"))
    assert len(loader) == len(rank2) and sorted(u for b in loader for u in b["user_key"].tolist()) == sorted(
        sum(rank2, [])
    )


def test_a_streamed_row_group_is_cut_into_pieces_whatever_sizes_its_batches_come_in():
    from lakehouse.loaders.arrow_loader import _PieceStream

    batches = iter([pa.record_batch([pa.array(range(a, b))], names=["k"]) for a, b in ((0, 3), (3, 8), (8, 10))])
    stream = _PieceStream(batches)
    pieces = [stream.take(4).column("k").to_pylist() for _ in range(2)] + [stream.take(2).column("k").to_pylist()]
    assert pieces == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and stream.next_piece == 3


def test_a_version_without_files_reads_as_no_rows_with_its_columns(config):
    from deltalake import DeltaTable, write_deltalake

    from lakehouse.loaders.delta_files import read_version

    path = config.table_path(GOLD.name)
    write_deltalake(path, pa.table({"user_key": pa.array([1, 2], pa.int64()), "label": ["a", "b"]}))
    assert read_version(config, GOLD.name).to_pylist() == [{"user_key": 1, "label": "a"}, {"user_key": 2, "label": "b"}]
    DeltaTable(path).delete()  # every row: the version has no files left
    empty = read_version(config, GOLD.name, columns=["label"])
    assert empty.num_rows == 0 and empty.schema == pa.schema([("label", pa.string())])
