"""Train the photo-popularity model on gold.photo_popularity_training at one pinned version, through the Arrow loader or Petastorm; hold out the photos whose key hashes into the held-out share; log parameters, per-epoch metrics, the model, the table versions and their lineage to MLflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
import time
from contextlib import contextmanager
from typing import Iterator

import torch

from lakehouse.catalog import current_version, read_table
from lakehouse.job import JobContext, JobResult, exit_with, job_main
from lakehouse.loaders.arrow_loader import arrow_dataloader, to_device
from lakehouse.loaders.augment import CellDropout, Compose, DecodeImages, image_augmentation
from lakehouse.loaders.petastorm_loader import petastorm_dataloader
from lakehouse.loaders.split import DEFAULT_HOLDOUT_PERCENT, Split
from lakehouse.models.popularity import (
    DROPOUT_FEATURES, IMAGE, KEY, LABEL, TABLE, PopularityModel, evaluate, loader_columns, target,
)

JOB_NAME = "train_popularity"
EXPERIMENT = "photo-popularity"
LOADERS = ("arrow", "petastorm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loader", choices=LOADERS, default="arrow", help="Arrow loader (default) or Petastorm")
    parser.add_argument("--petastorm-via", choices=("converter", "batch_reader"), default="converter",
                        help="with --loader petastorm: make_spark_converter (cached per version) or make_batch_reader")
    pinned = parser.add_mutually_exclusive_group()
    pinned.add_argument("--version", type=int, default=None, help="table version to train on (default: latest)")
    pinned.add_argument("--tag", default=None, help="train on the version this tag names (lakehouse tags)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="weights, shuffling and augmentation")
    parser.add_argument("--holdout-percent", type=int, default=DEFAULT_HOLDOUT_PERCENT)
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes (Petastorm: threads)")
    parser.add_argument("--cell-dropout", type=float, default=0.1, help="share of author-history cells blanked in training")
    parser.add_argument("--no-image", action="store_true", help="tabular features only (no image tower)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the training process")
    parser.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment")


def pinned_version(ctx: JobContext, args: argparse.Namespace) -> int:
    """The table version this run trains on: ``--version``, ``--tag`` or the latest."""
    if args.tag is not None:
        from lakehouse.versioning.tags import resolve_tag

        return resolve_tag(ctx.spark, ctx.config, TABLE, args.tag)
    if args.version is not None:
        return args.version
    version = current_version(ctx.spark, ctx.config.table_path(TABLE))
    if version is None:
        raise RuntimeError(f"{TABLE} does not exist yet: run build_gold_photo_popularity first")
    return version


def batch_transform(args: argparse.Namespace, training: bool):
    """Training: decode + augment the image, blank author cells. Evaluation: decode only."""
    steps = []
    if not args.no_image:
        steps.append(image_augmentation(IMAGE, seed=args.seed) if training else DecodeImages(IMAGE))
    if training and args.cell_dropout > 0:
        steps.append(CellDropout(DROPOUT_FEATURES, p=args.cell_dropout, seed=args.seed))
    return Compose(*steps) if steps else None


@contextmanager
def open_batches(ctx: JobContext, args: argparse.Namespace, version: int, split: Split, epoch: int) -> Iterator:
    """One epoch of ``split``'s batches through the chosen loader (shuffled and augmented when training)."""
    training = split.name == "train"
    options = dict(
        columns=loader_columns(),
        batch_size=args.batch_size,
        transform=batch_transform(args, training),
        encoded=() if args.no_image else (IMAGE,),
        split=split,
        shuffle_seed=args.seed if training else None,
    )
    if args.loader == "arrow":
        loader = arrow_dataloader(ctx.spark, ctx.config, TABLE, version, num_workers=args.workers, **options)
        loader.dataset.set_epoch(epoch)
        yield loader
    else:
        with petastorm_dataloader(ctx.spark, ctx.config, TABLE, version, via=args.petastorm_via,
                                  workers_count=max(args.workers, 1), epoch=epoch, **options) as loader:
            yield loader


