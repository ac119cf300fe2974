"""The photo-popularity model: predicts likes in a photo's first 24 hours from the author's history
as of the upload, the upload's metadata, the classifier's outputs and the picture itself.

A small two-tower network: an MLP over the tabular features (counts through ``log1p``; a missing
cell, e.g. one blanked by cell dropout, becomes 0 plus a "was missing" flag) and a tiny CNN over
the 28x28 image; their outputs meet in a linear head that predicts ``log1p(likes)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from lakehouse.loaders.arrow_loader import to_device

TABLE = "gold.photo_popularity_training"
KEY = "photo_id"
LABEL = "likes_24h"
IMAGE = "image"
CLASS_COLUMN = "predicted_class"
CLASSES = 10
# Numeric features read from the table, all known at upload time (lakehouse/transforms/popularity.py).
NUMERIC_FEATURES = (
    "upload_hour",
    "upload_weekday",
    "caption_length",
    "prediction_confidence",
    "author_followers",
    "author_logins_before",
    "author_logins_7d",
    "author_views_before",
    "author_views_7d",
    "author_likes_given_before",
    "author_likes_given_7d",
    "author_uploads_before",
    "author_uploads_7d",
    "author_likes_received_before",
    "author_likes_received_7d",
)
# The author-history counts: what cell dropout blanks (a feature store may well miss them).
DROPOUT_FEATURES = tuple(name for name in NUMERIC_FEATURES if name.startswith("author_"))


def loader_columns() -> list[str]:
    """The table's columns a training or evaluation batch needs (the image comes as ``encoded``)."""
    return [KEY, *NUMERIC_FEATURES, CLASS_COLUMN, LABEL]


class PopularityModel(nn.Module):
    """Tabular MLP + predicted-class embedding (+ image CNN) -> predicted ``log1p(likes_24h)``."""

    def __init__(self, use_image: bool = True):
        super().__init__()
        features = 2 * len(NUMERIC_FEATURES)  # values and "was missing" flags
        self.tabular = nn.Sequential(
            nn.BatchNorm1d(features), nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU()
        )
        self.predicted_class = nn.Embedding(CLASSES + 1, 4)  # the last index: no prediction
        self.image = (
            nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            if use_image
            else None
        )
        self.head = nn.Linear(32 + 4 + (16 if use_image else 0), 1)

    def forward(self, batch: dict) -> torch.Tensor:
        values = torch.stack([batch[name].to(torch.float32) for name in NUMERIC_FEATURES], dim=1)
        missing = torch.isnan(values)
        values = torch.log1p(torch.nan_to_num(values, nan=0.0).clamp_min(0.0))
        parts = [self.tabular(torch.cat([values, missing.to(torch.float32)], dim=1))]
        classes = batch[CLASS_COLUMN].to(torch.int64)
        parts.append(self.predicted_class(torch.where((classes >= 0) & (classes < CLASSES), classes, CLASSES)))
        if self.image is not None:
            parts.append(self.image(batch[IMAGE]))
        return self.head(torch.cat(parts, dim=1)).squeeze(1)


def target(batch: dict) -> torch.Tensor:
    """What the model predicts: ``log1p(likes_24h)``."""
    return torch.log1p(batch[LABEL].to(torch.float32))


@dataclass
class Evaluation:
    """Errors on held-out rows, in likes; ``baseline_mae`` predicts the training mean for every row."""

    rows: int = 0
    mae: float = 0.0
    rmse: float = 0.0
    baseline_mae: float = 0.0
    log_mse: float = 0.0

    def as_metrics(self, prefix: str = "holdout_") -> dict[str, float]:
        return {f"{prefix}{name}": value for name, value in vars(self).items() if name != "rows"}


@dataclass
class _Sums:
    rows: int = 0
    abs_error: float = 0.0
    squared_error: float = 0.0
    baseline_abs_error: float = 0.0
    log_squared_error: float = 0.0


def evaluate(model: PopularityModel, batches, train_mean_likes: float, device: torch.device) -> Evaluation:
    """Run the model over ``batches`` (no gradient) and measure it against the labels."""
    model.eval()
    sums = _Sums()
    with torch.no_grad():
        for batch in batches:
            batch = to_device(batch, device)
            predicted_log = model(batch)
            predicted = torch.expm1(predicted_log).clamp_min(0.0)
            likes = batch[LABEL].to(torch.float32)
            sums.rows += len(likes)
            sums.abs_error += float((predicted - likes).abs().sum())
            sums.squared_error += float(((predicted - likes) ** 2).sum())
            sums.baseline_abs_error += float((likes - train_mean_likes).abs().sum())
            sums.log_squared_error += float(((predicted_log - target(batch)) ** 2).sum())
    model.train()
    if sums.rows == 0:
        raise ValueError("no held-out rows to evaluate on")
    return Evaluation(
        rows=sums.rows,
        mae=sums.abs_error / sums.rows,
        rmse=math.sqrt(sums.squared_error / sums.rows),
        baseline_mae=sums.baseline_abs_error / sums.rows,
        log_mse=sums.log_squared_error / sums.rows,
    )
