"""A small convolutional network that names the Fashion-MNIST class of a 28x28 greyscale picture.

It is trained on Fashion-MNIST's ``t10k`` split: the scenario's photos are ``train`` pictures, so its
predictions on them are on pictures it never saw. Training is deterministic (seeded, fixed data order,
fixed thread count) and a model's version is a hash of its weights: the same weights always carry
the same version. So a recipe is trained once per machine, and every warehouse there reuses its weights
(:func:`train_once`). Models are kept under ``<warehouse>/_models/fashion_mnist_cnn/<version>/`` with a
``CURRENT`` file naming the one in use; each training run is logged to MLflow.

torch is imported inside the functions: importing this module (the jobs do) costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path

from lakehouse.install.datasets import FASHION_MNIST_LABELS, fashion_mnist_images
from lakehouse.install.paths import user_cache_dir
from lakehouse.project.config import LakehouseConfig
from lakehouse.storage import small_files as storage

MODEL_NAME = "fashion_mnist_cnn"
EXPERIMENT = "image-classifier"
LABELS = FASHION_MNIST_LABELS
IMAGE_SIZE = 28
TRAINING_SPLIT = "t10k"


@dataclass(frozen=True)
class TrainingParams:
    """Everything that decides the trained weights (with the data and the torch build)."""

    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
    holdout: int = 1000  # the split's last images: never trained on, they measure accuracy
    train_size: int | None = None  # None: every image that is not held out
    # Part of the recipe: float sums, hence the weights, depend on the thread count. One thread, because
    # on a shared 2-core machine two threads ran ten times slower (each waits for the other's core).
    threads: int = 1


@dataclass(frozen=True)
class TrainedClassifier:
    """The outcome of :func:`train_classifier`."""

    state_dict: dict
    params: TrainingParams
    train_images: int
    holdout_accuracy: float
    seconds: float  # how long training took (when it was trained, for weights from the training cache)
    reused: bool = False  # the weights came from this machine's training cache (:func:`train_once`)

    @property
    def version(self) -> str:
        return model_version(self.state_dict)


@dataclass(frozen=True)
class StoredModel:
    """A model kept in the warehouse: its version, where its file is and the file's bytes."""

    name: str
    version: str
    uri: str
    content: bytes
    holdout_accuracy: float | None = None
    mlflow_run_id: str | None = None
    trained: bool = False  # True when this call trained it (not when it reused this machine's cached weights)
    training_seconds: float | None = None


def build_network():
    """The untrained network: two 3x3 convolutions with pooling, then one linear layer (about 20k weights)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, len(LABELS)),
    )


def pixels_to_tensor(pixels):
    """uint8 pixels (N x 28 x 28, any array-like) -> float tensor N x 1 x 28 x 28 in [0, 1]."""
    import numpy as np
    import torch

    array = np.asarray(pixels, dtype=np.uint8).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
    return torch.from_numpy(array.astype(np.float32) / 255.0)


def image_pixels(content: bytes):
    """Decode encoded image bytes (any format Pillow reads) into the 28x28 uint8 array the network takes:
    greyscale, resized when it is another size. Raises Pillow's errors when the bytes do not decode."""
    import numpy as np
    from PIL import Image

    with Image.open(BytesIO(content)) as image:
        grey = image.convert("L")
    if grey.size != (IMAGE_SIZE, IMAGE_SIZE):
        grey = grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.uint8)


def _fashion_mnist_tensors(split: str):
    import numpy as np
    import torch

    pixels, labels = fashion_mnist_images(split)
    images = np.frombuffer(b"".join(pixels), dtype=np.uint8)
    return pixels_to_tensor(images), torch.tensor(labels, dtype=torch.long)


def accuracy(network, images, labels, batch_size: int = 1000) -> float:
    """Share of ``images`` whose most probable class is their label."""
    import torch

    network.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            logits = network(images[start : start + batch_size])
            correct += int((logits.argmax(dim=1) == labels[start : start + batch_size]).sum())
    return correct / max(len(labels), 1)


