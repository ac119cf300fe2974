"""Loader throughput on one pinned Delta table: the plain pyarrow->torch ceiling, the native Arrow
loader (0 and 2 workers) and Petastorm's Spark converter, at several batch sizes.

Usage: .venv/bin/python bench/loaders.py [--rows 2000000] [--batch-sizes 1024 16384] [--out bench/results/loaders.json]

The table has three numeric columns (as in STACK.md's first figures). The pinned snapshot's file list
is resolved once beforehand (one Spark query, ~0.2 s) and not timed; each loader then reads every row,
best of three. Petastorm's time includes its converter materialising the snapshot, which is how it
works. Rows/s and each loader's ratio to the ceiling measured in the same run are printed and saved.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch

from lakehouse.catalog import current_version
from lakehouse.config import load_config
from torch.utils.data import DataLoader

from lakehouse.loaders.arrow_loader import DeltaArrowDataset, _local, resolve_snapshot
from lakehouse.loaders.petastorm_loader import petastorm_dataloader
from lakehouse.session import get_spark
from lakehouse.tables import get_table
from lakehouse.writer import Commit, overwrite_table

COLUMNS = ["user_key", "n_events", "n_views"]


def consume(batches) -> int:
    rows = 0
    for batch in batches:
        rows += len(batch[COLUMNS[0]])
    return rows


def ceiling(files: list[str], batch_size: int):
    """pyarrow ParquetFile.iter_batches -> torch.from_numpy, one process, no shuffling."""
    for uri in files:
        for record_batch in pq.ParquetFile(_local(uri)).iter_batches(batch_size=batch_size, columns=COLUMNS):
            yield {name: torch.from_numpy(record_batch.column(name).to_numpy()) for name in COLUMNS}


def timed(make_batches, repeats: int = 3) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeats):
        started = time.perf_counter()
        rows = consume(make_batches())
        best = min(best, time.perf_counter() - started)
    return best, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 16384])
    parser.add_argument("--out", default="bench/results/loaders.json")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="lakehouse-loaders-"))
    config = load_config(environ={"LAKEHOUSE_WAREHOUSE": str(root / "wh")})
    spark = get_spark(config)
    gold = get_table("gold.user_activity_daily")
    df = spark.range(args.rows).selectExpr(
        "id AS user_key", "DATE'2026-11-01' AS event_date", "CAST(id % 30 AS INT) AS day_index",
        "id % 97 AS n_events", "id % 5 AS n_logins", "id % 89 AS n_views", "id % 7 AS n_likes", "id % 3 AS n_uploads",
    ).repartition(4)
    overwrite_table(spark, config, gold, df, Commit("bench", "loaders"))
    version = current_version(spark, config.table_path(gold.name))
    snapshot = resolve_snapshot(spark, config, gold.name, version, COLUMNS)
    files = list(snapshot.files)

    def native(batch_size: int, workers: int):
        dataset = DeltaArrowDataset(snapshot, batch_size=batch_size)
        return lambda: DataLoader(dataset, batch_size=None, num_workers=workers)

    results = []
    for batch_size in args.batch_sizes:
        candidates = {
            "pyarrow ceiling": lambda: ceiling(files, batch_size),
            "arrow loader, 0 workers": native(batch_size, 0),
            "arrow loader, 2 workers": native(batch_size, 2),
        }
        for name, make in candidates.items():
            seconds, rows = timed(make)
            results.append({"loader": name, "batch_size": batch_size, "rows": rows, "seconds": round(seconds, 3)})

        def petastorm():
            with petastorm_dataloader(spark, config, gold.name, version, COLUMNS, batch_size=batch_size) as loader:
                yield from loader

        seconds, rows = timed(petastorm, repeats=1)
        results.append({"loader": "petastorm converter", "batch_size": batch_size, "rows": rows, "seconds": round(seconds, 3)})
    spark.stop()

    for result in results:
        result["rows_per_s"] = round(result["rows"] / result["seconds"])
        ceiling_run = next(r for r in results if r["loader"] == "pyarrow ceiling" and r["batch_size"] == result["batch_size"])
        result["ratio_to_ceiling"] = round(result["rows_per_s"] / (ceiling_run["rows"] / ceiling_run["seconds"]), 3)
    print(f"loaders on {args.rows:,} rows x {len(COLUMNS)} numeric columns (CPU)")
    print(f"{'loader':<26} {'batch':>6} {'rows/s':>12} {'vs ceiling':>11}")
    for r in results:
        print(f"{r['loader']:<26} {r['batch_size']:>6} {r['rows_per_s']:>12,} {r['ratio_to_ceiling']:>11.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": args.rows, "results": results}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