def split_sizes(ctx: JobContext, version: int, train: Split) -> tuple[int, int, float]:
    """Rows on each side of the split and the training rows' mean label (the baseline's prediction)."""
    table = read_table(ctx.spark, ctx.config, TABLE, version=version)
    row = table.selectExpr(
        f"count_if({train.where()}) AS train_rows",
        f"count_if(NOT ({train.where()})) AS holdout_rows",
        f"avg(CASE WHEN {train.where()} THEN {LABEL} END) AS train_mean",
    ).first()
    return row.train_rows, row.holdout_rows, float(row.train_mean or 0.0)


def train_epoch(model, optimizer, batches, device) -> tuple[float, int]:
    """One pass over ``batches``; the mean training loss and the rows seen."""
    loss_sum, rows = 0.0, 0
    for batch in batches:
        if len(batch[KEY]) < 2:
            continue  # batch norm needs two rows; at most the epoch's last row is skipped
        batch = to_device(batch, device)
        loss = torch.nn.functional.mse_loss(model(batch), target(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += float(loss) * len(batch[KEY])
        rows += len(batch[KEY])
    return loss_sum / max(rows, 1), rows


def log_inputs(ctx: JobContext, version: int, train: Split) -> None:
    """The table version and selection trained on (``lakehouse reproduce``), the held-out rows, and
    the lineage of that table version down to its sources."""
    import mlflow

    from lakehouse.lineage.mlflow_runs import TrainingFrame, log_table_input, log_training_frame
    from lakehouse.lineage.tables import format_lineage, table_lineage

    columns = tuple(loader_columns()) + (IMAGE,)
    log_training_frame(ctx.spark, ctx.config, TrainingFrame(TABLE, version, columns, train.where()))
    holdout = TrainingFrame(TABLE, version, columns, train.other().where())
    log_table_input(holdout.load(ctx.spark, ctx.config), ctx.config, TABLE, version, context="evaluation")
    mlflow.log_text(format_lineage(table_lineage(ctx.spark, ctx.config, TABLE, version)), "lineage.txt")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    import mlflow
    import mlflow.pytorch

    from lakehouse.lineage.mlflow_runs import configure_mlflow

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    version = pinned_version(ctx, args)
    train = Split(KEY, "train", args.holdout_percent)
    train_rows, holdout_rows, train_mean = split_sizes(ctx, version, train)
    if train_rows == 0 or holdout_rows == 0:
        raise RuntimeError(f"{TABLE}@v{version} has {train_rows} training and {holdout_rows} held-out rows: too few to train")
    model = PopularityModel(use_image=not args.no_image).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    configure_mlflow(ctx.config, args.experiment)
    with mlflow.start_run(run_name=f"popularity-{args.loader}-v{version}") as run:
        mlflow.log_params({
            **{k: v for k, v in vars(args).items() if k not in ("conf_file", "version", "tag")},
            "table": TABLE, "table_version": version, "split_key": KEY, "device": device.type,
            "train_rows": train_rows, "holdout_rows": holdout_rows, "job_run_id": ctx.run_id,
        })
        log_inputs(ctx, version, train)
        for epoch in range(args.epochs):
            started = time.monotonic()
            with open_batches(ctx, args, version, train, epoch) as batches:
                train_loss, seen = train_epoch(model, optimizer, batches, device)
            with open_batches(ctx, args, version, train.other(), epoch) as batches:
                evaluation = evaluate(model, batches, train_mean, device)
            seconds = time.monotonic() - started
            mlflow.log_metrics({"train_loss": train_loss, **evaluation.as_metrics(), "epoch_seconds": seconds}, step=epoch)
            print(f"epoch {epoch}: train loss {train_loss:.4f} ({seen} rows), held-out MAE {evaluation.mae:.3f} "
                  f"likes (mean-predictor baseline {evaluation.baseline_mae:.3f}), {seconds:.1f}s")
        mlflow.pytorch.log_model(
            model.cpu(), name="model", serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
    result = JobResult(JOB_NAME, ctx.run_id)
    result.counts.update({
        f"{TABLE} version": version,
        "training rows": train_rows,
        "held-out rows": holdout_rows,
        "held-out MAE (likes)": round(evaluation.mae, 3),
        "mean-predictor MAE (likes)": round(evaluation.baseline_mae, 3),
        "MLflow run": run.info.run_id,
    })
    return result


PROJECT = str(Path(__file__).resolve().parent.parent)  # the project this job belongs to, wherever it runs from


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv, project=PROJECT)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
