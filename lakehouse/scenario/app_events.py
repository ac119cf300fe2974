"""Application event logs (logins, views, likes, uploads) as JSON-line files, like an app writes them.

The files are what a log shipper leaves in a landing folder: one file per six hours, older days
rotated and gzip-compressed. A small share of lines is malformed on purpose and a small share of
events is delivered twice (at-least-once logging), so the pipeline's quarantine and deduplication
have real work to do. Same seed, same files, byte for byte.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from pathlib import Path

EVENT_TYPES = ("login", "view", "like", "upload")
BASE_USERS = 200
BASE_EVENTS_PER_DAY = 2_500
FILES_PER_DAY = 4
START = datetime(2026, 11, 1, tzinfo=timezone.utc)

# Kinds of broken line the generator writes, and the reason the silver parser must give for each.
BAD_LINE_KINDS = {
    "truncated_json": "invalid_json",
    "empty_line": "invalid_json",
    "missing_user_id": "missing_field:user_id",
    "non_numeric_user_id": "bad_type:user_id",
    "bad_timestamp": "bad_timestamp",
    "unknown_event_type": "unknown_event_type",
}


@dataclass
class GeneratedLogs:
    """What was written: the files and how many lines of each kind, for reconciliation."""

    files: list[Path] = field(default_factory=list)
    lines: int = 0
    valid_events: int = 0
    duplicate_lines: int = 0
    bad_lines: dict[str, int] = field(default_factory=dict)
    uploads: list[tuple[int, int, datetime]] = field(default_factory=list)  # (photo_id, user_id, time)

    @property
    def total_bad_lines(self) -> int:
        return sum(self.bad_lines.values())


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _EventFactory:
    """Draws plausible events: a few heavy users, most light; likes follow views."""

    def __init__(self, rng: random.Random, n_users: int, first_event_number: int, scale: float = 1.0):
        self.rng = rng
        self.n_users = n_users
        self.weights = [rng.paretovariate(1.3) for _ in range(n_users)]
        # Summed once: choices(weights=...) sums them on every call, which made the 100x scenario quadratic
        # (minutes per log file). The draws are the same.
        self.cumulative_weights = list(accumulate(self.weights))
        self.user_ids = range(1, n_users + 1)
        self.next_event = first_event_number
        self.next_photo = 1 + first_event_number // 10
        self.photos: list[int] = list(range(1, self.next_photo))
        self.author_weight: dict[int, float] = {}
        self.recent_pool = max(50, int(200 * scale))  # about a day and a half of uploads at any scale

    def photo_to_act_on(self) -> int:
        """A recent photo; popular authors' photos win more often (best of three by author weight), so
        likes depend on who posted, which the training table's author features can learn."""
        recent = self.photos[-self.recent_pool :]
        candidates = [self.rng.choice(recent) for _ in range(3)]
        return max(candidates, key=lambda photo: self.author_weight.get(photo, 1.0) * self.rng.random())

    def event(self, moment: datetime) -> dict:
        rng = self.rng
        user_id = rng.choices(self.user_ids, cum_weights=self.cumulative_weights)[0]
        kind = rng.choices(EVENT_TYPES, weights=(0.15, 0.6, 0.2, 0.05))[0]
        if kind in ("view", "like") and not self.photos:
            kind = "upload"
        photo_id = None
        if kind == "upload":
            photo_id = self.next_photo
            self.next_photo += 1
            self.photos.append(photo_id)
            self.author_weight[photo_id] = self.weights[user_id - 1]
        elif kind in ("view", "like"):
            photo_id = self.photo_to_act_on()
        self.next_event += 1
        return {
            "event_id": f"evt-{self.next_event:09d}",
            "user_id": user_id,
            "event_type": kind,
            "photo_id": photo_id,
            "ts": _timestamp(moment),
            "client": {"platform": rng.choice(("ios", "android", "web")), "app_version": "3.2.1"},
        }


def _bad_line(kind: str, event: dict) -> str:
    if kind == "truncated_json":
        return json.dumps(event)[:25]
    if kind == "empty_line":
        return ""
    broken = dict(event)
    if kind == "missing_user_id":
        del broken["user_id"]
    elif kind == "non_numeric_user_id":
        broken["user_id"] = f"user-{event['user_id']}"
    elif kind == "bad_timestamp":
        broken["ts"] = "yesterday at noon"
    elif kind == "unknown_event_type":
        broken["event_type"] = "teleport"
    return json.dumps(broken)


def write_app_event_logs(
    out_dir: str | Path | None,
    seed: int = 42,
    scale: float = 1.0,
    days: int = 7,
    first_day: int = 0,
    bad_line_rate: float = 0.01,
    duplicate_rate: float = 0.02,
    compress_before_day: int | None = None,
) -> GeneratedLogs:
    """Write ``days`` days of event logs starting ``first_day`` days after 2026-11-01.

    Files land as ``<out_dir>/app-events-YYYY-MM-DD-HH.jsonl``; days before ``compress_before_day``
    (default: all but the last day) are written gzip-compressed as ``.jsonl.gz``, as log rotation does.
    Calling it again with a later ``first_day`` adds new files and leaves the old ones alone. With
    ``out_dir=None`` nothing is written: the result still says what would be (and which photos were
    uploaded, for the application database).
    """
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{seed}:{first_day}")
    n_users = max(10, int(BASE_USERS * scale))
    events_per_file = max(1, int(BASE_EVENTS_PER_DAY * scale) // FILES_PER_DAY)
    factory = _EventFactory(rng, n_users, first_event_number=first_day * 10_000_000, scale=scale)
    compress_before = first_day + days - 1 if compress_before_day is None else compress_before_day
    result = GeneratedLogs(bad_lines={kind: 0 for kind in BAD_LINE_KINDS})
    recent: list[str] = []

    for day in range(first_day, first_day + days):
        for part in range(FILES_PER_DAY):
            file_start = START + timedelta(days=day, hours=part * 24 // FILES_PER_DAY)
            lines = []
            for i in range(events_per_file):
                moment = file_start + timedelta(seconds=i * (86_400 / FILES_PER_DAY) / events_per_file)
                event = factory.event(moment)
                if event["event_type"] == "upload":  # the app stored the photo whatever became of the log line
                    result.uploads.append((event["photo_id"], event["user_id"], moment))
                if rng.random() < bad_line_rate:
                    kind = rng.choice(tuple(BAD_LINE_KINDS))
                    lines.append(_bad_line(kind, event))
                    result.bad_lines[kind] += 1
                    continue
                line = json.dumps(event)
                lines.append(line)
                result.valid_events += 1
                recent.append(line)
                if len(recent) > 200:
                    recent.pop(0)
                if rng.random() < duplicate_rate:
                    # the shipper re-sends a recent line (possibly one already in an earlier file)
                    lines.append(rng.choice(recent))
                    result.duplicate_lines += 1
            stamp = file_start.strftime("%Y-%m-%d-%H")
            body = ("\n".join(lines) + "\n").encode()
            result.lines += len(lines)
            if out is None:
                continue
            if day < compress_before:
                path = out / f"app-events-{stamp}.jsonl.gz"
                path.write_bytes(gzip.compress(body, mtime=0))
            else:
                path = out / f"app-events-{stamp}.jsonl"
                path.write_bytes(body)
            result.files.append(path)
    return result
