"""Loader benchmark: the pyarrow->torch ceiling, Petastorm and the native Arrow loader on the same tables.

What is measured
----------------
Two Delta tables are written into a temporary warehouse, each as 4 Parquet files so that two workers
have row groups to share:

- tabular: ``gold.user_activity_daily`` with ``--rows`` rows; the loaders read three bigint columns
  (24 bytes delivered a row);
- images: ``silver.images`` holding Fashion-MNIST as PNG (``--images``: train + t10k = 70,000); the
  loaders read ``content`` (encoded bytes) and ``size_bytes`` and decode with ``DecodeImages("content")``
  into float32 [N, 1, 28, 28] in their workers (3,144 bytes delivered a row).

On each table, at each batch size (``--batch-sizes``) and worker count (``--workers``), these loaders
read every row of the same pinned version, unshuffled:

- ``pyarrow ceiling``: ``ParquetFile.iter_batches`` over the snapshot's files, 65,536 rows a call,
  each column turned into a tensor once (``torch.from_numpy``, no copy) and handed out as views of
  ``batch_size`` rows (images: then the same ``DecodeImages``), in one process with nothing else: the
  least work a loader can do. (``iter_batches(batch_size=64)`` itself is no ceiling: decoding 64 rows a
  call is 2-4x slower than this at batch sizes 64 and 1,024.) Run once per batch size (workers 0);
  every other loader's ratio is to it at the same batch size. With 2 workers a loader can exceed 1
  (two cores against one).
- ``arrow loader``: ``DeltaArrowDataset`` through ``make_loader(dataset, W)``, as ``arrow_dataloader`` builds
  it (workers hand over chunks of ~65,536 rows on the tabular table, single batches on the image table).
- ``petastorm converter``: Petastorm's batch reader + ``BatchedDataLoader`` (through ``batch_reader_loader``:
  the ``Reader`` ``make_batch_reader`` builds, handed its row groups by the loaders' row-level rank plan,
  here one rank: every row group whole, in file order) over the converter's cached copy of the version
  (``cached_converter``, 4 files, 8 MB row groups).
  0 workers is Petastorm's ``dummy`` pool (reads in the calling thread), W workers a pool of W:
  ``thread`` on the tabular table, ``thread`` and ``process`` on the image table.
- ``petastorm batch reader``: the same over the Delta snapshot's own files (no copy).
- ``petastorm default`` (tabular, batch 1,024 only): ``converter.make_torch_dataloader(batch_size=1024,
  num_epochs=1)`` as Petastorm documents it: its row-at-a-time ``petastorm.pytorch.DataLoader``, its
  default 4 reader threads, shuffled row groups. The gap to ``petastorm converter`` is what tuning buys.

How
---
Spark only prepares, in this process: it writes the tables, resolves the snapshots (file lists) and
materialises the converters, timing the one-time materialisation and a second ``cached_converter``
call for the same version (a cache hit: same files, nothing written). Then Spark is stopped. Every
configuration runs in a fresh child process (multiprocessing, "spawn") that never starts Spark: it is
handed the file lists; its DataLoader workers start as a training script's do (the platform default:
fork on Linux up to Python 3.13). The child reads every row twice, each pass through a new loader
(footers read, workers started and stopped: one epoch from scratch), and the faster pass is reported
(best of 2: the first pass also pays lazy imports and cold file pages), except that a first pass of
20 s or more is not repeated (its warm-up is then a few percent; this keeps the default run short).
Rows/s = rows / seconds; MB/s = bytes delivered (sum over each batch's tensors of
``element_size() * numel()``, after decoding) / seconds, MB = 10^6 bytes. A loader that delivers a
different number of rows than the table holds is reported as an error, not a speed.

Peak memory: a thread in the child reads, every 20 ms, the RSS of the child plus all its descendants
(DataLoader workers, forked as in a training script, and Petastorm's pool processes) and keeps the
maximum over its passes. "base" is the child's own RSS just before the first pass (the imports,
mostly torch: ~0.5 GB). RSS counts pages shared between processes (libraries, a forked worker's
copy-on-write pages) once per process, so multi-process figures overstate the memory really in use.

Noise: on a shared 2-core VM the same single-threaded PNG decoding loop varies by up to ~25% from one
few-second run to the next, so ratios within ~0.2 of each other on the image table are not a finding,
and ``--quick`` passes (tens of milliseconds on the tabular table) are a smoke test, not figures.

Duration: ``--quick`` takes 5-6 minutes on 2 cores (33 children, ~3-4 s of interpreter and import
start-up each). The default run (2,000,000 rows, 70,000 images, batch sizes 64/1,024/16,384, workers 0
and 2: 49 children) should take 15-20 minutes, about 22 at most: scaling each quick pass by the data
ratio (x10 tabular, x7 images; start-up costs included, so an upper bound) gives up to 20 minutes of
children, plus about 2 minutes of Spark preparation. The longest are the native loader with 2 workers
at batch 64 on the tabular table (~1-2 minutes) and Petastorm's process pool on the image table (each
pass starts new interpreters).

The order section (``--sections order``; on by default)
------------------------------------------------------
- Shuffle quality, on the tabular table (``user_key`` unique, so each delivered row's place in file order
  is known): one shuffled epoch at batch 1,024 through Petastorm's row-group shuffle (the batch reader, as
  ``petastorm_dataloader`` shuffles) and through the Arrow loader with buffers of 0 rows (row groups
  only), 16,384 (the default) and the whole table. Spearman's rho between file position and delivered
  position, the correlation of consecutive deliveries' file positions (lag 1), and the mean number of row
  groups a batch draws from. A perfect shuffle gives 0, 0 and as many groups as a batch can reach.
- Time to first batch, in a fresh process, shuffled, resolution included: the Arrow loader as it was
  before (a SparkSession lists the version's files: JVM start included) and as it is (delta-rs), and
  Petastorm's batch reader, on both tables.
- Resumption: a shuffled epoch read whole, then stopped half-way, its ``state_dict()`` loaded into a new
  loader and the rest read: the first batch after resuming, and the two halves' time beyond one epoch.

Usage:
  .venv/bin/python bench/loaders.py [--rows 2000000] [--images 70000] [--batch-sizes 64 1024 16384]
      [--workers 0 2] [--sections throughput order] [--out bench/results/loaders.json]
  .venv/bin/python bench/loaders.py --quick     # smoke run: 200,000 rows, 10,000 images, batches 1,024 and
                                                # 16,384; written to bench/results/loaders-quick.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import tempfile
import threading
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lakehouse.loaders.arrow_loader import DeltaArrowDataset, Snapshot, _local, chunk_batches_for, make_loader
from lakehouse.loaders.augment import DecodeImages
from lakehouse.loaders.petastorm_loader import batch_reader_loader

# Petastorm warns that its schema_fields are now whole-name patterns ("content" no longer matches
# "content_hash"), which is what we want.
warnings.filterwarnings("ignore", message="schema_fields behavior has changed", category=UserWarning)

TABULAR, IMAGES = "gold.user_activity_daily", "silver.images"
TABULAR_COLUMNS = ["user_key", "n_events", "n_views"]
IMAGE_COLUMNS, IMAGE_ENCODED = ["size_bytes"], ["content"]
FILES_PER_TABLE = 4
PASSES = 2
ONE_PASS_S = 20.0  # a first pass this long is not repeated: its warm-up share is a few percent
SAMPLE_SECONDS = 0.02
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
CHILD_TIMEOUT_S = 900
READ_ROWS = 65536  # rows the ceiling decodes per iter_batches call
DEFAULT_BATCH = 1024  # the batch size of the untuned Petastorm run
DEFAULTS = {"rows": 2_000_000, "images": 70_000, "batch_sizes": [64, 1024, 16384], "workers": [0, 2]}
QUICK = {"rows": 200_000, "images": 10_000, "batch_sizes": [1024, 16384], "workers": [0, 2]}
LOADER_ORDER = ["pyarrow ceiling", "arrow loader", "petastorm converter", "petastorm batch reader", "petastorm default"]


@dataclass(frozen=True)
class Table:
    """What a child needs to read one pinned table version, without Spark."""

    kind: str  # "tabular" or "images"
    rows: int
    snapshot: Snapshot  # the Delta version's own Parquet files and the columns to load
    converter_dir: str  # Petastorm converter cache of the same version and columns
    converter_files: tuple[str, ...]

    def transform(self) -> DecodeImages | None:
        return DecodeImages(IMAGE_ENCODED[0]) if self.snapshot.encoded else None


@dataclass(frozen=True)
class Run:
    """One measured configuration."""

    loader: str  # one of LOADER_ORDER
    workers: int
    batch_size: int
    pool: str | None = None  # Petastorm's reader pool type

    @property
    def label(self) -> str:
        return f"{self.loader} ({self.pool})" if self.pool else self.loader


# ---------------------------------------------------------------------------------------------------
# The loaders, each a context manager yielding an iterable of batches (dicts of column -> tensor).


@contextmanager
def pyarrow_ceiling(table: Table, run: Run) -> Iterator:
    """ParquetFile.iter_batches (READ_ROWS at a time) -> torch.from_numpy once, then views of batch_size rows.

    Images: the read's ``content`` becomes one list of bytes, and each batch is decoded by the same
    ``DecodeImages`` the loaders use. One process, nothing else.
    """
    snapshot, transform = table.snapshot, table.transform()
    size = run.batch_size

    def batches():
        for uri in snapshot.files:
            parquet = pq.ParquetFile(_local(uri))
            for read in parquet.iter_batches(batch_size=max(size, READ_ROWS), columns=list(snapshot.columns)):
                columns = {
                    name: read.column(name).to_pylist()
                    if name in snapshot.encoded
                    else torch.from_numpy(read.column(name).to_numpy())
                    for name in snapshot.columns
                }
                for start in range(0, read.num_rows, size):
                    batch = {name: values[start : start + size] for name, values in columns.items()}
                    yield transform(batch) if transform else batch

    yield batches()


@contextmanager
def arrow_loader(table: Table, run: Run) -> Iterator:
    """The native loader as ``arrow_dataloader`` builds it, with ``run.workers`` workers."""
    chunks = chunk_batches_for(table.snapshot, run.batch_size)
    dataset = DeltaArrowDataset(
        table.snapshot, batch_size=run.batch_size, transform=table.transform(), chunk_batches=chunks
    )
    yield make_loader(dataset, run.workers)


def _petastorm(table: Table, run: Run, urls, fields):
    """Petastorm's batch reader over ``urls``: 0 workers -> its ``dummy`` pool, else a ``run.pool`` of W."""
    return batch_reader_loader(
        urls,
        fields,
        run.batch_size,
        workers_count=max(run.workers, 1),
        reader_pool_type=run.pool,
        transform=table.transform(),
        encoded=table.snapshot.encoded,
    )


