"""A gold table at a pinned Delta version -> a PyTorch DataLoader through Petastorm, two ways.

- ``via="converter"``: Petastorm's ``make_spark_converter`` materialises the pinned snapshot (the
  selected columns, one side of a split) as Parquet under ``config.loader_cache``. The cache is kept
  per table version: a later run, in this process or another, reuses it while the table's version is
  unchanged, and it is deleted once the table has moved on to a newer version.
- ``via="batch_reader"``: the Delta snapshot's own Parquet files are already materialised, so
  ``make_batch_reader`` reads them in place (no copy); a version whose files have deletion vectors,
  or a table with column mapping or partition columns, is refused (the converter path reads them through Spark).

Both read through Petastorm's ``BatchedDataLoader`` (whole batches; its row-at-a-time ``DataLoader``
is several times slower) and run ``transform`` (decoding, augmentation) in Petastorm's reader workers
through a ``TransformSpec``.

Data-parallel training (``rank``/``world_size``). Petastorm's own sharding (``cur_shard``/``shard_count``)
deals whole row groups: rank r reads the row groups whose index is r modulo the shard count, so ranks
get as many rows as their row groups happen to hold, and a table with fewer row groups than ranks
(one file of one row group, say) is refused (``NoDataAvailableError``). It is not used here. Instead
the rows are dealt at row level (:mod:`lakehouse.loaders.shards`):
every rank gets the same number of rows, hence of batches, as the Arrow loader
would give it; the remainder is padded (``drop_last=False``) or dropped (``drop_last=True``). Each rank's
reader is handed only the row groups holding its rows, each with the positions to keep (subclasses
of Petastorm's ``Reader`` and ``ArrowReaderWorker``: :mod:`lakehouse.loaders.petastorm_rows`), in the
plan's seeded order for the epoch (Petastorm's own ``shuffle_rows`` is not used: its order depends on
which worker read what before).
:func:`batch_reader_loader` is that reading part alone, given the Parquet files, without Spark (for
processes that must not start it, such as ``bench/loaders.py``'s).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from pyspark.sql import SparkSession

from lakehouse.loaders.arrow_loader import Transform, distributed_rank_and_size
from lakehouse.loaders.columns import UnsupportedColumnError, spark_field_types, tensor_columns
from lakehouse.loaders.delta_files import UnsupportedTableError, latest_version, resolve_snapshot
from lakehouse.loaders.shards import Piece, RowShards, footer_row_groups, split_rows
from lakehouse.loaders.split import Split
from lakehouse.project.config import LakehouseConfig
from lakehouse.storage.catalog import current_version, read_table

# Petastorm 0.12 drives pyarrow 14 through its legacy dataset API; the deprecation notices are known
# (see STACK.md: newer pyarrow drops that API, which is why it is pinned) and say nothing to a user.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"petastorm(\..*)?$")

VIAS = ("converter", "batch_reader")
ROW_GROUP_BYTES = 8 * 1024 * 1024  # smaller than Petastorm's 32 MB: more row groups to shuffle and read in parallel


class _PandasBatchTransform:
    """Petastorm ``TransformSpec`` function: ``transform`` on the batch as tensors.

    Runs in Petastorm's reader workers. Numeric columns become tensors (no copy), encoded columns
    lists of bytes, as in the Arrow loader; multi-dimensional outputs go back as one array per row.
    """

    def __init__(self, encoded: Sequence[str], transform: Transform):
        self.encoded, self.transform = tuple(encoded), transform

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        batch = {
            name: list(frame[name])
            if name in self.encoded
            else torch.from_numpy(np.ascontiguousarray(frame[name].to_numpy()))
            for name in frame.columns
        }
        out = {}
        for name, value in self.transform(batch).items():
            array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            out[name] = list(array) if array.ndim > 1 else array
        return pd.DataFrame(out)


def _transform_spec(encoded: Sequence[str], transform: Transform | None):
    from petastorm import TransformSpec

    if encoded and transform is None:
        raise UnsupportedColumnError(f"encoded columns {list(encoded)} need a transform that decodes them")
    if transform is None:
        return None
    fields = transform.output_fields() if hasattr(transform, "output_fields") else {}
    missing = [name for name in encoded if name not in fields]
    if missing:
        raise UnsupportedColumnError(f"the transform does not say what it decodes {missing} into (output_fields)")
    edit_fields = [(name, dtype, shape, False) for name, (dtype, shape) in fields.items()]
    return TransformSpec(_PandasBatchTransform(encoded, transform), edit_fields=edit_fields)


def _cache_root(config: LakehouseConfig, table: str) -> Path:
    return Path(config.loader_cache).resolve() / "converter" / config.table(table).name


def _local_path(url: str) -> Path:
    return Path(url.removeprefix("file://").removeprefix("file:"))


def _drop_cache(entry: Path) -> None:
    """Delete one cached materialisation (its files, Petastorm's in-process record of it, our index)."""
    from petastorm.spark import SparkDatasetConverter

    info = json.loads(entry.read_text())
    if _local_path(info["cache_dir_url"]).exists():
        SparkDatasetConverter(info["cache_dir_url"], [], 0).delete()
    entry.unlink(missing_ok=True)


def cached_converter(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str,
    version: int,
    columns: Sequence[str],
    split: Split | None = None,
    min_files: int = 1,
):
    """Petastorm's converter of ``table`` at ``version`` (its columns, one side of ``split``).

    Materialised once per (version, selection) under ``config.loader_cache`` and found again by any
    later process through a small index file; caches of versions that are neither ``version`` nor the
    table's latest are deleted (the table moved on). ``min_files``: at least that many Parquet files
    (more files to read in parallel; data-parallel ranks need none: rows are dealt at row level).
    """
    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    latest = current_version(spark, config.table_path(table))
    root = _cache_root(config, table)
    root.mkdir(parents=True, exist_ok=True)
    selection = {
        "columns": list(columns),
        "where": split.where() if split else None,
        "row_group_bytes": ROW_GROUP_BYTES,
    }
    digest = hashlib.sha256(json.dumps(selection, sort_keys=True).encode()).hexdigest()[:16]
    index = root / f"v{version}-{digest}.json"
    for entry in root.glob("v*.json"):
        entry_version = json.loads(entry.read_text())["version"]
        if entry_version not in (version, latest):
            _drop_cache(entry)
    if index.exists():
        info = json.loads(index.read_text())
        if len(info["file_urls"]) >= min_files and all(_local_path(url).exists() for url in info["file_urls"]):
            return SparkDatasetConverter(info["cache_dir_url"], info["file_urls"], info["dataset_size"])
        _drop_cache(index)
    df = read_table(spark, config, table, version=version).select(*columns)
    if split is not None:
        df = df.where(split.where())
    if df.rdd.getNumPartitions() < min_files:
        df = df.repartition(min_files)
    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, root.as_uri())
    converter = make_spark_converter(df, parquet_row_group_size_bytes=ROW_GROUP_BYTES, dtype="float32")
    info = {
        "table": table,
        "version": version,
        **selection,
        "cache_dir_url": converter.cache_dir_url,
        "file_urls": converter.file_urls,
        "dataset_size": len(converter),
    }
    index.write_text(json.dumps(info, indent=1))
    return converter


