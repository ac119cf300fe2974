"""One run of a job at a time per warehouse: two pipeline runs (or a run and an ad-hoc job) share steps.

A job holds an exclusive lock on ``<warehouse>/_locks/<job>.lock`` while it runs. A second run of the same
step waits, then finds (by content, :mod:`lakehouse.orchestration`) that the first one already did the
work. Different jobs write different tables (each table has one writer in the declarations), so they
never wait on each other; Delta's optimistic concurrency covers the rest (``ops`` appends never conflict).
The lock is a local file lock: it serialises processes on one machine, not across a cluster on object
storage, where one scheduler should drive the steps.
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from lakehouse.config import LakehouseConfig

_held: dict[str, int] = {}  # lock file -> depth, in this process (the lock is re-entrant here)


def lock_file(config: LakehouseConfig, job: str) -> Path | None:
    """Where ``job``'s lock lives; None for a warehouse on object storage."""
    warehouse = config.warehouse.removeprefix("file:")
    if "://" in warehouse:
        return None
    return Path(warehouse) / "_locks" / f"{job}.lock"


@contextmanager
def job_lock(config: LakehouseConfig, job: str, waiting: Callable[[str], None] = print) -> Iterator[float]:
    """Hold ``job``'s lock; yields the seconds spent waiting for another process to release it."""
    path = lock_file(config, job)
    if path is None or str(path) in _held:
        if path is not None:
            _held[str(path)] += 1
        try:
            yield 0.0
        finally:
            if path is not None:
                _held[str(path)] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting(f"{job}: another process is running it; waiting")
            fcntl.flock(handle, fcntl.LOCK_EX)
        _held[str(path)] = 1
        try:
            yield time.monotonic() - started
        finally:
            del _held[str(path)]
            fcntl.flock(handle, fcntl.LOCK_UN)
