"""A pinned Delta snapshot -> PyTorch batches, reading its Parquet files directly with pyarrow; no Spark.

delta-rs resolves which files make up the table at the pinned version, which rows their deletion
vectors removed and which physical column names they use (:mod:`lakehouse.loaders.delta_files`); no
JVM is involved. Each worker process reads row groups with pyarrow and hands columns to torch.

The epoch's sample order is global and a function of ``(shuffle_seed, epoch)`` alone: windows drawing
on several row groups (cut into pieces when large), each window's rows permuted together, a bounded
buffer of ``shuffle_buffer_rows`` rows per reading process (:mod:`lakehouse.loaders.epoch_plan`). Each
step deals the next ``world_size * batch_size`` rows of that order to the ranks, so every rank yields
the same number of batches whatever
the file layout, and the loader's state is one position: :meth:`ArrowLoader.state_dict` and
:meth:`ArrowLoader.load_state_dict` (the torchdata ``StatefulDataLoader`` convention) resume an epoch
mid-way with exactly the rows not yet yielded, with any number of workers, and with another world size
or batch size continue the same order. Batch ``i`` of a rank comes from worker ``i mod workers``, which
DataLoader's round robin hands over in order: the order does not depend on the worker count either.

Binary image columns reach the transform as bytes, to be decoded (and augmented) in the workers; a
:class:`~lakehouse.loaders.split.Split` keeps one side of a stable hash split of the key before the
rows are ordered. Partition columns are refused: their values live in the log, not in the files.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lakehouse.loaders.columns import UnsupportedColumnError
from lakehouse.loaders.delta_files import Snapshot, UnsupportedTableError, local_path, resolve_snapshot
from lakehouse.loaders.epoch_plan import DEFAULT_SHUFFLE_BUFFER_ROWS, MIX, GlobalOrder, RankPlan, piece_rows
from lakehouse.loaders.shards import RowGroup, footer_row_groups, split_rows
from lakehouse.loaders.split import Split
from lakehouse.project.config import LakehouseConfig

# Tensors share Arrow's read-only buffers (no copy); torch warns that writing to them is undefined.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)

Batch = dict[str, torch.Tensor]  # before the transform, an encoded column holds a list of bytes
Transform = Callable[[Batch], Batch]
STATE_FORMAT = 2  # 2: row groups cut into pieces, cohorts interleaved (see epoch_plan)
STREAM_BUFFER_BYTES = 1 << 20  # a streamed row group is read through this buffer, not whole column chunks

_local = local_path

__all__ = [
    "ArrowLoader",
    "DeltaArrowDataset",
    "Snapshot",
    "UnsupportedTableError",
    "arrow_dataloader",
    "make_loader",
    "resolve_snapshot",
    "row_groups",
    "to_device",
]


def row_groups(snapshot: Snapshot) -> list[RowGroup]:
    """Every row group of the snapshot, in file order (read from the Parquet footers only)."""
    return footer_row_groups(snapshot.files)


def live_rows(snapshot: Snapshot, groups: Sequence[RowGroup], split: Split | None) -> tuple[np.ndarray, ...] | None:
    """Each row group's live positions: not removed by a deletion vector, and on ``split``'s side.

    ``None`` when every row of every group is live (no deletion vector, no split): nothing is read.
    """
    if not snapshot.keep and split is None:
        return None
    if split is not None:  # the key's name in the files, for a table with column mapping
        key = dict(zip(snapshot.columns, snapshot.physical_names())).get(split.key, split.key)
        on_side = split_rows(groups, Split(key, split.name, split.holdout_percent))
    selected, first_row = [], {}
    for index, group in enumerate(groups):
        offset = first_row.get(group.file, 0)
        first_row[group.file] = offset + group.rows
        rows = on_side[index] if split is not None else np.arange(group.rows, dtype=np.int64)
        mask = snapshot.keep.get(group.file)
        if mask is not None:
            live = np.ones(group.rows, dtype=bool)
            part = mask[offset : offset + group.rows]
            live[: len(part)] = part
            rows = rows[live[rows]]
        selected.append(rows)
    return tuple(selected)


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


class _PieceStream:
    """A row group read piece after piece in file order: record batches cut to the pieces' sizes."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self.batches, self.next_piece, self.left = batches, 0, None

    def take(self, rows: int) -> pa.Table:
        """The next ``rows`` rows (a piece), whatever sizes the reader's batches come in."""
        parts = [self.left] if self.left is not None else []
        held = sum(part.num_rows for part in parts)
        while held < rows:
            batch = next(self.batches)
            parts.append(pa.Table.from_batches([batch]))
            held += batch.num_rows
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        self.left = table.slice(rows) if table.num_rows > rows else None
        self.next_piece += 1
        return table.slice(0, rows)


