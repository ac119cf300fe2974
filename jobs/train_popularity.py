"""Train the photo-popularity model on gold.photo_popularity_training at one pinned version, through the Arrow
loader or Petastorm; hold out the photos whose key hashes into the held-out share; log parameters, per-epoch
metrics (with samples/s and the share of step time spent waiting for data), the model, checkpoints of model,
optimizer and loader state, the table versions and their lineage to MLflow. --resume RUN_ID continues a run that
stopped mid-epoch with exactly the batches it had not yet trained on."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from lakehouse.engine.job import JobContext, JobResult, exit_with, job_main
from lakehouse.loaders.arrow_loader import DeltaArrowDataset, arrow_dataloader, to_device
from lakehouse.loaders.augment import CellDropout, Compose, DecodeImages, image_augmentation
from lakehouse.loaders.delta_files import latest_version, resolve_snapshot
from lakehouse.loaders.petastorm_loader import petastorm_dataloader
from lakehouse.loaders.split import DEFAULT_HOLDOUT_PERCENT, Split
from lakehouse.models.popularity import (
    DROPOUT_FEATURES,
    IMAGE,
    KEY,
    LABEL,
    TABLE,
    PopularityModel,
    evaluate,
    loader_columns,
    target,
)

JOB_NAME = "train_popularity"
EXPERIMENT = "photo-popularity"
LOADERS = ("arrow", "petastorm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loader", choices=LOADERS, default="arrow", help="Arrow loader (default) or Petastorm")
    parser.add_argument(
        "--petastorm-via",
        choices=("converter", "batch_reader"),
        default="converter",
        help="with --loader petastorm: make_spark_converter (cached per version) or make_batch_reader",
    )
    pinned = parser.add_mutually_exclusive_group()
    pinned.add_argument("--version", type=int, default=None, help="table version to train on (default: latest)")
    pinned.add_argument("--tag", default=None, help="train on the version this tag names (lakehouse tags)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="weights, shuffling and augmentation")
    parser.add_argument("--holdout-percent", type=int, default=DEFAULT_HOLDOUT_PERCENT)
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes (Petastorm: threads)")
    parser.add_argument(
        "--cell-dropout", type=float, default=0.1, help="share of author-history cells blanked in training"
    )
    parser.add_argument("--no-image", action="store_true", help="tabular features only (no image tower)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the training process")
    parser.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment")
    parser.add_argument(
        "--shuffle-buffer-rows",
        type=int,
        default=16_384,
        help="Arrow loader: rows shuffled together across row groups (0: within row groups only)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="STEPS",
        help="log a checkpoint (model, optimizer, loader state) every STEPS training steps, and after each epoch",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop after this many training steps in this process (a checkpoint is logged first)",
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_ID",
        help="continue this MLflow run from its last checkpoint (same table version; --loader arrow)",
    )


def pinned_version(ctx: JobContext, args: argparse.Namespace) -> int:
    """The table version this run trains on: ``--version``, ``--tag`` or the latest (read without Spark)."""
    if args.tag is not None:
        from lakehouse.versioning.tags import resolve_tag

        return resolve_tag(None, ctx.config, TABLE, args.tag)
    if args.version is not None:
        return args.version
    try:
        return latest_version(ctx.config, TABLE)
    except FileNotFoundError as error:
        raise RuntimeError(f"{TABLE} does not exist yet: run build_gold_photo_popularity first") from error


def batch_transform(args: argparse.Namespace, training: bool):
    """Training: decode + augment the image, blank author cells. Evaluation: decode only."""
    steps = []
    if not args.no_image:
        steps.append(image_augmentation(IMAGE, seed=args.seed) if training else DecodeImages(IMAGE))
    if training and args.cell_dropout > 0:
        steps.append(CellDropout(DROPOUT_FEATURES, p=args.cell_dropout, seed=args.seed))
    return Compose(*steps) if steps else None


@contextmanager
def open_batches(
    ctx: JobContext, args: argparse.Namespace, version: int, split: Split, epoch: int, resume_state: dict | None = None
) -> Iterator:
    """One epoch of ``split``'s batches through the chosen loader (shuffled and augmented when training);
    ``resume_state``: the Arrow loader's state, to yield only the rest of that epoch."""
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
        loader = arrow_dataloader(
            ctx.config,
            TABLE,
            version,
            num_workers=args.workers,
            shuffle_buffer_rows=args.shuffle_buffer_rows,
            **options,
        )
        loader.dataset.set_epoch(epoch)
        if resume_state is not None:
            loader.load_state_dict(resume_state)
        yield loader
    else:
        spark = ctx.spark if args.petastorm_via == "converter" else None  # the batch reader needs no JVM
        with petastorm_dataloader(
            spark,
            ctx.config,
            TABLE,
            version,
            via=args.petastorm_via,
            workers_count=max(args.workers, 1),
            epoch=epoch,
            **options,
        ) as loader:
            yield loader


