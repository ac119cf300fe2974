"""Petastorm's batch reader over a given list of row-group pieces: chosen rows, in a given order.

``make_batch_reader`` can shard only by whole row group (``cur_shard``/``shard_count``: rank r reads the
row groups whose index is r modulo the shard count). To deal rows to data-parallel ranks at row level
(:mod:`lakehouse.loaders.shards`), :class:`PlannedReader` replaces the two steps of Petastorm's
``Reader`` that choose and order the work items (which row groups, in what order) with the plan's
pieces, each a row group and the positions in it to keep, and :class:`PlannedRowsWorker` keeps those
positions after reading the row group, before the ``TransformSpec`` runs. Everything else (the worker
pools, the transform, the results queue, ``BatchedDataLoader``) is Petastorm's own.

This uses ``Reader._filter_row_groups``, ``Reader._create_ventilator`` and
``ArrowReaderWorker._read_with_shuffle_row_drop``, internal to Petastorm 0.12.1 (pinned: see STACK.md;
tests/test_petastorm_loader.py checks the rows each rank gets). Importing this module imports Petastorm.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pyarrow as pa
from petastorm.arrow_reader_worker import ArrowReaderWorker
from petastorm.fs_utils import get_filesystem_and_path_or_paths
from petastorm.reader import Reader, normalize_dataset_url_or_urls
from petastorm.reader_impl.arrow_table_serializer import ArrowTableSerializer
from petastorm.workers_pool.dummy_pool import DummyPool
from petastorm.workers_pool.process_pool import ProcessPool
from petastorm.workers_pool.thread_pool import ThreadPool
from petastorm.workers_pool.ventilator import ConcurrentVentilator

from lakehouse.loaders.shards import local_path

PlannedPiece = tuple[str, int, "np.ndarray | None"]  # file, row group, positions to keep (None: all)


class PlannedRowsWorker(ArrowReaderWorker):
    """Reads a row group as Petastorm does, then keeps the positions the work item names, in order."""

    _rows: np.ndarray | None = None

    def process(self, piece_index, worker_predicate, shuffle_row_drop_partition, rows=None):
        self._rows = rows
        super().process(piece_index, worker_predicate, shuffle_row_drop_partition)

    def _read_with_shuffle_row_drop(self, piece, pq_file, column_names, shuffle_row_drop_partition):
        table = super()._read_with_shuffle_row_drop(piece, pq_file, column_names, (0, 1))
        return table if self._rows is None else table.take(pa.array(self._rows))


class PlannedReader(Reader):
    """Petastorm's ``Reader`` over ``pieces`` in that order, instead of its shards and shuffles."""

    def __init__(self, *args, pieces: Sequence[PlannedPiece], **kwargs):
        self._planned_pieces = list(pieces)
        self._planned_items: list[dict] = []
        super().__init__(*args, **kwargs)

    def _filter_row_groups(self, dataset, row_groups, predicate, rowgroup_selector, cur_shard, shard_count, seed):
        index = {(os.path.realpath(piece.path), piece.row_group): i for i, piece in enumerate(row_groups)}
        self._planned_items = [
            {
                "piece_index": index[(os.path.realpath(local_path(file)), group)],
                "worker_predicate": None,
                "shuffle_row_drop_partition": (0, 1),
                "rows": rows,
            }
            for file, group, rows in self._planned_pieces
        ]
        return sorted({item["piece_index"] for item in self._planned_items}), None

    def _create_ventilator(
        self,
        row_group_indexes,
        shuffle_row_groups,
        shuffle_row_drop_partitions,
        num_epochs,
        worker_predicate,
        max_ventilation_queue_size,
        seed,
    ):
        return ConcurrentVentilator(
            self._workers_pool.ventilate,
            self._planned_items,
            iterations=num_epochs,
            max_ventilation_queue_size=max_ventilation_queue_size,
        )


def planned_reader(
    urls: Sequence[str],
    fields: Sequence[str] | None,
    transform_spec,
    workers_count: int,
    reader_pool_type: str,
    pieces: Sequence[PlannedPiece],
) -> PlannedReader:
    """What ``make_batch_reader(urls, schema_fields=fields, ...)`` builds, reading ``pieces`` in order, once."""
    urls = normalize_dataset_url_or_urls(list(urls))
    filesystem, paths = get_filesystem_and_path_or_paths(urls, "libhdfs3")
    if reader_pool_type == "thread":
        pool = ThreadPool(workers_count, 50)  # make_batch_reader's results_queue_size
    elif reader_pool_type == "process":
        pool = ProcessPool(workers_count, ArrowTableSerializer(), zmq_copy_buffers=True)
    elif reader_pool_type == "dummy":
        pool = DummyPool()
    else:
        raise ValueError(f"unknown reader_pool_type: {reader_pool_type!r}")
    return PlannedReader(
        filesystem,
        paths,
        schema_fields=fields,
        worker_class=PlannedRowsWorker,
        reader_pool=pool,
        num_epochs=1,
        transform_spec=transform_spec,
        is_batched_reader=True,
        pieces=pieces,
    )