def rank_pieces(
    urls: Sequence[str],
    split: Split | None,
    shuffle_seed: int | None,
    epoch: int,
    rank: int,
    world_size: int,
    drop_last: bool,
) -> tuple[RowShards, list[Piece]]:
    """This rank's share of the rows of ``urls`` (on ``split``'s side) in ``epoch``: the plan and its pieces."""
    groups = footer_row_groups(urls)
    shards = RowShards(groups, split_rows(groups, split) if split is not None else None, rank, world_size, drop_last)
    return shards, shards.pieces(shuffle_seed, epoch)


class SizedLoader:
    """Petastorm's ``BatchedDataLoader`` with its length: the batches each rank yields in the epoch."""

    def __init__(self, loader, batches: int, rows: int):
        self.loader, self.batches, self.rows = loader, batches, rows

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return self.batches

    def __getattr__(self, name):
        return getattr(self.loader, name)


@contextmanager
def batch_reader_loader(
    urls: Sequence[str],
    fields: Sequence[str] | None = None,
    batch_size: int = 256,
    workers_count: int = 2,
    reader_pool_type: str = "thread",
    transform: Transform | None = None,
    encoded: Sequence[str] = (),
    split: Split | None = None,
    shuffle_seed: int | None = None,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
) -> Iterator:
    """Yield Petastorm's ``BatchedDataLoader`` over one epoch of the Parquet files ``urls``; no Spark.

    ``fields``: the columns to read (all when ``None``). ``reader_pool_type``: ``"thread"`` or
    ``"process"`` (a pool of ``workers_count``), or ``"dummy"`` (read in the calling thread).
    ``transform`` and ``encoded`` run in the reader workers (see :func:`petastorm_dataloader`);
    ``split`` is applied when the rows are dealt to ranks (its key column read here, once). Every rank
    gets ``len(loader)`` batches, the same on each (see :mod:`lakehouse.loaders.shards`).
    """
    from petastorm.pytorch import BatchedDataLoader

    from lakehouse.loaders.petastorm_rows import planned_reader

    transform_spec = _transform_spec(encoded, transform)
    shards, pieces = rank_pieces(urls, split, shuffle_seed, epoch, rank, world_size, drop_last)
    if not pieces:  # nothing to read (an empty table or split side)
        yield SizedLoader([], 0, 0)
        return
    planned = []
    for piece in pieces:
        group = shards.groups[piece.group]
        whole = piece.rows is None and piece.num_rows == group.rows  # the whole group in file order
        planned.append((group.file, group.index, None if whole else piece.positions()))
    reader = planned_reader(
        urls, list(fields) if fields is not None else None, transform_spec, workers_count, reader_pool_type, planned
    )
    try:
        yield SizedLoader(
            BatchedDataLoader(reader, batch_size=batch_size), shards.num_batches(batch_size), shards.rows_per_rank
        )
    finally:
        reader.stop()
        reader.join()