def split_sizes(ctx: JobContext, version: int, train: Split) -> tuple[int, int, float]:
    """Rows on each side of the split and the training rows' mean label (the baseline's prediction),
    read from the pinned version's files (the key and label columns only; no Spark)."""
    snapshot = resolve_snapshot(ctx.config, TABLE, version, [KEY, LABEL])
    rows, mean = {}, 0.0
    for side in (train, train.other()):
        dataset = DeltaArrowDataset(snapshot, batch_size=65_536, split=side)
        rows[side.name] = dataset.total
        if side is train and dataset.total:
            mean = float(sum(float(batch[LABEL].double().sum()) for batch in dataset) / dataset.total)
    return rows[train.name], rows[train.other().name], mean


@dataclass
class EpochProgress:
    """What training did in (part of) one epoch, and how long it waited for data."""

    loss_sum: float = 0.0
    rows: int = 0
    steps: int = 0
    wait_s: float = 0.0
    step_s: float = 0.0
    stopped: bool = False  # at --max-steps, before the epoch's end
    first_batch_at: float | None = None  # time.monotonic() when this process got its first batch

    def mean_loss(self) -> float:
        return self.loss_sum / max(self.rows, 1)

    def metrics(self) -> dict[str, float]:
        """Samples per second of the loop, and the share of its time spent waiting for the next batch."""
        busy = self.wait_s + self.step_s
        return {
            "samples_per_s": self.rows / busy if busy else 0.0,
            "data_wait_share": self.wait_s / busy if busy else 0.0,
        }


RESUMED_PROGRESS = ("loss_sum", "rows", "steps", "wait_s", "step_s")  # what a checkpoint keeps of an epoch's progress


