"""A gold table at a pinned Delta version -> a PyTorch DataLoader, through Petastorm's Spark converter."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from pyspark.sql import SparkSession

from lakehouse.catalog import current_version, read_table
from lakehouse.config import LakehouseConfig
from lakehouse.loaders.columns import tensor_columns

# Petastorm 0.12 drives pyarrow 14 through its legacy dataset API; the deprecation notices are known
# (see STACK.md: newer pyarrow drops that API, which is why it is pinned) and say nothing to a user.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"petastorm(\..*)?$")


@contextmanager
def petastorm_dataloader(
    spark: SparkSession,
    config: LakehouseConfig,
    table: str,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    batch_size: int = 256,
    num_epochs: int | None = 1,
    workers_count: int = 2,
) -> Iterator:
    """Yield a PyTorch DataLoader over ``table`` at ``version`` (latest when ``None``).

    Batches are dicts of column name -> tensor. The converter materialises the pinned snapshot as
    Parquet under ``config.loader_cache`` (Petastorm's cache) and reads it back with its workers.
    """
    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    if version is None:
        version = current_version(spark, config.table_path(table))
    df = read_table(spark, config, table, version=version)
    df = df.select(*tensor_columns(df, columns))
    cache = Path(config.loader_cache)
    cache.mkdir(parents=True, exist_ok=True)
    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, cache.resolve().as_uri())
    converter = make_spark_converter(df, dtype="float32")
    with converter.make_torch_dataloader(
        batch_size=batch_size, num_epochs=num_epochs, workers_count=workers_count
    ) as loader:
        yield loader