@contextmanager
def petastorm_converter(table: Table, run: Run) -> Iterator:
    """Petastorm's batch reader + BatchedDataLoader over the converter's cached copy."""
    with _petastorm(table, run, table.converter_files, None) as loader:
        yield loader


@contextmanager
def petastorm_batch_reader(table: Table, run: Run) -> Iterator:
    """Petastorm's batch reader + BatchedDataLoader over the Delta snapshot's own files."""
    with _petastorm(table, run, table.snapshot.files, table.snapshot.columns) as loader:
        yield loader


@contextmanager
def petastorm_default(table: Table, run: Run) -> Iterator:
    """``converter.make_torch_dataloader`` untuned: row-at-a-time DataLoader, its default reader pool."""
    from petastorm.spark import SparkDatasetConverter

    converter = SparkDatasetConverter(table.converter_dir, list(table.converter_files), table.rows)
    with converter.make_torch_dataloader(batch_size=run.batch_size, num_epochs=1) as loader:
        yield loader


LOADERS: dict[str, Callable] = {
    "pyarrow ceiling": pyarrow_ceiling,
    "arrow loader": arrow_loader,
    "petastorm converter": petastorm_converter,
    "petastorm batch reader": petastorm_batch_reader,
    "petastorm default": petastorm_default,
}


