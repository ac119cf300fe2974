"""The photo-sharing application's own data: its database (users, photos, follows) and the photos.

Coherent with the event logs of :mod:`lakehouse.scenario.app_events` (same seed, scale and days): the
users are the ones who log in, the photos are the ones uploaded in the logs. Each photo's pixels are a
real Fashion-MNIST image, written as a PNG object with a manifest listing it; a few objects are bad on
purpose (missing, not an image, truncated), and some photos are re-uploads of an earlier image, so the
image validation and deduplication in silver have real work. Same seed, same data.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from lakehouse.install.datasets import FASHION_MNIST_LABELS, fashion_mnist_images, png_bytes
from lakehouse.scenario.app_events import START

COUNTRIES = ("US", "DE", "FR", "BR", "IN", "JP", "NG", "GB", "CA", "MX")
FIRST_NAMES = ("ana", "ben", "chen", "dara", "emil", "fatima", "goro", "hana", "ivan", "jules", "kofi", "lena")
CAPTIONS = ("new in", "today's look", "found this", "vintage", "for sale", "what do you think?", "")
# Bad objects the generator writes on purpose, and the reason silver must give for each.
BAD_OBJECT_KINDS = {"missing": "object_not_found", "not_an_image": "not_an_image", "truncated": "corrupt_image"}


@dataclass
class AppDatabase:
    """Rows of each application table, and what was written for the photos."""

    users: list[tuple] = field(default_factory=list)
    photos: list[tuple] = field(default_factory=list)
    follows: list[tuple] = field(default_factory=list)
    manifest: Path | None = None
    objects_written: int = 0
    bad_objects: dict[str, int] = field(default_factory=dict)
    reused_images: int = 0

    def tables(self) -> dict[str, list[tuple]]:
        return {"users": self.users, "photos": self.photos, "follows": self.follows}


def _users(rng: random.Random, n_users: int) -> list[tuple]:
    users = []
    for user_id in range(1, n_users + 1):
        name = f"{rng.choice(FIRST_NAMES)}{user_id}"
        created = START - timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86_399))
        updated = created + timedelta(days=rng.randint(0, 29))
        users.append((user_id, f"{name}@example.com", name.capitalize(), rng.choice(COUNTRIES), created, updated))
    return users


def _follows(rng: random.Random, n_users: int) -> list[tuple]:
    pairs = set()
    for follower in range(1, n_users + 1):
        for _ in range(rng.randint(0, 8)):
            followee = rng.randint(1, n_users)
            if followee != follower:
                pairs.add((follower, followee))
    return [(a, b, START - timedelta(days=rng.randint(1, 400))) for a, b in sorted(pairs)]


def write_app_database(
    uploads: list[tuple[int, int, datetime]],
    n_users: int,
    objects_dir: str | Path,
    manifest_dir: str | Path,
    seed: int = 42,
    bad_object_rate: float = 0.01,
    reuse_rate: float = 0.03,
    write_files: bool = True,
) -> AppDatabase:
    """Build the application tables for the logs' ``uploads`` and write one PNG per photo into
    ``objects_dir`` plus ``manifest_dir/photos.csv`` (uri relative to the manifest, label, photo_id,
    fashion_mnist_index). Returns the rows to load into PostgreSQL; with ``write_files=False`` only
    the rows (the same ones) are made."""
    rng = random.Random(f"{seed}:app_db")
    objects, manifests = Path(objects_dir).resolve(), Path(manifest_dir).resolve()
    if write_files:
        objects.mkdir(parents=True, exist_ok=True)
        manifests.mkdir(parents=True, exist_ok=True)
    images, labels = fashion_mnist_images("train")
    db = AppDatabase(users=_users(rng, n_users), follows=_follows(rng, n_users))
    db.bad_objects = {kind: 0 for kind in BAD_OBJECT_KINDS}
    used: list[int] = []
    rows = []
    for photo_id, user_id, uploaded_at in uploads:
        if used and rng.random() < reuse_rate:
            index = rng.choice(used)  # the same picture uploaded again: silver collapses it to one image
            db.reused_images += 1
        else:
            index = rng.randrange(len(images))
        used.append(index)
        path = objects / f"photo-{photo_id}.png"
        kind = rng.choice(tuple(BAD_OBJECT_KINDS)) if rng.random() < bad_object_rate else None
        if not write_files:
            pass
        elif kind == "not_an_image":
            path.write_bytes(b"<html>502 Bad Gateway</html>\n")
        elif kind == "truncated":
            path.write_bytes(png_bytes(images[index])[:48])
        elif kind is None:
            path.write_bytes(png_bytes(images[index]))
        if kind:
            db.bad_objects[kind] += 1
        db.objects_written += kind != "missing"
        uri = "file:" + path.as_posix()
        db.photos.append((photo_id, user_id, uri, rng.choice(CAPTIONS), uploaded_at))
        rows.append((os.path.relpath(path, manifests), FASHION_MNIST_LABELS[labels[index]], photo_id, index))
    db.manifest = manifests / "photos.csv"
    if not write_files:
        return db
    with open(db.manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("uri", "label", "photo_id", "fashion_mnist_index"))
        writer.writerows(rows)
    return db