class _WindowReader:
    """One reading process's windows of the global order: each read once, at most two held at a time.

    A row group that is one piece is read whole (``read_row_group``); one cut into pieces is streamed,
    piece after piece in file order (``iter_batches``), so each is decoded once and at most a piece of
    it is held; streams a reader no longer needs are closed, oldest first, past ``2 * MIX``.
    """

    def __init__(self, dataset: "DeltaArrowDataset", order: GlobalOrder):
        self.dataset, self.order = dataset, order
        self.files: dict[str, pq.ParquetFile] = {}
        self.streams: OrderedDict[int, _PieceStream] = OrderedDict()  # by row group
        self.held: OrderedDict[int, tuple[pa.Table, np.ndarray | None]] = OrderedDict()
        self.windows_read = 0

    def _file(self, uri: str, streamed: bool) -> pq.ParquetFile:
        key = ("stream:" if streamed else "") + uri
        if key not in self.files:
            self.files[key] = pq.ParquetFile(local_path(uri), buffer_size=STREAM_BUFFER_BYTES if streamed else 0)
        return self.files[key]

    def _piece(self, group_index: int, piece: int) -> pa.Table:
        """Piece ``piece`` of row group ``group_index``: its file rows, all columns to load."""
        dataset = self.dataset
        group, size = dataset.groups[group_index], dataset.piece_rows[group_index]
        names = dataset.snapshot.physical_names()
        if size >= group.rows:
            return self._file(group.file, False).read_row_group(group.index, columns=names)
        stream = self.streams.pop(group_index, None)
        if stream is None or stream.next_piece > piece:
            batches = self._file(group.file, True).iter_batches(
                batch_size=size, row_groups=[group.index], columns=names, use_threads=False
            )
            stream = _PieceStream(batches)
        while stream.next_piece < piece:  # pieces this reader does not need (another worker's): decoded, dropped
            stream.take(size)
        table = stream.take(min(size, group.rows - piece * size))
        if stream.next_piece * size < group.rows:
            self.streams[group_index] = stream
            while len(self.streams) > 2 * MIX:
                self.streams.popitem(last=False)
        return table

    def _window(self, window: int) -> tuple[pa.Table, np.ndarray | None]:
        if window not in self.held:
            dataset, parts = self.dataset, []
            for unit in self.order.windows[window]:
                group_index, piece = (int(x) for x in self.order.units[unit])
                table = self._piece(group_index, piece).rename_columns(list(dataset.snapshot.columns))
                rows = dataset.piece_selection(group_index, piece)
                parts.append(table if rows is None or len(rows) == table.num_rows else table.take(pa.array(rows)))
            table = parts[0] if len(parts) == 1 else pa.concat_tables(parts).combine_chunks()
            self.held[window] = (table, self.order.permutation(window))
            self.windows_read += 1
            while len(self.held) > 2:
                self.held.popitem(last=False)
        return self.held[window]

    def rows(self, window: int, lo: int, hi: int) -> pa.Table:
        """Rows ``lo`` to ``hi`` of the window in the epoch's order."""
        table, permutation = self._window(window)
        if permutation is None:
            return table.slice(lo, hi - lo)  # zero-copy
        return table.take(pa.array(permutation[lo:hi]))