def plan(kind: str, batch_sizes: list[int], workers: list[int]) -> list[Run]:
    """Every configuration to measure on one table, the ceiling first at each batch size."""
    runs = []
    for batch_size in batch_sizes:
        runs.append(Run("pyarrow ceiling", 0, batch_size))
        for count in workers:
            runs.append(Run("arrow loader", count, batch_size))
            pools = ["dummy"] if count == 0 else ["thread"] if kind == "tabular" else ["thread", "process"]
            for pool in pools:
                runs.append(Run("petastorm converter", count, batch_size, pool))
                runs.append(Run("petastorm batch reader", count, batch_size, pool))
        if kind == "tabular" and batch_size == DEFAULT_BATCH:
            runs.append(Run("petastorm default", 4, batch_size, "thread"))  # Petastorm's default pool: 4 threads
    return runs


# ---------------------------------------------------------------------------------------------------
# In the child process: one configuration, timed, its memory sampled.


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process under it, from /proc/<pid>/task/<tid>/children (Linux)."""
    pids = [pid]
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = listing.read_text().split()
        except OSError:  # the thread or process ended meanwhile
            continue
        for child in children:
            pids += _descendants(int(child))
    return pids


def tree_rss() -> int:
    """Resident bytes of this process plus all its descendants.

    Linux: /proc directly (~0.3 ms); elsewhere psutil, whose ``children()`` scans every process (~2 ms).
    """
    if Path(f"/proc/{os.getpid()}/task").is_dir():
        total = 0
        for pid in _descendants(os.getpid()):
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
            except (OSError, IndexError, ValueError):  # ended since it was listed
                pass
        return total
    me = psutil.Process()
    total = 0
    for process in [me] + me.children(recursive=True):
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakMemory:
    """A thread sampling :func:`tree_rss` every ``SAMPLE_SECONDS`` while in the ``with`` block; keeps the max."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, tree_rss())
            if self._stop.wait(SAMPLE_SECONDS):
                return


def one_pass(table: Table, run: Run) -> tuple[float, int, int]:
    """Seconds, rows and bytes of one full read through a new loader."""
    rows = nbytes = 0
    started = time.perf_counter()
    with LOADERS[run.loader](table, run) as batches:
        for batch in batches:
            rows += len(next(iter(batch.values())))
            nbytes += sum(tensor.element_size() * tensor.numel() for tensor in batch.values())
    return time.perf_counter() - started, rows, nbytes