@contextmanager
def petastorm_dataloader(
    spark: SparkSession | None,
    config: LakehouseConfig,
    table: str,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    batch_size: int = 256,
    workers_count: int = 2,
    via: str = "converter",
    shuffle_seed: int | None = None,
    epoch: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    transform: Transform | None = None,
    encoded: Sequence[str] = (),
    split: Split | None = None,
    reader_pool_type: str = "thread",
    drop_last: bool = False,
) -> Iterator:
    """Yield a DataLoader over one epoch of ``table`` at ``version`` (latest when ``None``).

    ``spark`` is needed by ``via="converter"`` only: the batch reader resolves the version with delta-rs.

    Batches are dicts of column name -> tensor. ``encoded`` binary columns reach ``transform`` as
    bytes (it must decode them and declare ``output_fields``). Shuffled when ``shuffle_seed`` is set,
    differently for each ``epoch``; with more than one worker Petastorm hands row groups over as they
    finish, so the order is reproducible with ``workers_count=1`` only (the rows a rank gets are
    reproducible whatever the worker count).

    Data-parallel: rank ``rank`` of ``world_size`` gets ``len(loader)`` batches, the same on every rank
    whatever the files' layout, and the same rows as :func:`~lakehouse.loaders.arrow_loader.arrow_dataloader`
    gives it; the remainder of the rows over ``world_size`` is padded (``drop_last=False``: ranks one
    row short repeat their last row) or dropped (``drop_last=True``). ``split`` applies first: the ranks
    share its side.
    """
    if via not in VIAS:
        raise ValueError(f"via must be one of {VIAS}, got {via!r}")
    rank, world_size = distributed_rank_and_size(rank, world_size)
    if version is None:
        version = latest_version(config, table) if spark is None else current_version(spark, config.table_path(table))
    if via == "converter":
        if spark is None:
            raise ValueError('via="converter" materialises the table through Spark: give a SparkSession')
        df = read_table(spark, config, table, version=version)
        wanted = tensor_columns(spark_field_types(df), columns, encoded)
        wanted += [name for name in encoded if name not in wanted]
        converter = cached_converter(spark, config, table, version, wanted, split)
        urls, fields, reader_split = converter.file_urls, None, None  # the cache holds one side of the split
    else:
        snapshot = resolve_snapshot(config, table, version, columns, encoded)
        if snapshot.keep:
            raise UnsupportedTableError(
                f"{table}@v{version} has rows deleted by deletion vectors, which Petastorm's reader "
                'cannot apply: use via="converter" or the Arrow loader'
            )
        if snapshot.physical_names() != list(snapshot.columns):
            raise UnsupportedTableError(
                f"{table} uses column mapping, which Petastorm's reader cannot apply: "
                'use via="converter" or the Arrow loader'
            )
        urls, fields, reader_split = list(snapshot.files), list(snapshot.columns), split
    with batch_reader_loader(
        urls,
        fields,
        batch_size,
        workers_count,
        reader_pool_type,
        transform,
        encoded,
        reader_split,
        shuffle_seed,
        epoch,
        rank,
        world_size,
        drop_last,
    ) as loader:
        yield loader