class DeltaArrowDataset(IterableDataset):
    """Batches (dicts of column -> tensor) of a pinned snapshot, in the epoch's global order, for one rank.

    Use with :func:`make_loader` (a ``DataLoader(dataset, batch_size=None, num_workers=N)`` also works,
    without resumption): batching happens here, and each worker reads its own batches. ``transform``
    runs in the workers (decoding and augmentation off the training loop). Call :meth:`set_epoch`
    before each epoch for that epoch's order. ``rank`` and ``world_size`` default to torch.distributed's
    when a process group is initialised.

    The order (see :mod:`lakehouse.loaders.epoch_plan`): with ``shuffle_seed``, row groups in a seeded
    order, cut into pieces of at most ``shuffle_buffer_rows / MIX`` rows, eight groups' pieces interleaved
    at random and packed into windows of at most ``shuffle_buffer_rows`` rows, each window's rows permuted
    together (``0``: within each row group only); without, file order. Memory: each reading process
    holds one window of the loaded columns (two across a boundary) and a piece of each group it streams.
    Every rank yields the same number of batches, :meth:`num_batches`; the rows left over by
    ``world_size`` are padded
    (``drop_last=False``: fewer than ``world_size`` rows seen twice) or dropped (``drop_last=True``).
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
        shuffle_buffer_rows: int = DEFAULT_SHUFFLE_BUFFER_ROWS,
    ):
        rank, world_size = distributed_rank_and_size(rank, world_size)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.snapshot = snapshot
        self.groups = row_groups(snapshot)
        self.batch_size = batch_size
        self.chunk_batches = max(1, chunk_batches)  # whole batches a worker hands over at once (see ArrowLoader)
        self.shuffle_seed = shuffle_seed
        self.shuffle_buffer_rows = shuffle_buffer_rows
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.transform = transform
        self.split = split
        self.epoch = 0
        self.start = 0  # the global position this epoch's pass begins at (a resumed epoch: where it stopped)
        self.selected = live_rows(snapshot, self.groups, split)
        self.piece_rows = [piece_rows(g.rows, shuffle_seed, shuffle_buffer_rows) for g in self.groups]
        self.pieces = [self._piece_counts(i) for i in range(len(self.groups))]
        self.total = int(sum(int(counts.sum()) for counts in self.pieces))

    def _piece_counts(self, group_index: int) -> np.ndarray:
        """The live rows of each piece of a row group."""
        rows, size = self.groups[group_index].rows, self.piece_rows[group_index]
        count = -(-rows // size)
        if self.selected is None:
            return np.minimum(size, rows - np.arange(count) * size).astype(np.int64)
        return np.bincount(self.selected[group_index] // size, minlength=count).astype(np.int64)

    def piece_selection(self, group_index: int, piece: int) -> np.ndarray | None:
        """The live rows of a piece, as positions within it (``None``: all of them)."""
        if self.selected is None:
            return None
        size, rows = self.piece_rows[group_index], self.selected[group_index]
        first = piece * size
        lo, hi = np.searchsorted(rows, [first, first + size])
        return rows[lo:hi] - first

    def set_epoch(self, epoch: int) -> None:
        """Read ``epoch``'s order next; a new epoch starts at its beginning (a resumed one where it stopped)."""
        if epoch != self.epoch:
            self.start = 0
        self.epoch = epoch

    def order(self) -> GlobalOrder:
        """The current epoch's global order of every live row (the same on every rank)."""
        return GlobalOrder(self.pieces, self.shuffle_seed, self.epoch, self.shuffle_buffer_rows)

    def plan(self) -> RankPlan:
        """This rank's batches of the current epoch, from :attr:`start` on."""
        return RankPlan(self.total, self.rank, self.world_size, self.batch_size, self.drop_last, self.start)

    @property
    def rows_per_rank(self) -> int:
        """Rows each rank yields in this pass of the epoch (the same on every rank)."""
        return self.plan().rows

    def num_batches(self) -> int:
        """Batches of ``batch_size`` each rank yields in this pass of the epoch (the same on every rank)."""
        return self.plan().num_batches

    def __iter__(self) -> Iterator[Batch]:
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        plan, order = self.plan(), self.order()
        reader = _WindowReader(self, order)
        per_chunk = self.chunk_batches
        chunks = -(-plan.num_batches // per_chunk)
        for chunk in range(worker_id, chunks, workers):  # chunk i from worker i mod workers: DataLoader's order
            parts = [
                reader.rows(window, lo, hi)
                for index in range(chunk * per_chunk, min((chunk + 1) * per_chunk, plan.num_batches))
                for start, stop in plan.batch(index)
                for window, lo, hi in order.locate(start, stop)
            ]
            yield self._batch(parts[0] if len(parts) == 1 else pa.concat_tables(parts))

    def _batch(self, table: pa.Table) -> Batch:
        batch = {
            name: table.column(name).to_pylist()
            if name in self.snapshot.encoded
            else _to_tensor(name, table.column(name))
            for name in self.snapshot.columns
        }
        if self.transform is not None:
            batch = self.transform(batch)
        left_encoded = [name for name, value in batch.items() if not isinstance(value, torch.Tensor)]
        if left_encoded:
            raise UnsupportedColumnError(
                f"columns {left_encoded} are still not tensors after the transform: decode them"
            )
        return batch


CHUNK_ROWS = 65_536  # rows a worker hands over at once when no column needs decoding


class ArrowLoader:
    """A DataLoader over chunks of whole batches, handing out ``batch_size`` slices of each; resumable.

    Moving a tensor from a worker process to the trainer costs about the same whatever its size, and
    so does turning an Arrow column into a tensor: done once per chunk of many batches instead of once
    per batch, both vanish next to the reading (see bench/loaders.py). Slices are views, no copies.

    :meth:`state_dict` after any batch says how far the epoch got (counting the batches handed out,
    not those prefetched); :meth:`load_state_dict` on a new loader over the same table version,
    seed and split makes its next pass yield exactly the rest of that epoch, whatever its world size,
    batch size or worker count.
    """

    def __init__(self, loader: DataLoader, batch_size: int):
        self.loader, self.batch_size = loader, batch_size
        self._plan: RankPlan | None = None
        self._yielded = 0

    @property
    def dataset(self) -> "DeltaArrowDataset":
        return self.loader.dataset

    def __len__(self) -> int:
        """Batches the next pass yields (a whole epoch, or what a resumed one has left): the same on every rank."""
        return self.dataset.num_batches()

    def __iter__(self) -> Iterator[Batch]:
        dataset = self.dataset
        self._plan, self._yielded = dataset.plan(), 0
        for chunk in self.loader:
            rows = len(next(iter(chunk.values())))
            for start in range(0, rows, self.batch_size) if rows > self.batch_size else (0,):
                batch = (
                    chunk
                    if rows <= self.batch_size
                    else {name: values[start : start + self.batch_size] for name, values in chunk.items()}
                )
                self._yielded += 1  # counted before the hand-over: a state taken after this batch includes it
                yield batch
        dataset.start = 0  # the epoch is done: a later pass of it starts from the beginning

    def state_dict(self) -> dict[str, Any]:
        """Where this rank's epoch stands: a position in the global order, plus what that order depends on."""
        dataset = self.dataset
        position = dataset.start if self._plan is None else self._plan.position_after(self._yielded)
        return {
            "format": STATE_FORMAT,
            **self._order_identity(),
            "epoch": dataset.epoch,
            "position": position,
            "world_size": dataset.world_size,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the epoch ``state`` was taken in, from its position. Raises :class:`ValueError` when the
        state was taken over another table version, seed, buffer or split (its order would differ)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not an Arrow loader state (format {state.get('format')!r}, expected {STATE_FORMAT})")
        mismatched = {
            key: (state.get(key), value) for key, value in self._order_identity().items() if state.get(key) != value
        }
        if mismatched:
            details = ", ".join(
                f"{key}: saved {saved!r}, this loader {now!r}" for key, (saved, now) in mismatched.items()
            )
            raise ValueError(
                f"the saved loader state belongs to another order ({details}): resume with the same settings"
            )
        dataset = self.dataset
        dataset.set_epoch(int(state["epoch"]))
        dataset.start = int(state["position"])
        self._plan, self._yielded = None, 0

    def _order_identity(self) -> dict[str, Any]:
        dataset = self.dataset
        split = dataset.split
        return {
            "table": dataset.snapshot.table,
            "version": dataset.snapshot.version,
            "rows": dataset.total,
            "shuffle_seed": dataset.shuffle_seed,
            "shuffle_buffer_rows": dataset.shuffle_buffer_rows if dataset.shuffle_seed is not None else None,
            "split": None if split is None else f"{split.key}:{split.name}:{split.holdout_percent}",
        }


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
            persistent_workers=False,  # each pass's workers see that pass's epoch and start
        ),
        dataset.batch_size,
    )