def measure(table: Table, run: Run) -> dict:
    """Best of ``PASSES`` full reads (one when it takes ``ONE_PASS_S`` or more); peak RSS of the process tree."""
    base = psutil.Process().memory_info().rss
    with PeakMemory() as memory:
        passes = [one_pass(table, run)]
        while len(passes) < PASSES and passes[0][0] < ONE_PASS_S:
            passes.append(one_pass(table, run))
    seconds, rows, nbytes = min(passes)
    return {
        "rows": rows,
        "bytes": nbytes,
        "seconds": round(seconds, 4),
        "pass_seconds": [round(p[0], 4) for p in passes],
        "rows_per_s": round(rows / seconds),
        "mb_per_s": round(nbytes / seconds / 1e6, 1),
        "peak_rss_mb": round(memory.peak / 1e6),
        "base_rss_mb": round(base / 1e6),
    }


def _child(table: Table, run: Run, connection) -> None:
    # A spawned child inherits "spawn" as its start method; its DataLoader workers should start the way
    # a training script's do, with the platform's default (fork on Linux up to Python 3.13).
    multiprocessing.set_start_method(None, force=True)
    try:
        connection.send(measure(table, run))
    except BaseException as exc:  # report it to the parent, which goes on with the next configuration
        connection.send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
    finally:
        connection.close()


def _kill_tree(pid: int) -> None:
    """End the child this benchmark started and the processes it started."""
    try:
        parent = psutil.Process(pid)
        for process in parent.children(recursive=True) + [parent]:
            process.kill()
    except psutil.Error:
        pass


