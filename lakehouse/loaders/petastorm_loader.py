"""A gold table at a pinned Delta version -> a PyTorch DataLoader through Petastorm, two ways.

- ``via="converter"``: Petastorm's ``make_spark_converter`` materialises the pinned snapshot (the
  selected columns, one side of a split) as Parquet under ``config.loader_cache``. The cache is kept
  per table version: a later run, in this process or another, reuses it while the table's version is
  unchanged, and it is deleted once the table has moved on to a newer version.
- ``via="batch_reader"``: the Delta snapshot's own Parquet files are already materialised, so
  ``make_batch_reader`` reads them in place (no copy); the same checks as the Arrow loader apply
  (no deletion vectors, column mapping or partition columns).

Both read through Petastorm's ``BatchedDataLoader`` (whole batches; its row-at-a-time ``DataLoader``
is several times slower), shard by row group for data-parallel training (``rank``/``world_size``),
shuffle row groups and rows from a seed that changes per epoch, and run ``transform`` (decoding,
augmentation) and the split filter in Petastorm's reader workers through a ``TransformSpec``.
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

from lakehouse.catalog import current_version, read_table
from lakehouse.config import LakehouseConfig
from lakehouse.loaders.arrow_loader import Transform, distributed_rank_and_size, resolve_snapshot
from lakehouse.loaders.columns import UnsupportedColumnError, tensor_columns
from lakehouse.loaders.split import Split
from lakehouse.tables import get_table

# Petastorm 0.12 drives pyarrow 14 through its legacy dataset API; the deprecation notices are known
# (see STACK.md: newer pyarrow drops that API, which is why it is pinned) and say nothing to a user.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"petastorm(\..*)?$")

VIAS = ("converter", "batch_reader")
ROW_GROUP_BYTES = 8 * 1024 * 1024  # smaller than Petastorm's 32 MB: more row groups to shard and shuffle


class _PandasBatchTransform:
    """Petastorm ``TransformSpec`` function: split filter, then ``transform`` on the batch as tensors.

    Runs in Petastorm's reader workers. Numeric columns become tensors (no copy), encoded columns
    lists of bytes, as in the Arrow loader; multi-dimensional outputs go back as one array per row.
    """

    def __init__(self, encoded: Sequence[str], transform: Transform | None, split: Split | None):
        self.encoded, self.transform, self.split = tuple(encoded), transform, split

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.split is not None:
            frame = frame[self.split.mask(frame[self.split.key].to_numpy())]
        if self.transform is None:
            return frame
        batch = {
            name: list(frame[name]) if name in self.encoded else torch.from_numpy(np.ascontiguousarray(frame[name].to_numpy()))
            for name in frame.columns
        }
        out = {}
        for name, value in self.transform(batch).items():
            array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            out[name] = list(array) if array.ndim > 1 else array
        return pd.DataFrame(out)


def _transform_spec(encoded: Sequence[str], transform: Transform | None, split: Split | None):
    from petastorm import TransformSpec

    if encoded and transform is None:
        raise UnsupportedColumnError(f"encoded columns {list(encoded)} need a transform that decodes them")
    if transform is None and split is None:
        return None
    fields = transform.output_fields() if transform is not None and hasattr(transform, "output_fields") else {}
    missing = [name for name in encoded if name not in fields]
    if missing:
        raise UnsupportedColumnError(f"the transform does not say what it decodes {missing} into (output_fields)")
    edit_fields = [(name, dtype, shape, False) for name, (dtype, shape) in fields.items()]
    return TransformSpec(_PandasBatchTransform(encoded, transform, split), edit_fields=edit_fields)


def _cache_root(config: LakehouseConfig, table: str) -> Path:
    return Path(config.loader_cache).resolve() / "converter" / get_table(table).name


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
    (Petastorm shards by row group, so data-parallel training needs one per rank at least).
    """
    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    latest = current_version(spark, config.table_path(table))
    root = _cache_root(config, table)
    root.mkdir(parents=True, exist_ok=True)
    selection = {"columns": list(columns), "where": split.where() if split else None, "row_group_bytes": ROW_GROUP_BYTES}
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
    info = {"table": table, "version": version, **selection, "cache_dir_url": converter.cache_dir_url,
            "file_urls": converter.file_urls, "dataset_size": len(converter)}
    index.write_text(json.dumps(info, indent=1))
    return converter


def reader_options(
    shuffle_seed: int | None, epoch: int, rank: int, world_size: int, workers_count: int, reader_pool_type: str
) -> dict:
    """``make_batch_reader`` keywords: sharding, seeded per-epoch shuffling, the worker pool."""
    options = {
        "workers_count": workers_count,
        "reader_pool_type": reader_pool_type,
        "num_epochs": 1,
        "cur_shard": rank if world_size > 1 else None,
        "shard_count": world_size if world_size > 1 else None,
        "shuffle_row_groups": shuffle_seed is not None,
        "shuffle_rows": shuffle_seed is not None,
    }
    if shuffle_seed is not None:
        # The same on every rank, so all ranks shuffle row groups alike before dealing them out.
        options["seed"] = (shuffle_seed * 1_000_003 + epoch) % 2**32
    return options


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
) -> Iterator:
    """Yield Petastorm's ``BatchedDataLoader`` over one epoch of the Parquet files ``urls``; no Spark.

    ``fields``: the columns to read (all when ``None``). ``reader_pool_type``: ``"thread"`` or
    ``"process"`` (a pool of ``workers_count``), or ``"dummy"`` (read in the calling thread).
    ``transform``, ``encoded`` and ``split`` run in the reader workers (see :func:`petastorm_dataloader`).
    """
    from petastorm import make_batch_reader
    from petastorm.pytorch import BatchedDataLoader

    options = reader_options(shuffle_seed, epoch, rank, world_size, workers_count, reader_pool_type)
    reader = make_batch_reader(
        list(urls),
        schema_fields=list(fields) if fields is not None else None,
        transform_spec=_transform_spec(encoded, transform, split),
        **options,
    )
    try:
        yield BatchedDataLoader(reader, batch_size=batch_size)
    finally:
        reader.stop()
        reader.join()


@contextmanager
def petastorm_dataloader(
    spark: SparkSession,
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
) -> Iterator:
    """Yield a DataLoader over one epoch of ``table`` at ``version`` (latest when ``None``).

    Batches are dicts of column name -> tensor. ``encoded`` binary columns reach ``transform`` as
    bytes (it must decode them and declare ``output_fields``). Shuffled when ``shuffle_seed`` is set,
    differently for each ``epoch``; with more than one worker Petastorm hands row groups over as they
    finish, so the order is reproducible with ``workers_count=1`` only.
    """
    if via not in VIAS:
        raise ValueError(f"via must be one of {VIAS}, got {via!r}")
    rank, world_size = distributed_rank_and_size(rank, world_size)
    if version is None:
        version = current_version(spark, config.table_path(table))
    if via == "converter":
        df = read_table(spark, config, table, version=version)
        wanted = tensor_columns(df, columns, encoded)
        wanted += [name for name in encoded if name not in wanted]
        converter = cached_converter(spark, config, table, version, wanted, split, min_files=world_size)
        urls, fields, reader_split = converter.file_urls, None, None  # the cache holds one side of the split
    else:
        snapshot = resolve_snapshot(spark, config, table, version, columns, encoded)
        urls, fields, reader_split = list(snapshot.files), list(snapshot.columns), split
    with batch_reader_loader(
        urls, fields, batch_size, workers_count, reader_pool_type, transform, encoded, reader_split,
        shuffle_seed, epoch, rank, world_size,
    ) as loader:
        yield loader