def train_classifier(params: TrainingParams | None = None, **overrides) -> TrainedClassifier:
    """Train the network on Fashion-MNIST ``t10k`` minus its last ``holdout`` images and measure its
    accuracy on those. Deterministic: the same params on the same machine give the same weights.

    ``overrides`` replace single fields of ``params`` (e.g. ``train_size=2000`` for a quick model).
    """
    import torch
    from torch import nn

    params = replace(params or TrainingParams(), **overrides)
    started = time.monotonic()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(params.threads)
    try:
        torch.manual_seed(params.seed)
        images, labels = _fashion_mnist_tensors(TRAINING_SPLIT)
        if not 0 < params.holdout < len(labels):
            raise ValueError(f"holdout must be between 1 and {len(labels) - 1}, got {params.holdout}")
        train_end = len(labels) - params.holdout
        n_train = min(params.train_size or train_end, train_end)
        train_x, train_y = images[:n_train], labels[:n_train]
        network = build_network()
        optimiser = torch.optim.Adam(network.parameters(), lr=params.learning_rate)
        order = torch.Generator().manual_seed(params.seed)
        for _ in range(params.epochs):
            network.train()
            permutation = torch.randperm(n_train, generator=order)
            for start in range(0, n_train, params.batch_size):
                batch = permutation[start : start + params.batch_size]
                optimiser.zero_grad()
                nn.functional.cross_entropy(network(train_x[batch]), train_y[batch]).backward()
                optimiser.step()
        held_out = accuracy(network, images[train_end:], labels[train_end:])
        state = {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}
    finally:
        torch.set_num_threads(threads_before)
    return TrainedClassifier(state, params, n_train, held_out, time.monotonic() - started)