def run_in_child(table: Table, run: Run) -> dict:
    """Measure ``run`` in a fresh spawned process (no Spark there); an error or timeout becomes ``error``."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(table, run, sender))
    started = time.perf_counter()
    child.start()
    sender.close()
    try:
        if receiver.poll(CHILD_TIMEOUT_S):
            result = receiver.recv()
        else:
            _kill_tree(child.pid)
            result = {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    except EOFError:
        result = {"error": "the child process died"}
    child.join()
    if "error" not in result and result["rows"] != table.rows:
        result = {**result, "error": f"delivered {result['rows']} rows, the table has {table.rows}"}
    if "error" in result and child.exitcode:
        result["error"] += f" (exit code {child.exitcode})"
    return {
        "table": table.kind,
        **asdict(run),
        "loader_label": run.label,
        **result,
        "child_wall_s": round(time.perf_counter() - started, 1),
    }


# ---------------------------------------------------------------------------------------------------
# In the parent: Spark writes the tables, resolves the snapshots and materialises the converters.


def write_tabular(spark, config, rows: int) -> None:
    """``gold.user_activity_daily`` with ``rows`` synthetic rows, in FILES_PER_TABLE files."""
    from lakehouse.storage.writer import Commit, overwrite_table

    df = (
        spark.range(rows)
        .selectExpr(
            "id AS user_key",
            "DATE'2026-11-01' AS event_date",
            "CAST(id % 30 AS INT) AS day_index",
            "id % 97 AS n_events",
            "id % 5 AS n_logins",
            "id % 89 AS n_views",
            "id % 7 AS n_likes",
            "id % 3 AS n_uploads",
        )
        .repartition(FILES_PER_TABLE)
    )
    overwrite_table(spark, config, config.table(TABULAR), df, Commit("bench", "loaders"))


def fashion_mnist_table(count: int) -> pa.Table:
    """``count`` rows of ``silver.images``: Fashion-MNIST (train, then t10k, cycled if more) as PNG."""
    from lakehouse.install.datasets import FASHION_MNIST_SPLITS, fashion_mnist_images, png_bytes

    pixels, labels = [], []
    for split in FASHION_MNIST_SPLITS:
        split_pixels, split_labels = fashion_mnist_images(split)
        pixels += split_pixels
        labels += split_labels
    pngs = [png_bytes(pixels[i % len(pixels)]) for i in range(count)]
    now = datetime.now(timezone.utc)
    return pa.table(
        {
            "content_hash": [hashlib.sha256(i.to_bytes(8, "big") + png).hexdigest() for i, png in enumerate(pngs)],
            "object_uri": [f"bench://fashion-mnist/{i:06d}.png" for i in range(count)],
            "label": [str(labels[i % len(labels)]) for i in range(count)],
            "format": ["PNG"] * count,
            "width": pa.array([28] * count, pa.int32()),
            "height": pa.array([28] * count, pa.int32()),
            "mode": ["L"] * count,
            "size_bytes": pa.array([len(png) for png in pngs], pa.int64()),
            "content": pa.array(pngs, pa.binary()),
            "first_seen_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
            "run_id": ["bench-loaders"] * count,
        }
    )


def write_images(spark, config, count: int, scratch: Path) -> None:
    """``silver.images`` holding ``count`` Fashion-MNIST PNGs, in FILES_PER_TABLE files."""
    from pyspark.sql import functions as F

    from lakehouse.storage.writer import Commit, overwrite_table

    source = scratch / "fashion-mnist.parquet"
    pq.write_table(fashion_mnist_table(count), source)
    declaration = config.table(IMAGES)
    df = (
        spark.read.parquet(str(source))
        .select(*[F.col(field.name).cast(field.dataType) for field in declaration.schema.fields])
        .repartition(FILES_PER_TABLE)
    )
    overwrite_table(spark, config, declaration, df, Commit("bench", "loaders"))


def prepare(spark, config, kind: str, rows: int, scratch: Path) -> tuple[Table, dict]:
    """Write one table, pin its version, materialise its converter; the Table and the setup figures."""
    from lakehouse.loaders.arrow_loader import resolve_snapshot, row_groups
    from lakehouse.loaders.petastorm_loader import cached_converter
    from lakehouse.storage.catalog import current_version

    name = TABULAR if kind == "tabular" else IMAGES
    started = time.perf_counter()
    if kind == "tabular":
        write_tabular(spark, config, rows)
        snapshot_args = (TABULAR_COLUMNS, ())
    else:
        write_images(spark, config, rows, scratch)
        snapshot_args = (IMAGE_COLUMNS, IMAGE_ENCODED)
    written = time.perf_counter() - started
    version = current_version(spark, config.table_path(name))
    snapshot = resolve_snapshot(config, name, version, *snapshot_args)
    columns = list(snapshot.columns)

    started = time.perf_counter()
    converter = cached_converter(spark, config, name, version, columns, min_files=FILES_PER_TABLE)
    materialised = time.perf_counter() - started
    started = time.perf_counter()
    again = cached_converter(spark, config, name, version, columns, min_files=FILES_PER_TABLE)
    second_call = time.perf_counter() - started

    table = Table(kind, rows, snapshot, converter.cache_dir_url, tuple(converter.file_urls))
    setup = {
        "table": name,
        "version": version,
        "rows": rows,
        "columns": columns,
        "write_s": round(written, 2),
        "delta_files": len(snapshot.files),
        "delta_row_groups": len(row_groups(snapshot)),
        "delta_mb": round(sum(os.path.getsize(_local(f)) for f in snapshot.files) / 1e6, 1),
        "converter_files": len(converter.file_urls),
        "converter_mb": round(sum(os.path.getsize(_local(f)) for f in converter.file_urls) / 1e6, 1),
        "converter_materialise_s": round(materialised, 2),
        "converter_second_call_s": round(second_call, 3),
        "converter_second_call_cache_hit": again.cache_dir_url == converter.cache_dir_url
        and list(again.file_urls) == list(converter.file_urls),
    }
    return table, setup


# ---------------------------------------------------------------------------------------------------
# The Arrow loader's order: shuffle quality, time to first batch, and what resuming costs.

SHUFFLE_BUFFERS = {
    "arrow, row groups only (buffer 0)": 0,
    "arrow, buffer 16,384 (default)": 16_384,
    "arrow, whole table in one buffer": 1 << 62,
}
ORDER_BATCH = 1024
TTFB_MODES = ("arrow loader, Spark resolves (before)", "arrow loader, delta-rs resolves", "petastorm batch reader")


def _file_order_index(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Tabular table (``user_key`` unique): each key's position in file order, and each position's row group."""
    keys, sizes = [], []
    for uri in snapshot.files:
        parquet = pq.ParquetFile(_local(uri))
        for index in range(parquet.num_row_groups):
            keys.append(parquet.read_row_group(index, columns=["user_key"]).column(0).to_numpy())
            sizes.append(len(keys[-1]))
    keys = np.concatenate(keys)
    position = np.full(int(keys.max()) + 1, -1, dtype=np.int64)
    position[keys] = np.arange(len(keys))
    return position, np.repeat(np.arange(len(sizes)), sizes)


def _order_figures(
    name: str, keys: np.ndarray, position: np.ndarray, group_of: np.ndarray, seconds: float, batch_size: int
) -> dict:
    original = position[keys]  # where each delivered row sits in file order
    batches = [group_of[original[i : i + batch_size]] for i in range(0, len(original), batch_size)]
    return {
        "order": name,
        "rows": int(len(original)),
        "every_row_once": bool(len(np.unique(original)) == len(original) == int((position >= 0).sum())),
        # Spearman's rho of file position against delivered position (both are ranks): 0 when no trace is left
        "spearman_rho": round(float(np.corrcoef(original, np.arange(len(original)))[0, 1]), 4),
        # consecutive deliveries' file positions: near 1 when neighbours come from the same place in the files
        "lag1_correlation": round(float(np.corrcoef(original[:-1], original[1:])[0, 1]), 4),
        "row_groups_per_batch": round(float(np.mean([len(np.unique(b)) for b in batches])), 2),
        "pass_s": round(seconds, 2),
    }


def _keys(batches) -> np.ndarray:
    return np.concatenate([batch["user_key"].numpy() for batch in batches])


