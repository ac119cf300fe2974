"""Does the GPU wait for data? The image model at batch 256, fed by the Arrow loader and by Petastorm.

Fashion-MNIST (``--images``, default all 70,000) is written as ``silver.images`` PNGs into a temporary
warehouse by Spark (as ``bench/loaders.py`` does), Spark is stopped, and then each loader feeds
``lakehouse.models.fashion_classifier.build_network()`` (a small CNN) for ``--epochs`` shuffled epochs:
PNG decoding in the loader's workers, a forward and backward pass and an optimizer step on the device.

For each loader it reports samples/s and the **data-wait share**: the share of the training loop's time
spent blocked on the next batch. The step is timed to the end of the device's work
(``torch.cuda.synchronize()``), so time the GPU spends computing is never counted as waiting. A share near
0 means the GPU is the bottleneck; near 1, the loader is. The target is ``size_bytes mod 10``: the figures
are about the data path, not the model's accuracy.

Without a GPU it runs on the CPU and says so: the figures then measure two processes sharing the cores,
not a GPU's wait.

Usage (after ``make setup``):
  .venv/bin/python bench/gpu_wait.py [--images 70000] [--batch-size 256] [--workers 4] [--epochs 2]
      [--out bench/results/gpu_wait.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loaders import IMAGE_COLUMNS, IMAGE_ENCODED, IMAGES, machine, write_images
from lakehouse.loaders.arrow_loader import arrow_dataloader, to_device
from lakehouse.loaders.augment import DecodeImages
from lakehouse.loaders.delta_files import resolve_snapshot
from lakehouse.loaders.petastorm_loader import batch_reader_loader
from lakehouse.models.fashion_classifier import build_network


def train(batches, network, optimizer, device) -> dict:
    """One pass: seconds waiting for batches, seconds in steps (device work included), samples."""
    wait = step = 0.0
    samples = 0
    iterator = iter(batches)
    while True:
        asked = time.perf_counter()
        batch = next(iterator, None)
        got = time.perf_counter()
        wait += got - asked
        if batch is None:
            break
        batch = to_device(batch, device)
        images = batch[IMAGE_ENCODED[0]]
        target = (batch[IMAGE_COLUMNS[0]] % 10).long()
        loss = torch.nn.functional.cross_entropy(network(images), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        step += time.perf_counter() - got
        samples += len(target)
    return {"wait_s": wait, "step_s": step, "samples": samples}


def run_loader(name: str, config, args, device) -> dict:
    snapshot = resolve_snapshot(config, IMAGES, columns=IMAGE_COLUMNS, encoded=IMAGE_ENCODED)
    network = build_network().to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    totals = {"wait_s": 0.0, "step_s": 0.0, "samples": 0}
    started = time.perf_counter()
    for epoch in range(args.epochs):
        if name == "arrow loader":
            loader = arrow_dataloader(
                config,
                IMAGES,
                snapshot=snapshot,
                batch_size=args.batch_size,
                num_workers=args.workers,
                shuffle_seed=0,
                transform=DecodeImages(IMAGE_ENCODED[0]),
                encoded=IMAGE_ENCODED,
            )
            loader.dataset.set_epoch(epoch)
            figures = train(loader, network, optimizer, device)
        else:
            with batch_reader_loader(
                snapshot.files,
                list(snapshot.columns),
                args.batch_size,
                args.workers,
                "process",
                transform=DecodeImages(IMAGE_ENCODED[0]),
                encoded=IMAGE_ENCODED,
                shuffle_seed=0,
                epoch=epoch,
            ) as loader:
                figures = train(loader, network, optimizer, device)
        for key in totals:
            totals[key] += figures[key]
    busy = totals["wait_s"] + totals["step_s"]
    return {
        "loader": name,
        "samples": totals["samples"],
        "samples_per_s": round(totals["samples"] / busy, 1),
        "data_wait_share": round(totals["wait_s"] / busy, 4),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=70_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="bench/results/gpu_wait.json")
    args = parser.parse_args()

    from lakehouse.engine.session import get_spark
    from lakehouse.project.config import load_config

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda":
        print("no GPU here: running on the CPU; these figures are not a GPU's data wait", flush=True)
    root = Path(tempfile.mkdtemp(prefix="lakehouse-gpu-wait-"))
    try:
        config = load_config(environ={"LAKEHOUSE_WAREHOUSE": str(root / "wh")})
        spark = get_spark(config)
        try:
            write_images(spark, config, args.images, root)
        finally:
            spark.stop()
        results = [run_loader(name, config, args, device) for name in ("arrow loader", "petastorm batch reader")]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nimage model, batch {args.batch_size}, {args.workers} workers, {args.epochs} epochs, device {device.type}")
    print(f"{'loader':<24} {'samples/s':>10} {'data wait':>10} {'wall s':>8}")
    for r in results:
        print(f"{r['loader']:<24} {r['samples_per_s']:>10,.0f} {r['data_wait_share']:>10.1%} {r['wall_s']:>8.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"machine": machine(), "device": device.type, "settings": vars(args), "results": results}, indent=2)
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
