"""Fine-tune the image classifier on gold.image_training_labels at one pinned version: the annotators' labels
where people gave them, the classifier's own predictions elsewhere. This is the data flywheel: new labels make a
new gold version, and the next run trains on it. Reads with delta-rs (no JVM): the gold version, and silver.images
at the version that gold version was built from. Logs to MLflow the gold version (the label version), the label
tables behind it (dataset inputs and lineage.txt), how many labels were human, and the classifier's accuracy on
the human labels before and after."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lakehouse.engine.job import JobContext, JobResult, exit_with, job_main

JOB_NAME = "train_classifier"
EXPERIMENT = "image-classifier-labels"
TABLE = "gold.image_training_labels"
IMAGES = "silver.images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", type=int, default=None, help=f"{TABLE} version to train on (default: latest)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment")


def training_rows(ctx: JobContext, version: int, images_version: int):
    """``(pixels, class indices, is_human, skipped)``: every gold row whose label is one of the classifier's
    classes, decoded from silver.images at the version gold read."""
    import numpy as np
    import torch

    from lakehouse.loaders.delta_files import read_version
    from lakehouse.models.fashion_classifier import LABELS, image_pixels, pixels_to_tensor

    labels = read_version(ctx.config, TABLE, version, ["content_hash", "label", "label_source"]).to_pylist()
    images = read_version(ctx.config, IMAGES, images_version, ["content_hash", "content"])
    content = dict(zip(images.column("content_hash").to_pylist(), images.column("content").to_pylist()))
    kept = [r for r in labels if r["label"] in LABELS and r["content_hash"] in content]
    pixels = np.stack([image_pixels(content[r["content_hash"]]) for r in kept]) if kept else np.zeros((0, 28, 28))
    classes = torch.tensor([LABELS.index(r["label"]) for r in kept], dtype=torch.long)
    human = torch.tensor([r["label_source"] == "human" for r in kept], dtype=torch.bool)
    return pixels_to_tensor(pixels), classes, human, len(labels) - len(kept)


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    import mlflow
    import mlflow.pytorch
    import torch
    from torch import nn

    from lakehouse.lineage.mlflow_runs import TrainingFrame, configure_mlflow, log_frame_input, record_training_frame
    from lakehouse.lineage.tables import format_lineage, table_lineage
    from lakehouse.loaders.delta_files import latest_version
    from lakehouse.models.fashion_classifier import accuracy, ensure_model, load_network

    version = latest_version(ctx.config, TABLE) if args.version is None else args.version
    lineage = table_lineage(None, ctx.config, TABLE, version)
    read = {node.table: node.version for node in lineage.inputs}
    if IMAGES not in read:
        raise RuntimeError(f"{TABLE} v{version} records no {IMAGES} version it read: rebuild it")
    images, classes, human, skipped = training_rows(ctx, version, read[IMAGES])
    if not len(classes):
        raise RuntimeError(f"{TABLE} v{version} has no row labelled with one of the classifier's classes")

    torch.manual_seed(args.seed)
    network = load_network(ensure_model(ctx.config).content)
    before = accuracy(network, images[human], classes[human]) if human.any() else None
    optimiser = torch.optim.Adam(network.parameters(), lr=args.learning_rate)
    order = torch.Generator().manual_seed(args.seed)
    configure_mlflow(ctx.config, args.experiment)
    with mlflow.start_run(run_name=f"classifier-{TABLE}-v{version}") as run:
        mlflow.log_params(
            {
                "table_version": version,
                "images_version": read[IMAGES],
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
                "seed": args.seed,
            }
        )
        record_training_frame(ctx.config, TrainingFrame(TABLE, version, ("content_hash", "label", "label_source")))
        for table, table_version in sorted(read.items()):  # the label tables and images this gold version holds
            log_frame_input(ctx.config, TrainingFrame(table, table_version), context="source")
        mlflow.log_text(format_lineage(lineage), "lineage.txt")
        mlflow.log_metrics({"human_labels": int(human.sum()), "model_labels": int((~human).sum()), "skipped": skipped})
        for epoch in range(args.epochs):
            network.train()
            permutation, total = torch.randperm(len(classes), generator=order), 0.0
            for start in range(0, len(classes), args.batch_size):
                batch = permutation[start : start + args.batch_size]
                optimiser.zero_grad()
                loss = nn.functional.cross_entropy(network(images[batch]), classes[batch])
                loss.backward()
                optimiser.step()
                total += float(loss) * len(batch)
            mlflow.log_metric("train_loss", total / len(classes), step=epoch)
        after = accuracy(network, images[human], classes[human]) if human.any() else None
        if before is not None:
            mlflow.log_metrics({"human_label_accuracy_before": before, "human_label_accuracy_after": after})
        mlflow.pytorch.log_model(
            network.cpu(),
            name="model",
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
    result = JobResult(JOB_NAME, ctx.run_id)
    result.counts.update(
        {
            f"{TABLE} version": version,
            "human labels": int(human.sum()),
            "model labels": int((~human).sum()),
            "labels outside the classifier's classes": skipped,
            "MLflow run": run.info.run_id,
        }
    )
    if before is not None:
        result.counts["accuracy on the human labels, before -> after"] = f"{before:.3f} -> {after:.3f}"
    return result


PROJECT = str(Path(__file__).resolve().parent.parent)  # the project this job belongs to, wherever it runs from


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv, project=PROJECT)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