def order_quality(table: Table, batch_size: int = ORDER_BATCH) -> list[dict]:
    """One shuffled epoch of the tabular table through Petastorm's row-group shuffle and through the Arrow
    loader at three buffer sizes: how much of the file order survives in the delivered order."""
    snapshot = replace(table.snapshot, columns=("user_key",), physical=())
    position, group_of = _file_order_index(snapshot)
    results = []
    started = time.perf_counter()
    with batch_reader_loader(snapshot.files, ["user_key"], batch_size, 1, "dummy", shuffle_seed=0) as loader:
        keys = _keys(loader)
    results.append(
        _order_figures(
            "petastorm batch reader (row groups)", keys, position, group_of, time.perf_counter() - started, batch_size
        )
    )
    for name, buffer_rows in SHUFFLE_BUFFERS.items():
        started = time.perf_counter()
        dataset = DeltaArrowDataset(snapshot, batch_size=batch_size, shuffle_seed=0, shuffle_buffer_rows=buffer_rows)
        keys = _keys(make_loader(dataset, 0))
        results.append(_order_figures(name, keys, position, group_of, time.perf_counter() - started, batch_size))
    return results


def _first_batch(mode: str, table: Table, warehouse: str, batch_size: int, workers: int) -> dict:
    """Seconds from nothing resolved to the first batch, one way (in a fresh child)."""
    from lakehouse.project.config import load_config

    config = load_config(environ={"LAKEHOUSE_WAREHOUSE": warehouse})
    name, version, columns = table.snapshot.table, table.snapshot.version, list(table.snapshot.columns)
    started = time.perf_counter()
    if mode.startswith("arrow loader, Spark"):  # what the loader did before: a SparkSession lists the files
        from lakehouse.engine.session import get_spark

        spark = get_spark(config, app_name="ttfb")
        files = spark.read.format("delta").option("versionAsOf", version).load(config.table_path(name)).inputFiles()
        spark.sql(f"DESCRIBE DETAIL delta.`{config.table_path(name)}`").first()
        snapshot = Snapshot(name, version, tuple(sorted(files)), tuple(columns), table.snapshot.encoded)
        resolved = time.perf_counter() - started
    elif mode.startswith("arrow loader"):
        from lakehouse.loaders.delta_files import resolve_snapshot

        snapshot = resolve_snapshot(
            config,
            name,
            version,
            columns=[c for c in columns if c not in table.snapshot.encoded],
            encoded=table.snapshot.encoded,
        )
        resolved = time.perf_counter() - started
    if mode.startswith("arrow loader"):
        dataset = DeltaArrowDataset(
            snapshot,
            batch_size=batch_size,
            shuffle_seed=0,
            transform=table.transform(),
            chunk_batches=chunk_batches_for(snapshot, batch_size),
        )
        next(iter(make_loader(dataset, workers)))
    else:
        from lakehouse.loaders.delta_files import resolve_snapshot

        snapshot = resolve_snapshot(
            config,
            name,
            version,
            columns=[c for c in columns if c not in table.snapshot.encoded],
            encoded=table.snapshot.encoded,
        )
        resolved = time.perf_counter() - started
        with batch_reader_loader(
            snapshot.files,
            columns,
            batch_size,
            max(workers, 1),
            "thread",
            shuffle_seed=0,
            transform=table.transform(),
            encoded=table.snapshot.encoded,
        ) as loader:
            next(iter(loader))
    return {"resolve_s": round(resolved, 3), "first_batch_s": round(time.perf_counter() - started, 3)}


