"""Batch transforms that run inside a loader's workers: image decoding and augmentation, cell dropout.

Every transform takes a batch (column -> tensor; an image column arrives as a list of encoded bytes)
and returns a new one, so they chain with :class:`Compose` and plug into either loader's
``transform``. Randomness comes from a generator seeded from the transform's ``seed`` and the
process's torch seed: each DataLoader worker (and each epoch's workers) draws differently, and a
run that seeds torch draws the same again.

Each transform also says what it turns its columns into (``output_fields``), which Petastorm needs
to know before it runs one (its ``TransformSpec``).
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import torch
from PIL import Image

# column -> (numpy dtype, shape of one row's value) after the transform
OutputFields = dict[str, tuple[type, tuple[int, ...]]]


class _Random:
    """A torch generator per process, re-seeded when the process's torch seed changes (a new worker)."""

    def __init__(self, seed: int):
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._process_seed: int | None = None

    def generator(self) -> torch.Generator:
        process_seed = torch.initial_seed()
        if self._generator is None or process_seed != self._process_seed:
            self._generator = torch.Generator().manual_seed((self.seed * 1_000_003 + process_seed) % 2**63)
            self._process_seed = process_seed
        return self._generator


class DecodeImages:
    """Encoded images (PNG, JPEG: anything Pillow reads) -> float32 tensors [N, channels, H, W] in [0, 1].

    Every image must have ``size`` (height, width); a different one is an error naming the row's
    position, since a batch must stack.
    """

    def __init__(self, column: str = "image", size: tuple[int, int] = (28, 28), channels: int = 1):
        self.column, self.size, self.channels = column, tuple(size), channels
        self._mode = {1: "L", 3: "RGB"}[channels]

    def __call__(self, batch: dict) -> dict:
        encoded = batch[self.column]
        pixels = np.empty((len(encoded), *self.size, self.channels), dtype=np.uint8)
        for i, data in enumerate(encoded):
            image = Image.open(io.BytesIO(data)).convert(self._mode)
            if (image.height, image.width) != self.size:
                raise ValueError(
                    f"{self.column}: image {i} of the batch is {image.height}x{image.width}, expected {self.size}"
                )
            pixels[i] = np.asarray(image).reshape(*self.size, self.channels)
        tensor = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous().to(torch.float32).div_(255.0)
        return {**batch, self.column: tensor}

    def output_fields(self) -> OutputFields:
        return {self.column: (np.float32, (self.channels, *self.size))}


class RandomCrop:
    """Pad each image by ``padding`` pixels (zeros) and crop a random window of the original size."""

    def __init__(self, column: str = "image", padding: int = 2, seed: int = 0):
        self.column, self.padding, self._random = column, padding, _Random(seed)

    def __call__(self, batch: dict) -> dict:
        images = batch[self.column]
        n, _, height, width = images.shape
        if n == 0:  # a batch the split filter emptied
            return batch
        padded = torch.nn.functional.pad(images, [self.padding] * 4)
        offsets = torch.randint(0, 2 * self.padding + 1, (n, 2), generator=self._random.generator())
        cropped = torch.stack(
            [padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets.tolist())]
        )
        return {**batch, self.column: cropped}

    def output_fields(self) -> OutputFields:
        return {}


class RandomFlip:
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, column: str = "image", p: float = 0.5, seed: int = 0):
        self.column, self.p, self._random = column, p, _Random(seed)

    def __call__(self, batch: dict) -> dict:
        images = batch[self.column]
        flip = torch.rand(images.shape[0], generator=self._random.generator()) < self.p
        return {**batch, self.column: torch.where(flip[:, None, None, None], images.flip(-1), images)}

    def output_fields(self) -> OutputFields:
        return {}


class RandomBrightness:
    """Add a random offset in [-max_delta, max_delta] to each image, clamped to [0, 1]."""

    def __init__(self, column: str = "image", max_delta: float = 0.2, seed: int = 0):
        self.column, self.max_delta, self._random = column, max_delta, _Random(seed)

    def __call__(self, batch: dict) -> dict:
        images = batch[self.column]
        delta = (torch.rand(images.shape[0], generator=self._random.generator()) * 2 - 1) * self.max_delta
        return {**batch, self.column: (images + delta[:, None, None, None]).clamp_(0.0, 1.0)}

    def output_fields(self) -> OutputFields:
        return {}


class CellDropout:
    """Tabular augmentation: blank each cell of ``columns`` with probability ``p`` (becomes NaN, float32).

    The lecture's "delete some cells to simulate missing data"; the model must cope with NaN.
    """

    def __init__(self, columns: Sequence[str], p: float = 0.1, seed: int = 0):
        self.columns, self.p, self._random = tuple(columns), p, _Random(seed)

    def __call__(self, batch: dict) -> dict:
        out = dict(batch)
        for name in self.columns:
            values = out[name].to(torch.float32)
            mask = torch.rand(values.shape, generator=self._random.generator()) < self.p
            out[name] = values.masked_fill(mask, float("nan"))
        return out

    def output_fields(self) -> OutputFields:
        return {name: (np.float32, ()) for name in self.columns}


class Compose:
    """Apply transforms in order."""

    def __init__(self, *transforms):
        self.transforms = transforms

    def __call__(self, batch: dict) -> dict:
        for transform in self.transforms:
            batch = transform(batch)
        return batch

    def output_fields(self) -> OutputFields:
        fields: OutputFields = {}
        for transform in self.transforms:
            fields.update(transform.output_fields())
        return fields


def image_augmentation(column: str = "image", size: tuple[int, int] = (28, 28), seed: int = 0) -> Compose:
    """Decode, then random crop (2-pixel padding), left-right flip and brightness: the usual light set."""
    return Compose(
        DecodeImages(column, size),
        RandomCrop(column, padding=2, seed=seed),
        RandomFlip(column, seed=seed + 1),
        RandomBrightness(column, seed=seed + 2),
    )
