"""Training runs pinned to the table versions they read, in a real (local by default) MLflow store.

A run logs every table it read as an MLflow dataset input (``mlflow.data.from_spark`` with the Delta
path and version, then ``mlflow.log_input``), plus the exact selection it trained on as a run tag, so
``lakehouse reproduce RUN_ID`` can rebuild the training DataFrame row for row.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from lakehouse.project.config import LakehouseConfig

FRAME_TAG = "lakehouse.training_frame"
DEFAULT_EXPERIMENT = "lakehouse"


@dataclass(frozen=True)
class TrainingFrame:
    """What a training run reads: one table at one version, optionally some columns and a filter."""

    table: str
    version: int
    columns: tuple[str, ...] | None = None
    where: str | None = None

    def load(self, spark: SparkSession, config: LakehouseConfig) -> DataFrame:
        df = spark.read.format("delta").option("versionAsOf", self.version).load(config.table_path(self.table))
        if self.where:
            df = df.where(self.where)
        return df.select(*self.columns) if self.columns else df

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainingFrame":
        raw = json.loads(text)
        return cls(
            raw["table"], int(raw["version"]), tuple(raw["columns"]) if raw.get("columns") else None, raw.get("where")
        )


def configure_mlflow(config: LakehouseConfig, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point MLflow at the environment's tracking store and select ``experiment``; return its id.

    With the default SQLite store, artifacts go beside it under ``<warehouse>/_mlflow/artifacts``
    (not into the current directory, MLflow's own default).
    """
    import mlflow

    uri = config.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    # mlflow also exports the URI to os.environ for child processes; a child given its own --conf-file
    # (a job, the MLflow UI) would then read this store instead of its configuration's.
    if exported is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = exported
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        artifacts = Path(config.warehouse.removeprefix("file:")) / "_mlflow" / "artifacts"
        experiment_id = mlflow.create_experiment(experiment, artifact_location=artifacts.resolve().as_uri())
    else:
        experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _pinned_source(path: str, version: int):
    """A Delta dataset source that keeps version 0.

    mlflow 3.17 both resolves ``version or latest`` in ``from_spark`` and drops the version from the
    stored source when it is falsy, so version 0 would come back as "latest".
    """
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    class PinnedDeltaDatasetSource(DeltaDatasetSource):
        def to_dict(self):
            info = super().to_dict()
            info["delta_table_version"] = self.delta_table_version
            return info

    return PinnedDeltaDatasetSource(path=path, delta_table_version=version)


def log_table_input(df: DataFrame, config: LakehouseConfig, table: str, version: int, context: str = "training"):
    """Log ``df``, read from ``table`` at ``version``, as an input of the active MLflow run."""
    import mlflow
    from mlflow.data.spark_dataset import SparkDataset

    path = config.table_path(config.table(table).name)
    name = f"{table}@v{version}"
    dataset = mlflow.data.from_spark(df, path=path, version=version, name=name)
    if version == 0 or dataset.source.delta_table_version != version:
        dataset = SparkDataset(df=df, source=_pinned_source(path, version), name=name, digest=dataset.digest)
    mlflow.log_input(dataset, context=context)
    return dataset


def log_frame_input(config: LakehouseConfig, frame: TrainingFrame, context: str = "training"):
    """Log ``frame`` as an input of the active MLflow run without reading it: the same Delta path and
    version as :func:`log_table_input` records, a digest of the selection, and no JVM (a training
    process that reads through the Arrow loader has no SparkSession)."""
    import hashlib

    import mlflow
    from mlflow.data.meta_dataset import MetaDataset

    path = config.table_path(config.table(frame.table).name)
    digest = hashlib.sha256(frame.to_json().encode()).hexdigest()[:8]
    dataset = MetaDataset(
        source=_pinned_source(path, frame.version), name=f"{frame.table}@v{frame.version}", digest=digest
    )
    mlflow.log_input(dataset, context=context)
    return dataset


def record_training_frame(config: LakehouseConfig, frame: TrainingFrame) -> None:
    """Record ``frame`` on the active run (dataset input + the tag ``lakehouse reproduce`` reads), without Spark."""
    import mlflow

    log_frame_input(config, frame)
    mlflow.set_tag(FRAME_TAG, frame.to_json())


def log_training_frame(spark: SparkSession, config: LakehouseConfig, frame: TrainingFrame) -> DataFrame:
    """Load ``frame``, record it on the active run (dataset input + tag) and return it."""
    import mlflow

    df = frame.load(spark, config)
    log_table_input(df, config, frame.table, frame.version)
    mlflow.set_tag(FRAME_TAG, frame.to_json())
    return df


def run_inputs(run_id: str) -> list[dict]:
    """The tables a run read: name, Delta path, version and context, as MLflow recorded them."""
    import mlflow

    run = mlflow.get_run(run_id)
    inputs = []
    for dataset_input in run.inputs.dataset_inputs:
        source = json.loads(dataset_input.dataset.source)
        context = next((t.value for t in dataset_input.tags if t.key == "mlflow.data.context"), None)
        inputs.append(
            {
                "name": dataset_input.dataset.name,
                "path": source.get("path"),
                "version": source.get("delta_table_version"),
                "context": context,
            }
        )
    return inputs


def reproduce(spark: SparkSession, config: LakehouseConfig, run_id: str) -> DataFrame:
    """Rebuild the exact training DataFrame of MLflow run ``run_id``."""
    import mlflow

    tag = mlflow.get_run(run_id).data.tags.get(FRAME_TAG)
    if tag is None:
        raise ValueError(f"run {run_id} recorded no training frame (tag {FRAME_TAG!r})")
    return TrainingFrame.from_json(tag).load(spark, config)