def _resumption(table: Table, batch_size: int, workers: int) -> dict:
    """A shuffled epoch whole, then stopped half-way and resumed in a new loader: the first batch and the rest."""

    def loader():
        dataset = DeltaArrowDataset(
            table.snapshot,
            batch_size=batch_size,
            shuffle_seed=0,
            transform=table.transform(),
            chunk_batches=chunk_batches_for(table.snapshot, batch_size),
        )
        return make_loader(dataset, workers)

    def timed(batches, stop=None):
        started, first, count = time.perf_counter(), None, 0
        for _ in batches:
            first = first or time.perf_counter() - started
            count += 1
            if count == stop:
                break
        return first, time.perf_counter() - started, count

    whole = loader()
    first_fresh, whole_s, total = timed(whole)
    stopped = loader()
    _, half_s, _ = timed(stopped, total // 2)
    state = stopped.state_dict()
    resumed = loader()
    started = time.perf_counter()
    resumed.load_state_dict(state)
    load_s = time.perf_counter() - started
    first_resumed, rest_s, rest = timed(resumed)
    return {
        "batches": total,
        "stopped_after": total // 2,
        "resumed_batches": rest,
        "exact": total // 2 + rest == total,
        "whole_epoch_s": round(whole_s, 3),
        "first_batch_fresh_s": round(first_fresh, 3),
        "first_half_s": round(half_s, 3),
        "load_state_s": round(load_s, 6),
        "first_batch_resumed_s": round(first_resumed, 3),
        "rest_after_resume_s": round(rest_s, 3),
        # resuming costs what the two halves take beyond one whole epoch (a new loader, a window read again)
        "resumption_overhead_s": round(half_s + rest_s - whole_s, 3),
    }


def _order_child(task: str, table: Table, warehouse: str, options: dict, connection) -> None:
    multiprocessing.set_start_method(None, force=True)
    try:
        if task == "resume":
            connection.send(_resumption(table, **options))
        else:
            connection.send(_first_batch(task, table, warehouse, **options))
    except BaseException as exc:
        connection.send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
    finally:
        connection.close()


def order_in_child(task: str, table: Table, warehouse: str, **options) -> dict:
    """Time to first batch (``task``: one of TTFB_MODES) or resumption (``"resume"``) in a fresh spawned process."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_order_child, args=(task, table, warehouse, options, sender))
    child.start()
    sender.close()
    try:
        result = (
            receiver.recv() if receiver.poll(CHILD_TIMEOUT_S) else {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
        )
    except EOFError:
        result = {"error": "the child process died"}
    if child.is_alive():
        _kill_tree(child.pid)
    child.join()
    return {"table": table.kind, "task": task, **options, **result}


def print_order(quality: list[dict], first_batches: list[dict], resumptions: list[dict]) -> None:
    print(f"\nshuffle quality, tabular table, one epoch, batch {ORDER_BATCH} (0 / low: no trace of the file order)")
    print(f"{'order':<40} {'rho':>8} {'lag-1':>8} {'groups/batch':>13} {'once':>5} {'pass s':>7}")
    for r in quality:
        print(
            f"{r['order']:<40} {r['spearman_rho']:>8.4f} {r['lag1_correlation']:>8.4f} "
            f"{r['row_groups_per_batch']:>13.2f} {str(r['every_row_once']):>5} {r['pass_s']:>7.2f}"
        )
    print("\ntime to first batch (fresh process, shuffled, resolution included)")
    print(f"{'table':<8} {'way':<40} {'workers':>7} {'batch':>6} {'resolve s':>10} {'first batch s':>14}")
    for r in first_batches:
        tail = (
            f"error: {r['error'].splitlines()[0][:60]}"
            if "error" in r
            else f"{r['resolve_s']:>10.3f} {r['first_batch_s']:>14.3f}"
        )
        print(f"{r['table']:<8} {r['task']:<40} {r['workers']:>7} {r['batch_size']:>6} {tail}")
    print("\nresumption (Arrow loader, shuffled epoch stopped half-way, resumed in a new loader)")
    print(
        f"{'table':<8} {'workers':>7} {'batch':>6} {'epoch s':>8} {'halves s':>9} {'overhead s':>11} "
        f"{'1st fresh s':>12} {'1st resumed s':>14} {'exact':>6}"
    )
    for r in resumptions:
        if "error" in r:
            print(f"{r['table']:<8} error: {r['error'].splitlines()[0][:80]}")
            continue
        print(
            f"{r['table']:<8} {r['workers']:>7} {r['batch_size']:>6} {r['whole_epoch_s']:>8.2f} "
            f"{r['first_half_s'] + r['rest_after_resume_s']:>9.2f} {r['resumption_overhead_s']:>11.2f} "
            f"{r['first_batch_fresh_s']:>12.3f} {r['first_batch_resumed_s']:>14.3f} {str(r['exact']):>6}"
        )


def measure_order(tables: dict[str, Table], warehouse: str, workers: int) -> dict:
    """The order section: shuffle quality, time to first batch each way, resumption, per table."""
    quality = order_quality(tables["tabular"])
    batch = {"tabular": ORDER_BATCH, "images": 256}
    first_batches = [
        order_in_child(mode, table, warehouse, batch_size=batch[kind], workers=workers)
        for kind, table in tables.items()
        for mode in TTFB_MODES
    ]
    resumptions = [
        order_in_child("resume", table, warehouse, batch_size=batch[kind], workers=workers)
        for kind, table in tables.items()
    ]
    print_order(quality, first_batches, resumptions)
    return {"shuffle_quality": quality, "time_to_first_batch": first_batches, "resumption": resumptions}


# ---------------------------------------------------------------------------------------------------
# Report.


def add_ratios(results: list[dict]) -> None:
    """Each result's rows/s over the ceiling's on the same table at the same batch size."""
    ceilings = {
        (r["table"], r["batch_size"]): r["rows_per_s"]
        for r in results
        if r["loader"] == "pyarrow ceiling" and "error" not in r
    }
    for r in results:
        ceiling = ceilings.get((r["table"], r["batch_size"]))
        r["ratio_to_ceiling"] = round(r["rows_per_s"] / ceiling, 3) if ceiling and "error" not in r else None


def print_table(kind: str, setup: dict, results: list[dict]) -> None:
    """One table's setup figures, then a line per configuration: speed, memory, ratio to the ceiling."""
    what = "3 bigint columns" if kind == "tabular" else "PNG -> float32 1x28x28 + size_bytes (decoded in the workers)"
    print(
        f"\n{kind}: {setup['table']} v{setup['version']}, {setup['rows']:,} rows, {what}; "
        f"{setup['delta_files']} Delta files / {setup['converter_files']} converter files"
    )
    print(
        f"  converter: materialised once in {setup['converter_materialise_s']:.1f} s ({setup['converter_mb']} MB); "
        f"second call {setup['converter_second_call_s']:.3f} s, "
        f"cache hit: {setup['converter_second_call_cache_hit']}"
    )
    print(
        f"{'loader':<34} {'workers':>7} {'batch':>6} {'rows/s':>12} {'MB/s':>8} "
        f"{'peak MB':>8} {'base MB':>8} {'vs ceiling':>10}"
    )
    order = {name: i for i, name in enumerate(LOADER_ORDER)}
    mine = sorted(
        (r for r in results if r["table"] == kind),
        key=lambda r: (order[r["loader"]], r["pool"] or "", r["workers"], r["batch_size"]),
    )
    for r in mine:
        head = f"{r['loader_label']:<34} {r['workers']:>7} {r['batch_size']:>6}"
        if "error" in r:
            print(f"{head}  error: {r['error'].splitlines()[0][:100]}")
            continue
        ratio = f"{r['ratio_to_ceiling']:.3f}" if r["ratio_to_ceiling"] is not None else "-"
        print(
            f"{head} {r['rows_per_s']:>12,} {r['mb_per_s']:>8.1f} "
            f"{r['peak_rss_mb']:>8,} {r['base_rss_mb']:>8,} {ratio:>10}"
        )


def machine() -> dict:
    """Where and with what the figures were taken."""
    import petastorm
    import pyspark

    cpuinfo = Path("/proc/cpuinfo")
    models = (
        [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        if cpuinfo.exists()
        else []
    )
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": models[0] if models else platform.processor(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "gpu": torch.cuda.is_available(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyarrow": pa.__version__,
        "petastorm": petastorm.__version__,
        "pyspark": pyspark.__version__,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help=f"tabular rows (default {DEFAULTS['rows']:,})")
    parser.add_argument("--images", type=int, help=f"image rows (default {DEFAULTS['images']:,}: all of Fashion-MNIST)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help=f"default {DEFAULTS['batch_sizes']}")
    parser.add_argument("--workers", type=int, nargs="+", help=f"default {DEFAULTS['workers']}")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: defaults become {QUICK}")
    parser.add_argument("--out", help="JSON file (default bench/results/loaders.json; --quick: loaders-quick.json)")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=("throughput", "order"),
        default=["throughput", "order"],
        help="throughput: every loader at every batch size and worker count; order: shuffle quality, "
        "time to first batch, resumption (default: both)",
    )
    args = parser.parse_args()
    args.out = args.out or f"bench/results/loaders{'-quick' if args.quick else ''}.json"
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main() -> None:
    from lakehouse.engine.session import get_spark
    from lakehouse.project.config import load_config

    args = parse_args()
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="lakehouse-loaders-"))
    try:
        config = load_config(environ={"LAKEHOUSE_WAREHOUSE": str(root / "wh")})
        spark = get_spark(config)
        try:
            tables, setups = {}, {}
            for kind, rows in (("tabular", args.rows), ("images", args.images)):
                tables[kind], setups[kind] = prepare(spark, config, kind, rows, root)
                print(f"prepared {kind}: {setups[kind]}", flush=True)
        finally:
            spark.stop()  # the children never need it; its JVM would only take memory from them
        results = []
        order = measure_order(tables, str(root / "wh"), max(args.workers)) if "order" in args.sections else None
        for kind, table in tables.items() if "throughput" in args.sections else ():
            for run in plan(kind, args.batch_sizes, args.workers):
                result = run_in_child(table, run)
                results.append(result)
                speed = result.get("error") or f"{result['rows_per_s']:,} rows/s, peak {result['peak_rss_mb']:,} MB"
                print(
                    f"  {kind:<7} {run.label:<34} workers={run.workers} batch={run.batch_size:<6} "
                    f"{speed.splitlines()[0]} ({result['child_wall_s']} s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    add_ratios(results)
    for kind in tables:
        print_table(kind, setups[kind], results)
    total = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "settings": {
            "rows": args.rows,
            "images": args.images,
            "batch_sizes": args.batch_sizes,
            "workers": args.workers,
            "timing": f"best of {PASSES} passes; one when it takes {ONE_PASS_S:.0f} s or more",
            "sample_ms": SAMPLE_SECONDS * 1000,
            "quick": args.quick,
        },
        "tables": setups,
        "results": results,
        "order": order,
        "total_s": total,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{len(results)} configurations in {total:.0f} s; written to {out}")


if __name__ == "__main__":
    main()
