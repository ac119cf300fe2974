"""One writer at a time where Delta needs it: the same lock interface on a local disk and on object storage.

**Local warehouse.** A job holds an exclusive lock on ``<warehouse>/_locks/<job>.lock`` (``flock``) while it
runs. A second run of the same step waits, then finds (by content, :mod:`lakehouse.engine.orchestration`) that
the first one already did the work. Different jobs write different tables (each table has one writer in
the declarations), so they never wait on each other; Delta's own optimistic concurrency covers the rest:
on a local (or HDFS) file system its log store creates ``<version>.json`` atomically, so of two
processes committing the same version one fails and retries, and no commit is lost.

**s3a:// warehouse.** Delta 4.4's log store for ``s3a://`` is ``S3SingleDriverLogStore`` (the only S3 log
store in delta-storage; the multi-cluster one, ``S3DynamoDBLogStore``, needs DynamoDB): it serialises
commits inside one JVM only, and writes ``<version>.json`` after checking that it does not exist, not
with a conditional write. Two processes committing the same version both succeed and the second
overwrites the first: a lost commit, and every job appends to the shared ``ops.*`` tables. So on object
storage the lock is one per warehouse (:data:`WAREHOUSE_LOCK`): a step of any job holds
``<warehouse>/_locks/warehouse.lock``, an object created with a conditional ``PUT`` (``If-None-Match: *``,
which S3 and S3Proxy 4.1 make atomic); a second process waits until it is deleted, so its commits come
after the first's and none is lost. The object is a lease: its holder rewrites it every ``ttl_s / 3``
seconds, and a lock object not rewritten for ``ttl_s`` seconds (by the store's own clock: its
``Last-Modified`` against the ``Date`` of the answer) belongs to a process that died; the one waiter that
wins a second conditional ``PUT`` (``<lock>.takeover-<etag>``) deletes it, and every waiter competes again.
Cost: one conditional PUT to take the lock and one DELETE to release it, per step, and a rewrite every
``ttl_s / 3`` while held: 20-30 ms per step on a local S3Proxy (measured on a busy 2-core machine, where
one Delta commit to s3a took 3-5 s; tests/test_s3_writers.py prints both), so well under 1% of a commit.
The keys come from the environment, as for s3a (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``).

:func:`job_lock` is the one entry point: ``with job_lock(config, job) as waited:`` on either storage, with
an optional ``timeout_s`` after which it gives up with :class:`LockTimeout`, naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable, Iterator, Protocol

from lakehouse.project.config import LakehouseConfig

WAREHOUSE_LOCK = "warehouse"  # the one lock of an s3a warehouse (see the module's docstring)
DEFAULT_TTL_S = 60.0
_held: dict[str, int] = {}  # lock name -> depth, in this process (a lock is re-entrant here)
_held_guard = threading.Lock()


class LockTimeout(TimeoutError):
    """The lock stayed with another process for longer than the caller wanted to wait."""


class Lock(Protocol):
    """What both locks offer (:class:`FileLock`, :class:`ObjectLock`)."""

    name: str  # where it lives: a path or an s3a:// URI

    def acquire(self, waiting: Callable[[str], None], timeout_s: float | None = None) -> float:
        """Block until held (at most ``timeout_s``, then :class:`LockTimeout`); the seconds waited."""

    def release(self) -> None:
        """Let the next process in."""


class FileLock:
    """An exclusive ``flock`` on a local file (released by the kernel if the process dies)."""

    def __init__(self, path: Path, what: str):
        self.path, self.what, self.name = Path(path), what, str(path)
        self._handle = None

    def acquire(self, waiting: Callable[[str], None], timeout_s: float | None = None) -> float:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        handle = open(self.path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting(f"{self.what}: another process is running it; waiting")
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | (fcntl.LOCK_NB if timeout_s is not None else 0))
                    break
                except BlockingIOError:
                    if time.monotonic() - started > timeout_s:
                        handle.close()
                        raise LockTimeout(
                            f"{self.what}: {self.path} still locked by another process after {timeout_s:.0f} s"
                        ) from None
                    time.sleep(0.2)
        self._handle = handle
        return time.monotonic() - started

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class ObjectLock:
    """A lease object on S3, taken with a conditional PUT (the module's docstring says how it works)."""

    def __init__(self, client, bucket: str, key: str, what: str, ttl_s: float = DEFAULT_TTL_S, poll_s: float = 0.5):
        self.client, self.bucket, self.key, self.what = client, bucket, key, what
        self.name = f"s3a://{bucket}/{key}"
        self.ttl_s, self.poll_s = ttl_s, poll_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._etag: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.lost = False  # set when another process took the lease over while this one held it
        self.requests = 0  # S3 requests made (the cost the tests measure)

    def _body(self) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "what": self.what,
                "ttl_s": self.ttl_s,
                "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
        ).encode()

    def _holder(self) -> str:
        from lakehouse.services import object_store

        try:
            found = json.loads(object_store.get_object(self.client, self.bucket, self.key))
            return f"{found.get('owner')} ({found.get('what')}, written {found.get('written_at')})"
        except (object_store.ObjectStoreError, ValueError):
            return "another process"

    def _take_over_if_stale(self, head: dict[str, str]) -> None:
        """Delete the lock object when its holder stopped renewing it (once, whoever else is waiting)."""
        from lakehouse.services import object_store

        try:
            age = (parsedate_to_datetime(head["date"]) - parsedate_to_datetime(head["last-modified"])).total_seconds()
        except (KeyError, TypeError, ValueError):
            return
        if age <= self.ttl_s:
            return
        etag = head.get("etag", "")
        token = f"{self.key}.takeover-{etag.strip(chr(34))}"
        self.requests += 1
        if object_store.put_if_absent(self.client, self.bucket, token, self.owner.encode()) is None:
            return  # another waiter is taking it over
        print(
            f"{self.what}: the lock {self.name} was not renewed for {age:.0f} s (its holder died): taken over",
            file=sys.stderr,
        )
        object_store.delete_object(self.client, self.bucket, self.key, if_match=etag)
        object_store.delete_object(self.client, self.bucket, token)
        self.requests += 2

    def acquire(self, waiting: Callable[[str], None], timeout_s: float | None = None) -> float:
        from lakehouse.services import object_store

        started = time.monotonic()
        announced = False
        delay = self.poll_s
        while True:
            self.requests += 1
            etag = object_store.put_if_absent(self.client, self.bucket, self.key, self._body())
            if etag is not None:
                self._etag, self.lost = etag, False
                self._stop.clear()
                self._heartbeat = threading.Thread(target=self._renew, name=f"lock {self.name}", daemon=True)
                self._heartbeat.start()
                return time.monotonic() - started
            self.requests += 1
            head = object_store.head_object(self.client, self.bucket, self.key)
            if head is None:
                continue  # released in between: try again at once
            self._take_over_if_stale(head)
            if not announced:
                waiting(f"{self.what}: {self.name} is held by {self._holder()}; waiting")
                announced = True
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise LockTimeout(
                    f"{self.what}: {self.name} still held by {self._holder()} after {timeout_s:.0f} s: "
                    "one writer at a time on an s3a warehouse (Delta's S3SingleDriverLogStore)"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    def _renew(self) -> None:
        from lakehouse.services import object_store

        while not self._stop.wait(self.ttl_s / 3):
            try:
                etag = object_store.put_if_match(self.client, self.bucket, self.key, self._body(), self._etag)
            except (OSError, object_store.ObjectStoreError) as exc:  # the store did not answer: try again later
                print(f"{self.what}: could not renew {self.name}: {exc}", file=sys.stderr)
                continue
            if etag is None:
                self.lost = True
                print(
                    f"{self.what}: the lock {self.name} was taken over by another process while this one held "
                    "it (it was not renewed in time)",
                    file=sys.stderr,
                )
                return
            self._etag = etag

    def release(self) -> None:
        from lakehouse.services import object_store

        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        if not self.lost and self._etag is not None:
            self.requests += 1
            object_store.delete_object(self.client, self.bucket, self.key, if_match=self._etag)
        self._etag = None


def lock_file(config: LakehouseConfig, job: str) -> Path | None:
    """Where ``job``'s lock lives on a local warehouse; None for a warehouse on object storage."""
    warehouse = config.warehouse.removeprefix("file:")
    if "://" in warehouse:
        return None
    return Path(warehouse) / "_locks" / f"{job}.lock"


def lock_for(config: LakehouseConfig, job: str, ttl_s: float = DEFAULT_TTL_S) -> Lock | None:
    """The lock ``job`` takes on ``config``'s warehouse: a :class:`FileLock` per job on a local disk, the one
    :class:`ObjectLock` of the warehouse on ``s3a://``/``s3://``; None elsewhere (HDFS: Delta's log store
    commits atomically there, and the platform's scheduler runs one run of a step at a time)."""
    path = lock_file(config, job)
    if path is not None:
        return FileLock(path, job)
    from lakehouse.services import object_store

    if not config.warehouse.startswith(("s3a://", "s3://")):
        return None
    bucket, prefix = object_store.split_uri(config.warehouse)
    key = "/".join(filter(None, [prefix, "_locks", f"{WAREHOUSE_LOCK}.lock"]))
    return ObjectLock(object_store.S3Client.from_config(config), bucket, key, job, ttl_s=ttl_s)


@contextmanager
def job_lock(
    config: LakehouseConfig, job: str, waiting: Callable[[str], None] = print, timeout_s: float | None = None
) -> Iterator[float]:
    """Hold ``job``'s lock (:func:`lock_for`); yields the seconds spent waiting for another process to
    release it. Re-entrant within a process (a pipeline step inside a job's lock, every step of an s3a
    warehouse under its one lock)."""
    lock = lock_for(config, job)
    with _held_guard:
        nested = lock is None or lock.name in _held
        if nested and lock is not None:
            _held[lock.name] += 1
    if nested:
        try:
            yield 0.0
        finally:
            if lock is not None:
                with _held_guard:
                    _held[lock.name] -= 1  # the outermost holder removes the entry
        return
    waited = lock.acquire(waiting, timeout_s)
    with _held_guard:
        _held[lock.name] = 1
    try:
        yield waited
    finally:
        with _held_guard:
            del _held[lock.name]
        lock.release()