def model_version(state_dict) -> str:
    """First 12 hex digits of the sha256 of the weights (names, dtypes, shapes, values in name order).

    Hashing the tensors rather than a ``torch.save`` file keeps the version independent of the file
    format: the same weights give the same version whatever wrote them.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:12]


def serialize(state_dict) -> bytes:
    """The weights as ``torch.save`` bytes (the content of ``model.pt``)."""
    import torch

    buffer = BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def deserialize(content: bytes) -> dict:
    """The weights back from ``model.pt`` bytes (tensors only: nothing is unpickled that could run code)."""
    import torch

    return torch.load(BytesIO(content), map_location="cpu", weights_only=True)


def load_network(content: bytes):
    """The network with the weights of ``model.pt`` bytes, ready for inference."""
    network = build_network()
    network.load_state_dict(deserialize(content))
    return network.eval()


def predict_probabilities(network, pixels):
    """Class probabilities (N x 10 float32 numpy array) of uint8 pictures (N x 28 x 28)."""
    import torch

    with torch.no_grad():
        return torch.softmax(network(pixels_to_tensor(pixels)), dim=1).numpy()


# The model store under the warehouse.


def models_root(config: LakehouseConfig) -> str:
    """``<warehouse>/_models/fashion_mnist_cnn``: one folder per version, plus ``CURRENT``."""
    return f"{config.warehouse}/_models/{MODEL_NAME}"


def model_uri(config: LakehouseConfig, version: str) -> str:
    """Where the weights of ``version`` are kept."""
    return f"{models_root(config)}/{version}/model.pt"


def current_model(config: LakehouseConfig) -> StoredModel | None:
    """The model in use (named by ``CURRENT``), or ``None`` before the first one is saved.

    Its file is checked against its version, so a damaged file stops the job instead of predicting.
    """
    pointer = f"{models_root(config)}/CURRENT"
    if not storage.exists(pointer):
        return None
    version = storage.read_bytes(pointer).decode().strip()
    uri = model_uri(config, version)
    content = storage.read_bytes(uri)
    if model_version(deserialize(content)) != version:
        raise RuntimeError(f"{uri}: the weights do not match version {version}")
    info_uri = f"{models_root(config)}/{version}/model.json"
    info = json.loads(storage.read_bytes(info_uri)) if storage.exists(info_uri) else {}
    return StoredModel(MODEL_NAME, version, uri, content, info.get("holdout_accuracy"), info.get("mlflow_run_id"))


def save_model(config: LakehouseConfig, trained: TrainedClassifier, mlflow_run_id: str | None = None) -> StoredModel:
    """Keep ``trained`` under its version (``model.pt`` + ``model.json``) and make it the current model."""
    version = trained.version
    content = serialize(trained.state_dict)
    uri = model_uri(config, version)
    storage.write_bytes(uri, content)
    info = {
        "name": MODEL_NAME,
        "version": version,
        "holdout_accuracy": trained.holdout_accuracy,
        "train_images": trained.train_images,
        "training_seconds": trained.seconds,
        "params": asdict(trained.params),
        "training_split": TRAINING_SPLIT,
        "labels": list(LABELS),
        "mlflow_run_id": mlflow_run_id,
        "saved_at": datetime.now(timezone.utc).isoformat(),
    }
    storage.write_bytes(f"{models_root(config)}/{version}/model.json", json.dumps(info, indent=2).encode())
    storage.write_bytes(f"{models_root(config)}/CURRENT", f"{version}\n".encode())  # last: the switch
    return StoredModel(
        MODEL_NAME,
        version,
        uri,
        content,
        trained.holdout_accuracy,
        mlflow_run_id,
        trained=not trained.reused,
        training_seconds=trained.seconds,
    )


def log_training_run(config: LakehouseConfig, trained: TrainedClassifier) -> str:
    """Record a training run in MLflow (experiment ``image-classifier``): params, held-out accuracy,
    model version and the model file as an artifact. Returns the MLflow run id."""
    import mlflow

    from lakehouse.lineage.mlflow_runs import configure_mlflow

    configure_mlflow(config, EXPERIMENT)
    version = trained.version
    with tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_name=f"{MODEL_NAME}-{version}") as run:
        model_file = Path(folder) / "model.pt"
        model_file.write_bytes(serialize(trained.state_dict))
        mlflow.log_params(
            {**asdict(trained.params), "training_split": TRAINING_SPLIT, "train_images": trained.train_images}
        )
        mlflow.log_metrics({"holdout_accuracy": trained.holdout_accuracy, "training_seconds": trained.seconds})
        mlflow.set_tags(
            {
                "model_name": MODEL_NAME,
                "model_version": version,
                "model_uri": model_uri(config, version),
                "weights": "from this machine's training cache" if trained.reused else "trained in this run",
            }
        )
        mlflow.log_artifact(str(model_file), artifact_path="model")
        return run.info.run_id


def register_model(config: LakehouseConfig, trained: TrainedClassifier) -> StoredModel:
    """Log ``trained`` to MLflow, keep it in the warehouse and make it the current model."""
    return save_model(config, trained, log_training_run(config, trained))


def training_cache_file(params: TrainingParams) -> Path:
    """Where this machine keeps the weights trained with ``params``: the name hashes everything that decides
    them (the recipe, the training images and labels, the torch build)."""
    import torch

    pixels, labels = fashion_mnist_images(TRAINING_SPLIT)
    digest = hashlib.sha256(json.dumps(asdict(params), sort_keys=True).encode())
    digest.update(f"|{torch.__version__}|{TRAINING_SPLIT}|".encode())
    digest.update(b"".join(pixels))
    digest.update(bytes(labels))
    return user_cache_dir() / "models" / MODEL_NAME / f"{digest.hexdigest()[:20]}.pt"


def train_once(params: TrainingParams | None = None, retrain: bool = False, **overrides) -> TrainedClassifier:
    """:func:`train_classifier`, once per machine: training is deterministic, so the weights a recipe gave
    here before are the weights it would give again, and every warehouse on this machine reuses them
    (``~/.cache/lakehouse/models``, :func:`lakehouse.install.paths.user_cache_dir`). ``retrain`` trains anyway (and
    keeps the result)."""
    params = replace(params or TrainingParams(), **overrides)
    cached = training_cache_file(params)
    info_file = cached.with_suffix(".json")
    if not retrain and cached.is_file() and info_file.is_file():
        info = json.loads(info_file.read_text())
        state = deserialize(cached.read_bytes())
        if model_version(state) == info["version"]:  # else damaged: train again
            return TrainedClassifier(
                state, params, info["train_images"], info["holdout_accuracy"], info["seconds"], reused=True
            )
    trained = train_classifier(params)
    cached.parent.mkdir(parents=True, exist_ok=True)
    for target, content in (
        (cached, serialize(trained.state_dict)),
        (
            info_file,
            json.dumps(
                {
                    "version": trained.version,
                    "train_images": trained.train_images,
                    "holdout_accuracy": trained.holdout_accuracy,
                    "seconds": trained.seconds,
                }
            ).encode(),
        ),
    ):
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        partial.write_bytes(content)
        partial.rename(target)  # atomic: a concurrent trainer writes the same bytes
    return trained


def ensure_model(config: LakehouseConfig, retrain: bool = False, **training) -> StoredModel:
    """The current model; trained (or taken from this machine's training cache, see :func:`train_once`),
    logged and saved first when there is none yet (or ``retrain``).

    ``training`` overrides :class:`TrainingParams` fields for a model trained here.
    """
    if not retrain:
        existing = current_model(config)
        if existing is not None:
            return existing
    return register_model(config, train_once(retrain=retrain, **training))
