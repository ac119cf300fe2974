"""Which rows each data-parallel rank reads in an epoch through Petastorm's reader (row-group shuffle).

The Petastorm paths deal rows with this plan, at row level, from the Parquet footers' row counts (the
Arrow loader has a global order of its own: :mod:`lakehouse.loaders.epoch_plan`):

1. **The split first.** With a :class:`~lakehouse.loaders.split.Split`, each row group's rows on the
   split's side are found by reading the key column alone (once, when the loader is made); the ranks
   share that side. Without one, only the footers are read.
2. **The epoch's order**, a function of ``(shuffle_seed, epoch)`` alone and so the same in every rank:
   the row groups in a seeded order, each group's rows in a seeded order of their own, one after the
   other (file order when there is no seed).
3. **Each rank a contiguous range of that order**, so a rank reads only the row groups holding its
   range (a group on a boundary is read by the two ranks that share it, each keeping its rows), and
   its DataLoader workers again split the rank's range at batch boundaries.

Equal shares: every rank gets the same number of rows ``M`` in an epoch, hence the same number of
batches ``ceil(M / batch_size)``; the last one may be short, but is as short on every rank, whatever
the file and row-group layout. With ``N`` rows (on the split's side) and ``W`` ranks, the remainder
``N mod W`` is handled as torch's ``DistributedSampler`` does:

- ``drop_last=False`` (the default): **pad**. ``M = ceil(N / W)``; a rank whose range is one row short
  repeats its own last row. Every row is seen, ``W*M - N`` (< W) rows twice.
- ``drop_last=True``: **drop**. ``M = floor(N / W)``; the last ``N mod W`` rows of the epoch's order
  are left out (other rows each epoch when shuffled). No row is seen twice.

When ``W`` divides ``N`` the two agree and every row is seen exactly once across the ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.loaders.delta_files import local_path
from lakehouse.loaders.epoch_plan import rank_segments
from lakehouse.loaders.split import Split


@dataclass(frozen=True)
class RowGroup:
    file: str
    index: int
    rows: int


def footer_row_groups(files: Sequence[str]) -> list[RowGroup]:
    """Every row group of ``files``, in the order given (read from the Parquet footers only)."""
    groups = []
    for uri in files:
        metadata = pq.ParquetFile(local_path(uri)).metadata
        groups += [RowGroup(uri, i, metadata.row_group(i).num_rows) for i in range(metadata.num_row_groups)]
    return groups


def split_rows(groups: Sequence[RowGroup], split: Split) -> tuple[np.ndarray, ...]:
    """For each row group, the positions of its rows on ``split``'s side (the key column alone is read).

    Remembered for the last few (files, split) pairs of the process, as long as the files' sizes and
    modification times hold (Petastorm's loaders are opened anew each epoch).
    """
    stats = {file: os.stat(local_path(file)) for file in dict.fromkeys(group.file for group in groups)}
    stamps = tuple((file, stat.st_size, stat.st_mtime_ns) for file, stat in stats.items())
    return _split_rows(tuple(groups), split, stamps)


@lru_cache(maxsize=4)
def _split_rows(groups: tuple[RowGroup, ...], split: Split, stamps: tuple) -> tuple[np.ndarray, ...]:
    selected, files = [], {}
    for group in groups:
        if group.file not in files:
            files[group.file] = pq.ParquetFile(local_path(group.file))
        parquet = files[group.file]
        if split.key not in parquet.schema_arrow.names:
            raise ValueError(f"split key {split.key!r} is not a column of {group.file}")
        keys = parquet.read_row_group(group.index, columns=[split.key]).column(split.key).to_numpy()
        positions = np.flatnonzero(split.mask(keys)).astype(np.int64)
        positions.setflags(write=False)  # shared by every caller
        selected.append(positions)
    return tuple(selected)


@dataclass(frozen=True)
class Piece:
    """Rows of one row group to read, in order: ``rows`` (positions in the group), or when that is
    ``None`` the positions ``start`` to ``stop`` in file order (a zero-copy slice)."""

    group: int  # index into the plan's row groups
    start: int
    stop: int
    rows: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        return self.stop - self.start

    def take(self, table: pa.Table) -> pa.Table:
        """These rows of ``table``, the whole row group as read."""
        if self.rows is None:
            return table.slice(self.start, self.num_rows)
        return table.take(pa.array(self.rows))

    def positions(self) -> np.ndarray:
        return np.arange(self.start, self.stop) if self.rows is None else self.rows


class EpochOrder:
    """One epoch's sequence of all rows (on the split's side): row groups, then rows, in seeded order."""

    def __init__(self, counts: np.ndarray, selected: Sequence[np.ndarray] | None, shuffle_seed: int | None, epoch: int):
        self.selected, self.seed, self.epoch = selected, shuffle_seed, epoch
        self.order = np.arange(len(counts))
        if shuffle_seed is not None:
            self.order = np.random.default_rng([shuffle_seed, epoch]).permutation(len(counts))
        self.offsets = np.concatenate([[0], np.cumsum(counts[self.order])]).astype(np.int64)
        self._rows: dict[int, np.ndarray | None] = {}

    def _group_rows(self, group: int, count: int) -> np.ndarray | None:
        """The group's rows in this epoch's order; ``None``: all of them, in file order."""
        if group not in self._rows:
            rows = None if self.selected is None else self.selected[group]
            if self.seed is not None:
                permutation = np.random.default_rng([self.seed, self.epoch, 1, group]).permutation(count)
                rows = permutation if rows is None else rows[permutation]
            self._rows[group] = rows
        return self._rows[group]

    def pieces(self, start: int, stop: int) -> list[Piece]:
        """The rows at positions ``start`` to ``stop`` of the sequence, as pieces of row groups."""
        pieces = []
        while start < stop:
            i = int(np.searchsorted(self.offsets, start, side="right")) - 1  # skips empty groups
            group, first = int(self.order[i]), int(self.offsets[i])
            lo, hi = start - first, min(stop, int(self.offsets[i + 1])) - first
            rows = self._group_rows(group, int(self.offsets[i + 1]) - first)
            pieces.append(Piece(group, lo, hi, None if rows is None else rows[lo:hi]))
            start = first + hi
        return pieces


class RowShards:
    """The rows of ``groups`` (only ``selected`` positions, when given) dealt to ``world_size`` ranks
    in equal shares; see the module's docstring for the order and the remainder policy."""

    def __init__(
        self,
        groups: Sequence[RowGroup],
        selected: Sequence[np.ndarray] | None = None,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.groups = tuple(groups)
        self.selected = None if selected is None else tuple(selected)
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        counts = [g.rows for g in self.groups] if self.selected is None else [len(s) for s in self.selected]
        self.counts = np.array(counts, dtype=np.int64)
        self.total = int(self.counts.sum())
        self.segments = rank_segments(self.total, rank, world_size, drop_last)
        self.rows_per_rank = sum(stop - start for start, stop in self.segments)

    def num_batches(self, batch_size: int) -> int:
        """Batches each rank yields in an epoch (the same on every rank)."""
        return -(-self.rows_per_rank // batch_size)

    def pieces(
        self, shuffle_seed: int | None, epoch: int, batch_size: int = 1, worker: int = 0, workers: int = 1
    ) -> list[Piece]:
        """What this rank's ``worker`` (of ``workers``) reads in ``epoch``, in order.

        Workers split the rank's rows at batch boundaries, each a contiguous run of whole batches
        (the last worker's may end in the rank's short batch), so that the rank's batch count does
        not depend on how many workers read it.
        """
        batches = self.num_batches(batch_size)
        first, last = worker * batches // workers, (worker + 1) * batches // workers
        start, stop = first * batch_size, min(self.rows_per_rank, last * batch_size)
        order = EpochOrder(self.counts, self.selected, shuffle_seed, epoch)
        pieces, offset = [], 0
        for seg_start, seg_stop in self.segments:  # rank positions -> positions in the epoch's order
            lo, hi = max(start, offset), min(stop, offset + seg_stop - seg_start)
            if lo < hi:
                pieces += order.pieces(seg_start + lo - offset, seg_start + hi - offset)
            offset += seg_stop - seg_start
        return pieces
