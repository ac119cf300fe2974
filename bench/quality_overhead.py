"""How much the quality gates add to each job: the same jobs on the same logs with gates on and off.

Usage: .venv/bin/python bench/quality_overhead.py [--scale 1.0] [--days 7] [--rounds 2]
           [--out bench/results/quality_overhead.json]

After one untimed warm-up pass (the first pass in a JVM pays for class loading and JIT), each round
builds a fresh warehouse twice from the same landing files, once with gates off (the baseline) and
once with them on (Data Docs included); each job's best time over the rounds is reported, with the
ratio on/off.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from lakehouse.engine import run_step
from lakehouse.engine.orchestration import select_steps
from lakehouse.engine.session import get_spark
from lakehouse.project.config import QualityConfig, load_config
from lakehouse.scenario.app_events import write_app_event_logs


def run_once(spark, config) -> dict[str, float]:
    timings = {}
    for step in select_steps(list(config.project.steps), ["gold.user_activity_daily"]):  # the app-events path
        started = time.perf_counter()
        run_step(config, step, spark=spark)
        timings[step.name] = time.perf_counter() - started
    timings["total"] = sum(timings.values())
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="bench/results/quality_overhead.json")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="lakehouse-bench-"))
    base = load_config(environ={"LAKEHOUSE_LANDING": str(root / "landing"), "LAKEHOUSE_WAREHOUSE": str(root / "wh")})
    logs = write_app_event_logs(Path(base.landing_path("app_events")), seed=1, scale=args.scale, days=args.days)
    spark = get_spark(base)
    best: dict[str, dict[str, float]] = {"off": {}, "on": {}}
    passes = [("warm-up", True)] + [("off", False), ("on", True)] * args.rounds
    for number, (label, enabled) in enumerate(passes):
        warehouse = root / f"wh-{number}-{label}"
        config = replace(
            base,
            warehouse=str(warehouse),
            checkpoints=str(warehouse / "_checkpoints"),
            quality=QualityConfig(enabled=enabled, data_docs=True),
        )
        timings = run_once(spark, config)
        if label != "warm-up":
            for job, seconds in timings.items():
                best[label][job] = min(seconds, best[label].get(job, float("inf")))
        shutil.rmtree(warehouse)
    spark.stop()
    shutil.rmtree(root)

    rows = [
        {
            "job": job,
            "gates_off_s": round(best["off"][job], 2),
            "gates_on_s": round(best["on"][job], 2),
            "ratio": round(best["on"][job] / best["off"][job], 2),
        }
        for job in best["off"]
    ]
    print(
        f"quality gate overhead: {logs.lines:,} log lines (scale {args.scale}, {args.days} days), best of {args.rounds}"
    )
    print(f"{'job':<28} {'gates off (s)':>14} {'gates on (s)':>13} {'on/off':>7}")
    for row in rows:
        print(f"{row['job']:<28} {row['gates_off_s']:>14.2f} {row['gates_on_s']:>13.2f} {row['ratio']:>7.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"lines": logs.lines, "scale": args.scale, "rounds": args.rounds, "jobs": rows}, indent=2)
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
