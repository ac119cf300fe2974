"""A pinned Delta snapshot -> PyTorch batches, reading its Parquet files directly with pyarrow.

Spark resolves which files make up the table at the pinned version (removed files excluded); after
that no JVM is involved: each worker process reads row groups with pyarrow and hands columns to torch
without copying where the types allow. Rows are dealt to data-parallel ranks at row level
(:mod:`lakehouse.loaders.shards`): every rank gets the same number of batches in an epoch whatever the
file and row-group layout, and reads only the row groups that hold its rows; the remainder is padded
(``drop_last=False``, a few rows seen twice) or dropped (``drop_last=True``). Shuffling is seeded and
changes per epoch. Binary image columns reach the transform as bytes, to be decoded (and augmented) in
the workers; a :class:`~lakehouse.loaders.split.Split` keeps one side of a stable hash split of the key,
before the rows are dealt to the ranks.

Tables whose files do not hold all their rows' values are refused rather than read wrongly: deletion
vectors (rows deleted without rewriting the file), column mapping (physical column names differ) and
partition columns (values live in the log, not in the file).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from pyspark.sql import SparkSession
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lakehouse.catalog import current_version
from lakehouse.config import LakehouseConfig
from lakehouse.loaders.columns import UnsupportedColumnError, tensor_columns
from lakehouse.loaders.shards import RowGroup, RowShards, footer_row_groups, local_path, split_rows
from lakehouse.loaders.split import Split

# Tensors share Arrow's read-only buffers (no copy); torch warns that writing to them is undefined.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)

Batch = dict[str, torch.Tensor]  # before the transform, an encoded column holds a list of bytes
Transform = Callable[[Batch], Batch]


class UnsupportedTableError(ValueError):
    """The table uses a Delta feature whose rows cannot be read from its Parquet files alone."""


@dataclass(frozen=True)
class Snapshot:
    """The Parquet files of one table version and the columns to load from them."""

    table: str
    version: int
    files: tuple[str, ...]
    columns: tuple[str, ...]
    encoded: tuple[str, ...] = ()


def resolve_snapshot(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    encoded: Sequence[str] = (),
) -> Snapshot:
    """The files Spark would read for ``table`` at ``version`` (default latest), checked for loadability.

    ``encoded`` names binary columns handed to the transform as bytes (see :func:`tensor_columns`).
    """
    path = config.table_path(config.table(table).name)
    version = current_version(spark, path) if version is None else int(version)
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    properties = detail.properties or {}
    if properties.get("delta.enableDeletionVectors", "false").lower() == "true":
        raise UnsupportedTableError(f"{table} has deletion vectors enabled; the Arrow loader cannot apply them")
    if properties.get("delta.columnMapping.mode", "none") != "none":
        raise UnsupportedTableError(f"{table} uses column mapping; the Arrow loader reads physical names only")
    wanted = list(columns) if columns else df.columns
    wanted += [name for name in encoded if name not in wanted]
    partitioned = sorted(set(wanted) & set(detail.partitionColumns or []))
    if partitioned:
        raise UnsupportedTableError(f"{table}: partition columns {partitioned} are not stored in its files")
    tensor_columns(df, wanted, encoded)  # raises UnsupportedColumnError naming strings, dates, nested types
    return Snapshot(table, version, tuple(sorted(df.inputFiles())), tuple(wanted), tuple(encoded))


_local = local_path


def row_groups(snapshot: Snapshot) -> list[RowGroup]:
    """Every row group of the snapshot, in file order (read from the Parquet footers only)."""
    return footer_row_groups(snapshot.files)


def _to_tensor(name: str, column: pa.ChunkedArray) -> torch.Tensor:
    if column.null_count:
        if not pa.types.is_floating(column.type):
            raise UnsupportedColumnError(f"column {name} ({column.type}) has nulls; only float columns can hold NaN")
        column = column.fill_null(float("nan"))
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
        raise UnsupportedColumnError(f"cannot turn column {name} ({column.type}) into a tensor")
    array = column.to_numpy()  # zero-copy for a single chunk of a primitive type without nulls
    return torch.from_numpy(np.ascontiguousarray(array))


def distributed_rank_and_size(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``rank``/``world_size`` as given, else torch.distributed's when a process group is up, else (0, 1)."""
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class DeltaArrowDataset(IterableDataset):
    """Batches (dicts of column -> tensor) of a pinned snapshot, sharded, shuffled and transformed.

    Use with :func:`make_loader` (a ``DataLoader(dataset, batch_size=None, num_workers=N)`` also works):
    batching happens here, and each worker reads its own rows. ``transform`` runs in the workers
    (decoding and augmentation off the training loop). Call :meth:`set_epoch` before each epoch for a
    new shuffle order. ``rank`` and ``world_size`` default to torch.distributed's when a process group
    is initialised.

    Every rank yields the same number of batches in an epoch, :meth:`num_batches`, whatever the file
    and row-group layout: rows (on ``split``'s side, shared by all ranks) are dealt at row level, each
    rank a contiguous run of the epoch's seeded order (see :mod:`lakehouse.loaders.shards`). The
    remainder of ``rows / world_size``: ``drop_last=False`` pads (a rank one row short repeats its last
    row, so every row is seen and fewer than ``world_size`` twice), ``drop_last=True`` drops those rows
    (none is seen twice); with no remainder every row is seen exactly once across the ranks. Which
    rows a rank gets depends on (``shuffle_seed``, epoch) only; their order also on the worker count.
    Reading costs the Parquet footers, plus the key column once when there is a split.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        batch_size: int = 1024,
        shuffle_seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        transform: Transform | None = None,
        split: Split | None = None,
        chunk_batches: int = 1,
        drop_last: bool = False,
    ):
        rank, world_size = distributed_rank_and_size(rank, world_size)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.snapshot = snapshot
        self.groups = row_groups(snapshot)
        self.batch_size = batch_size
        # Items yielded: ``chunk_batches`` whole batches at once (see :class:`ArrowLoader`).
        self.chunk_rows = batch_size * max(1, chunk_batches)
        self.shuffle_seed = shuffle_seed
        self.rank, self.world_size = rank, world_size
        self.transform = transform
        self.split = split
        self.epoch = 0
        selected = split_rows(self.groups, split) if split is not None else None
        self.shards = RowShards(self.groups, selected, rank, world_size, drop_last)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def rows_per_rank(self) -> int:
        """Rows each rank yields in an epoch (the same on every rank)."""
        return self.shards.rows_per_rank

    def num_batches(self) -> int:
        """Batches of ``batch_size`` each rank yields in an epoch (the same on every rank)."""
        return self.shards.num_batches(self.batch_size)

    def _tables(self) -> Iterator[pa.Table]:
        worker = get_worker_info()
        pieces = self.shards.pieces(
            self.shuffle_seed, self.epoch, self.batch_size, worker.id if worker else 0, worker.num_workers if worker else 1
        )
        columns, files, last = list(self.snapshot.columns), {}, (None, None)
        for piece in pieces:
            group = self.groups[piece.group]
            if last[0] != piece.group:  # consecutive pieces of one group (a padded row) read it once
                if group.file not in files:
                    files[group.file] = pq.ParquetFile(_local(group.file))
                last = (piece.group, files[group.file].read_row_group(group.index, columns=columns))
            yield piece.take(last[1])

    def __iter__(self) -> Iterator[Batch]:
        # Slices of a row group are zero-copy; only a chunk that spans two row groups is concatenated.
        size = self.chunk_rows
        carry: pa.Table | None = None
        for table in self._tables():
            table = table.combine_chunks()
            offset = 0
            if carry is not None:
                offset = min(size - carry.num_rows, table.num_rows)
                carry = pa.concat_tables([carry, table.slice(0, offset)]).combine_chunks()
                if carry.num_rows < size:
                    continue
                yield self._batch(carry)
                carry = None
            while offset + size <= table.num_rows:
                yield self._batch(table.slice(offset, size))
                offset += size
            if offset < table.num_rows:
                carry = table.slice(offset)
        if carry is not None and carry.num_rows:
            yield self._batch(carry)

    def _batch(self, table: pa.Table) -> Batch:
        batch = {
            name: table.column(name).to_pylist() if name in self.snapshot.encoded else _to_tensor(name, table.column(name))
            for name in self.snapshot.columns
        }
        if self.transform is not None:
            batch = self.transform(batch)
        left_encoded = [name for name, value in batch.items() if not isinstance(value, torch.Tensor)]
        if left_encoded:
            raise UnsupportedColumnError(f"columns {left_encoded} are still not tensors after the transform: decode them")
        return batch


CHUNK_ROWS = 65_536  # rows a worker hands over at once when no column needs decoding


class ArrowLoader:
    """A DataLoader over chunks of whole batches, handing out ``batch_size`` slices of each.

    Moving a tensor from a worker process to the trainer costs about the same whatever its size, and
    so does turning an Arrow column into a tensor: done once per chunk of many batches instead of once
    per batch, both vanish next to the reading (see bench/loaders.py). Slices are views, no copies.
    """

    def __init__(self, loader: DataLoader, batch_size: int):
        self.loader, self.batch_size = loader, batch_size

    @property
    def dataset(self) -> "DeltaArrowDataset":
        return self.loader.dataset

    def __len__(self) -> int:
        """Batches in an epoch: the same on every rank."""
        return self.dataset.num_batches()

    def __iter__(self) -> Iterator[Batch]:
        for chunk in self.loader:
            rows = len(next(iter(chunk.values())))
            if rows <= self.batch_size:
                yield chunk
                continue
            for start in range(0, rows, self.batch_size):
                yield {name: values[start : start + self.batch_size] for name, values in chunk.items()}


def chunk_batches_for(snapshot: Snapshot, batch_size: int) -> int:
    """Batches per chunk a worker hands over: one when a column needs decoding, else ~CHUNK_ROWS rows."""
    return 1 if snapshot.encoded else max(1, CHUNK_ROWS // batch_size)


def make_loader(dataset: "DeltaArrowDataset", num_workers: int = 0) -> ArrowLoader:
    """Batches of ``dataset`` through ``num_workers`` worker processes; pinned memory when a GPU is present."""
    return ArrowLoader(
        DataLoader(
            dataset,
            batch_size=None,
            num_workers=num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,  # each epoch's workers see that epoch's set_epoch
        ),
        dataset.batch_size,
    )


def arrow_dataloader(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    batch_size: int = 1024,
    num_workers: int = 0,
    shuffle_seed: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    transform: Transform | None = None,
    encoded: Sequence[str] = (),
    split: Split | None = None,
    drop_last: bool = False,
) -> ArrowLoader:
    """Batches of ``table`` at ``version``; pinned memory when a GPU is present.

    Its dataset is ``loader.dataset``: call ``loader.dataset.set_epoch(n)`` for epoch n's order.
    Data-parallel: every rank gets ``len(loader)`` batches, the same on each; ``drop_last`` says what
    happens to the remainder of the rows over ``world_size`` (pad, the default, or drop: see
    :class:`DeltaArrowDataset`).
    Workers hand over chunks of many batches at once, except when a column needs decoding (there
    the work per row dwarfs the hand-over, and a chunk of decoded images would be large).
    """
    snapshot = resolve_snapshot(spark, config, table, version, columns, encoded)
    dataset = DeltaArrowDataset(
        snapshot,
        batch_size=batch_size,
        shuffle_seed=shuffle_seed,
        rank=rank,
        world_size=world_size,
        transform=transform,
        split=split,
        chunk_batches=chunk_batches_for(snapshot, batch_size),
        drop_last=drop_last,
    )
    return make_loader(dataset, num_workers)


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> Batch:
    """Move a batch to ``device``; non-blocking from pinned memory to a GPU."""
    return {name: tensor.to(device, non_blocking=device.type == "cuda") for name, tensor in batch.items()}
