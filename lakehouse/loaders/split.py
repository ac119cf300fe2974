"""Train / held-out split decided by a stable hash of the key, the same in Spark SQL and in numpy.

A row's bucket is ``pmod(xxhash64(key), 100)``: Spark's own 64-bit xxHash (seed 42) of a bigint key.
:func:`buckets` computes the same function in numpy, so a loader that reads Parquet files without
Spark splits the rows exactly as a Spark ``WHERE`` on the same table does (a test compares them).
The split of a row depends on its key alone: it never moves when other rows come or go.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "holdout")
DEFAULT_HOLDOUT_PERCENT = 20

# The constants and the single-long path of Spark's XXH64 (org.apache.spark.sql.catalyst.expressions.XXH64).
_PRIME64_1 = np.uint64(0x9E3779B185EBCA87)
_PRIME64_2 = np.uint64(0xC2B2AE3D27D4EB4F)
_PRIME64_3 = np.uint64(0x165667B19E3779F9)
_PRIME64_4 = np.uint64(0x85EBCA77C2B2AE63)
_PRIME64_5 = np.uint64(0x27D4EB2F165667C5)
_SPARK_SEED = np.uint64(42)


def _rotl(x: np.ndarray, bits: int) -> np.ndarray:
    return (x << np.uint64(bits)) | (x >> np.uint64(64 - bits))


def spark_xxhash64(keys: np.ndarray) -> np.ndarray:
    """Spark's ``xxhash64(key)`` of bigint keys, as int64 (unsigned arithmetic wraps as in Java)."""
    keys = np.asarray(keys)
    if keys.dtype != np.int64:
        raise TypeError(f"split keys must be int64 (Spark bigint), got {keys.dtype}")
    with np.errstate(over="ignore"):
        x = keys.view(np.uint64)
        h = np.full_like(x, _SPARK_SEED + _PRIME64_5 + np.uint64(8))
        h ^= _rotl(x * _PRIME64_2, 31) * _PRIME64_1
        h = _rotl(h, 27) * _PRIME64_1 + _PRIME64_4
        h ^= h >> np.uint64(33)
        h *= _PRIME64_2
        h ^= h >> np.uint64(29)
        h *= _PRIME64_3
        h ^= h >> np.uint64(32)
    return h.view(np.int64)


def buckets(keys: np.ndarray) -> np.ndarray:
    """Each key's bucket in [0, 100): ``pmod(xxhash64(key), 100)``."""
    return np.mod(spark_xxhash64(keys), 100)  # numpy's mod of a positive divisor is non-negative, as pmod


@dataclass(frozen=True)
class Split:
    """One side of the split of a table by ``key``: "train" or "holdout" (``holdout_percent`` of the keys)."""

    key: str
    name: str = "train"
    holdout_percent: int = DEFAULT_HOLDOUT_PERCENT

    def __post_init__(self):
        if self.name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.name!r}")
        if not 0 < self.holdout_percent < 100:
            raise ValueError(f"holdout_percent must be between 1 and 99, got {self.holdout_percent}")

    def mask(self, keys: np.ndarray) -> np.ndarray:
        """Boolean mask of the ``keys`` on this side."""
        held_out = buckets(keys) < self.holdout_percent
        return held_out if self.name == "holdout" else ~held_out

    def where(self) -> str:
        """The same rows as a Spark SQL condition."""
        operator = "<" if self.name == "holdout" else ">="
        return f"pmod(xxhash64({self.key}), 100) {operator} {int(self.holdout_percent)}"

    def other(self) -> "Split":
        """The opposite side of the same split."""
        return Split(self.key, "holdout" if self.name == "train" else "train", self.holdout_percent)