@dataclass
class Checkpointer:
    """Logs model, optimizer and loader position to the MLflow run as ``checkpoint/state.pt`` (the latest wins)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    every: int
    max_steps: int | None = None
    steps_total: int = 0  # training steps of the whole run, across resumptions
    steps_here: int = 0  # training steps in this process
    saved: list = field(default_factory=list)

    def save(self, epoch: int, loader, progress: EpochProgress | None) -> None:
        """``progress`` ``None``: ``epoch`` is done, the next starts at its beginning."""
        import mlflow

        state = {
            "epoch": epoch if progress is not None else epoch + 1,
            "loader": loader.state_dict() if progress is not None else None,
            "progress": None
            if progress is None
            else {k: v for k, v in vars(progress).items() if k in RESUMED_PROGRESS},
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps_total": self.steps_total,
        }
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "state.pt"
            torch.save(state, path)
            mlflow.log_artifact(str(path), artifact_path="checkpoint")
        self.saved.append((epoch, self.steps_total))

    def after_step(self, epoch: int, loader, progress: EpochProgress) -> bool:
        """Count a step, checkpoint when due; ``True``: stop here (``--max-steps`` reached)."""
        self.steps_total += 1
        self.steps_here += 1
        if self.max_steps is not None and self.steps_here >= self.max_steps:
            self.save(epoch, loader, progress)
            return True
        if self.every and self.steps_total % self.every == 0:
            self.save(epoch, loader, progress)
        return False


def load_checkpoint(run_id: str) -> dict:
    """The last checkpoint the MLflow run ``run_id`` logged, with an error saying when there is none."""
    import mlflow

    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="checkpoint/state.pt")
    except Exception as error:
        raise RuntimeError(
            f"MLflow run {run_id} has no checkpoint to resume from (checkpoint/state.pt): {error}"
        ) from error
    return torch.load(local, weights_only=False)


def train_epoch(
    model,
    optimizer,
    batches,
    device,
    progress: EpochProgress | None = None,
    checkpointer: Checkpointer | None = None,
    epoch: int = 0,
) -> EpochProgress:
    """One pass over ``batches``, timing the wait for each batch apart from the step itself; through
    ``checkpointer``, checkpoints when due and stops early at ``--max-steps``."""
    progress = progress or EpochProgress()
    iterator = iter(batches)
    while True:
        waited = time.perf_counter()
        batch = next(iterator, None)
        started = time.perf_counter()
        progress.wait_s += started - waited
        if batch is None:
            return progress
        if progress.first_batch_at is None:
            progress.first_batch_at = started
        if len(batch[KEY]) >= 2:  # batch norm needs two rows; at most the epoch's last row is skipped
            batch = to_device(batch, device)
            loss = torch.nn.functional.mse_loss(model(batch), target(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            progress.loss_sum += loss.item() * len(batch[KEY])  # item() waits for the device: inside the step
            progress.rows += len(batch[KEY])
        progress.steps += 1
        progress.step_s += time.perf_counter() - started
        if checkpointer is not None and checkpointer.after_step(epoch, batches, progress):
            progress.stopped = True
            return progress


def log_inputs(ctx: JobContext, version: int, train: Split) -> None:
    """The table version and selection trained on (``lakehouse reproduce``), the held-out rows, and
    the lineage of that table version down to its sources: all read from the Delta logs, no Spark."""
    import mlflow

    from lakehouse.lineage.mlflow_runs import TrainingFrame, log_frame_input, record_training_frame
    from lakehouse.lineage.tables import format_lineage, table_lineage

    columns = tuple(loader_columns()) + (IMAGE,)
    record_training_frame(ctx.config, TrainingFrame(TABLE, version, columns, train.where()))
    log_frame_input(ctx.config, TrainingFrame(TABLE, version, columns, train.other().where()), context="evaluation")
    mlflow.log_text(format_lineage(table_lineage(None, ctx.config, TABLE, version)), "lineage.txt")


def run(ctx: JobContext, args: argparse.Namespace) -> JobResult:
    import mlflow
    import mlflow.pytorch

    from lakehouse.lineage.mlflow_runs import configure_mlflow

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run_started = time.monotonic()
    configure_mlflow(ctx.config, args.experiment)
    checkpoint = None
    if args.resume:
        if args.loader != "arrow":
            raise ValueError("--resume needs --loader arrow: Petastorm's reader cannot resume an epoch mid-way")
        checkpoint = load_checkpoint(args.resume)
        version = int(mlflow.get_run(args.resume).data.params["table_version"])  # the run's own version
    else:
        version = pinned_version(ctx, args)
    train = Split(KEY, "train", args.holdout_percent)
    train_rows, holdout_rows, train_mean = split_sizes(ctx, version, train)
    if train_rows == 0 or holdout_rows == 0:
        raise RuntimeError(
            f"{TABLE}@v{version} has {train_rows} training and {holdout_rows} held-out rows: too few to train"
        )
    model = PopularityModel(use_image=not args.no_image).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
    first_epoch = checkpoint["epoch"] if checkpoint else 0
    if first_epoch >= args.epochs:
        raise ValueError(f"run {args.resume} already finished its {first_epoch} epochs: give more --epochs to go on")
    checkpointer = Checkpointer(
        model,
        optimizer,
        args.checkpoint_every,
        args.max_steps,
        steps_total=checkpoint["steps_total"] if checkpoint else 0,
    )
    opened = (
        mlflow.start_run(run_id=args.resume)
        if args.resume
        else mlflow.start_run(run_name=f"popularity-{args.loader}-v{version}")
    )
    evaluation, progress = None, None
    with opened as run:
        if checkpoint is None:
            mlflow.log_params(
                {
                    **{
                        k: v
                        for k, v in vars(args).items()
                        if k not in ("conf_file", "version", "tag", "resume", "max_steps")
                    },
                    "table": TABLE,
                    "table_version": version,
                    "split_key": KEY,
                    "device": device.type,
                    "train_rows": train_rows,
                    "holdout_rows": holdout_rows,
                    "job_run_id": ctx.run_id,
                }
            )
            log_inputs(ctx, version, train)
        else:
            mlflow.log_metric("resumed_at_step", checkpointer.steps_total, step=checkpointer.steps_total)
            where = checkpoint["loader"]["position"] if checkpoint["loader"] else 0
            print(
                f"resuming run {args.resume} at epoch {first_epoch}, row {where} of its order, "
                f"step {checkpointer.steps_total}"
            )
        for epoch in range(first_epoch, args.epochs):
            started = time.monotonic()
            resumed = checkpoint is not None and epoch == first_epoch and checkpoint["loader"] is not None
            progress = EpochProgress(**checkpoint["progress"]) if resumed else EpochProgress()
            with open_batches(ctx, args, version, train, epoch, checkpoint["loader"] if resumed else None) as batches:
                progress = train_epoch(model, optimizer, batches, device, progress, checkpointer, epoch)
            if epoch == first_epoch and progress.first_batch_at is not None:
                first_batch_s = progress.first_batch_at - run_started
                mlflow.log_metric("time_to_first_batch_s", first_batch_s, step=checkpointer.steps_total)
                print(f"first batch after {first_batch_s:.1f}s (Spark started: {'yes' if ctx.spark_started else 'no'})")
            if progress.stopped:
                print(
                    f"stopped after {checkpointer.steps_here} steps (--max-steps), in epoch {epoch}: "
                    f"continue with --resume {run.info.run_id}"
                )
                mlflow.end_run(status="KILLED")
                break
            with open_batches(ctx, args, version, train.other(), epoch) as batches:
                evaluation = evaluate(model, batches, train_mean, device)
            seconds = time.monotonic() - started
            mlflow.log_metrics(
                {
                    "train_loss": progress.mean_loss(),
                    "train_rows_seen": progress.rows,
                    **progress.metrics(),
                    **evaluation.as_metrics(),
                    "epoch_seconds": seconds,
                },
                step=epoch,
            )
            checkpointer.save(epoch, None, None)
            print(
                f"epoch {epoch}: train loss {progress.mean_loss():.4f} ({progress.rows} rows, "
                f"{progress.metrics()['samples_per_s']:.0f} samples/s, {progress.metrics()['data_wait_share']:.0%} "
                f"waiting for data), held-out MAE {evaluation.mae:.3f} likes (mean-predictor baseline "
                f"{evaluation.baseline_mae:.3f}), {seconds:.1f}s"
            )
        else:
            mlflow.pytorch.log_model(
                model.cpu(),
                name="model",
                serialization_format="pickle",
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            )
    result = JobResult(JOB_NAME, ctx.run_id)
    result.counts.update({f"{TABLE} version": version, "training rows": train_rows, "held-out rows": holdout_rows})
    if progress is not None and progress.stopped:
        result.counts["stopped at step"] = checkpointer.steps_total
    else:
        result.counts.update(
            {
                "held-out MAE (likes)": round(evaluation.mae, 3),
                "mean-predictor MAE (likes)": round(evaluation.baseline_mae, 3),
            }
        )
    result.counts["MLflow run"] = run.info.run_id
    return result


PROJECT = str(Path(__file__).resolve().parent.parent)  # the project this job belongs to, wherever it runs from


def main(argv=None) -> int:
    return job_main(JOB_NAME, __doc__, run, add_arguments, argv, project=PROJECT)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