def arrow_dataloader(
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
    shuffle_buffer_rows: int = DEFAULT_SHUFFLE_BUFFER_ROWS,
    snapshot: Snapshot | None = None,
) -> ArrowLoader:
    """Batches of ``table`` at ``version`` (default latest); no Spark; pinned memory when a GPU is present.

    Its dataset is ``loader.dataset``: call ``loader.dataset.set_epoch(n)`` for epoch n's order, and
    ``loader.state_dict()`` / ``loader.load_state_dict(state)`` to resume an epoch. Data-parallel: every
    rank gets ``len(loader)`` batches, the same on each; ``drop_last`` says what happens to the
    remainder of the rows over ``world_size`` (pad, the default, or drop: see :class:`DeltaArrowDataset`).
    Workers hand over chunks of many batches at once, except when a column needs decoding (there the
    work per row dwarfs the hand-over, and a chunk of decoded images would be large). ``snapshot``: one
    already resolved (by :func:`resolve_snapshot`), to skip reading the log again.
    """
    if snapshot is None:
        snapshot = resolve_snapshot(config, table, version, columns, encoded)
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
        shuffle_buffer_rows=shuffle_buffer_rows,
    )
    return make_loader(dataset, num_workers)


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> Batch:
    """Move a batch to ``device``; non-blocking from pinned memory to a GPU."""
    return {name: tensor.to(device, non_blocking=device.type == "cuda") for name, tensor in batch.items()}
