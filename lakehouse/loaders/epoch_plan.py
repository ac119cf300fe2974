"""The Arrow loader's epoch: one global sample order, dealt to the ranks step by step, resumable at any step.

**The global order** of an epoch is a function of ``(shuffle_seed, epoch, shuffle_buffer_rows)`` and the
table's rows alone, never of the world size, the batch size or the worker count:

1. the row groups in a seeded order (file order without a seed);
2. each row group cut into *pieces* of at most ``shuffle_buffer_rows / MIX`` consecutive rows (a smaller
   group is one piece), and the groups taken ``MIX`` at a time (a *cohort*), their pieces merged in a
   seeded random interleaving that keeps each group's pieces in file order;
3. consecutive pieces of that sequence packed into *windows* of at most ``shuffle_buffer_rows`` live rows;
4. within each window, all its rows in one seeded permutation.

So a window draws on up to ``MIX`` row groups whatever their size: a row-level shuffle across row groups
with a bounded buffer, even when one row group holds more rows than the buffer. A reader holds one window
at a time (two while a batch spans a boundary) and assembles the next from its pieces, so memory is bounded
by about three times ``shuffle_buffer_rows`` rows of the loaded columns per reading process, plus a 1 MiB
read buffer per group it streams; it streams each group's pieces in file order, decoding each once.
``shuffle_buffer_rows=0`` gives the row-group shuffle Petastorm does: each group whole, its own window. What
remains of the file order: a group's early rows come in the early part of its cohort.

**Dealing, step by step.** Step ``s`` of the epoch takes the next ``world_size * batch_size`` positions
of the order; rank ``r`` gets the ``r``-th run of ``batch_size`` of them. After ``k`` steps, whatever
the world size, exactly the first ``start + k * world_size * batch_size`` positions are consumed: that one
number is the loader's resumption state, and resuming it with another world size, batch size or worker
count continues the same order. The positions left for the last, partial step are shared as
:func:`rank_segments` says (pad or drop the remainder, as torch's ``DistributedSampler``), so every
rank yields the same number of batches, whatever the file layout.

Every rank reads every window it takes rows from: with ``W`` ranks a window is read ``W`` times in all
(each rank keeps its ``1/W``), the price of a global order every rank draws from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

DEFAULT_SHUFFLE_BUFFER_ROWS = 16_384


def rank_segments(total: int, rank: int, world_size: int, drop_last: bool) -> list[tuple[int, int]]:
    """The positions of ``range(total)`` that ``rank`` gets, as ``(start, stop)`` ranges, in order.

    Pad (``drop_last=False``): ``ceil(total / world_size)`` each, a rank one short repeating its own last
    position (the one before, when it has none). Drop: ``floor(total / world_size)`` each.
    """
    if drop_last:
        share = total // world_size
        return [(rank * share, (rank + 1) * share)] if share else []
    share = -(-total // world_size)
    start, stop = rank * total // world_size, (rank + 1) * total // world_size
    segments = [(start, stop)] if stop > start else []
    if stop - start < share:
        repeat = (stop - 1) % total
        segments.append((repeat, repeat + 1))
    return segments


MIX = 8  # row groups a window draws on when they are larger than the buffer


def piece_rows(group_rows: int, shuffle_seed: int | None, shuffle_buffer_rows: int) -> int:
    """The rows of each piece a row group of ``group_rows`` rows is cut into (the whole group: one piece)."""
    if shuffle_seed is None or shuffle_buffer_rows <= 0:
        return max(1, group_rows)
    return max(1, min(group_rows, shuffle_buffer_rows // MIX))


class GlobalOrder:
    """One epoch's sequence of every live row: windows of pieces of row groups, each window's rows permuted.

    ``pieces[g]`` holds the live rows (after deletion vectors and the split) of each piece of row group
    ``g``, in file order (see :func:`piece_rows`). A position of the sequence maps to (window, offset); a
    window's rows are its pieces' live rows concatenated in window order, then permuted. ``windows[w]``
    lists the window's pieces as rows of ``units``: ``(group, piece)``.
    """

    def __init__(self, pieces: Sequence[Sequence[int]], shuffle_seed: int | None, epoch: int, shuffle_buffer_rows: int):
        self.seed, self.epoch, self.buffer_rows = shuffle_seed, epoch, max(0, int(shuffle_buffer_rows))
        groups = np.arange(len(pieces))
        if shuffle_seed is not None:
            groups = np.random.default_rng([shuffle_seed, epoch]).permutation(len(pieces))
        units = self._interleave([int(g) for g in groups], pieces)
        self.units = np.array(units, dtype=np.int64).reshape(-1, 2)
        self.unit_rows = np.array([pieces[g][k] for g, k in units], dtype=np.int64)
        self.windows = self._pack(self.unit_rows)
        sizes = [int(self.unit_rows[w].sum()) for w in self.windows]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.total = int(self.offsets[-1])

    def _interleave(self, groups: list[int], pieces: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
        """Every ``(group, piece)`` with live rows: cohort by cohort, each cohort's pieces merged at random."""
        units = []
        for first in range(0, len(groups), MIX):
            cohort = groups[first : first + MIX]
            draws = np.repeat(cohort, [len(pieces[g]) for g in cohort])
            if self.seed is not None and len(cohort) > 1:
                draws = np.random.default_rng([self.seed, self.epoch, 3, first]).permutation(draws)
            taken = dict.fromkeys(cohort, 0)
            for group in draws.tolist():
                piece, taken[group] = taken[group], taken[group] + 1
                if pieces[group][piece]:
                    units.append((group, piece))
        return units

    def _pack(self, unit_rows: np.ndarray) -> list[np.ndarray]:
        if self.seed is None or self.buffer_rows == 0:
            return [np.array([u]) for u in range(len(unit_rows))]  # each group whole and alone: zero-copy slices
        windows, current, rows = [], [], 0
        for unit, size in enumerate(unit_rows.tolist()):
            if current and rows + size > self.buffer_rows:
                windows.append(np.array(current))
                current, rows = [], 0
            current.append(unit)
            rows += size
        if current:
            windows.append(np.array(current))
        return windows

    def permutation(self, window: int) -> np.ndarray | None:
        """The order of the window's rows (``None``: as concatenated, unshuffled)."""
        if self.seed is None:
            return None
        size = int(self.offsets[window + 1] - self.offsets[window])
        return np.random.default_rng([self.seed, self.epoch, 2, window]).permutation(size)

    def locate(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """Positions ``start`` to ``stop`` of the sequence as ``(window, lo, hi)`` runs within windows."""
        runs = []
        while start < stop:
            window = int(np.searchsorted(self.offsets, start, side="right")) - 1
            first = int(self.offsets[window])
            hi = min(stop, int(self.offsets[window + 1]))
            runs.append((window, start - first, hi - first))
            start = hi
        return runs


@dataclass(frozen=True)
class RankPlan:
    """What rank ``rank`` of ``world_size`` reads of an epoch of ``total`` positions, from ``start`` on."""

    total: int
    rank: int
    world_size: int
    batch_size: int
    drop_last: bool = False
    start: int = 0

    def __post_init__(self):
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, {self.world_size}), got {self.rank}")
        if not 0 <= self.start <= self.total:
            raise ValueError(f"a resumed position must be in [0, {self.total}], got {self.start}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    @property
    def step_rows(self) -> int:
        return self.world_size * self.batch_size

    @cached_property
    def full_steps(self) -> int:
        return (self.total - self.start) // self.step_rows

    @cached_property
    def last_segments(self) -> list[tuple[int, int]]:
        """This rank's share of the last, partial step, as absolute positions."""
        base = self.start + self.full_steps * self.step_rows
        remainder = self.total - base
        return (
            [(base + a, base + b) for a, b in rank_segments(remainder, self.rank, self.world_size, self.drop_last)]
            if remainder
            else []
        )

    @property
    def num_batches(self) -> int:
        """Batches this rank yields from ``start`` to the end of the epoch (the same on every rank)."""
        return self.full_steps + (1 if self.last_segments else 0)

    @property
    def rows(self) -> int:
        """Rows this rank yields from ``start`` on (the same on every rank)."""
        return self.full_steps * self.batch_size + sum(b - a for a, b in self.last_segments)

    def batch(self, index: int) -> list[tuple[int, int]]:
        """Batch ``index``'s positions in the global order, as ``(start, stop)`` ranges."""
        if index < self.full_steps:
            first = self.start + index * self.step_rows + self.rank * self.batch_size
            return [(first, first + self.batch_size)]
        if index == self.full_steps and self.last_segments:
            return list(self.last_segments)
        raise IndexError(f"batch {index} of {self.num_batches}")

    def position_after(self, batches: int) -> int:
        """The global position consumed once every rank has yielded ``batches`` batches from ``start``."""
        if batches >= self.num_batches:
            return self.total
        return self.start + batches * self.step_rows
