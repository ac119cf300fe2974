"""Label Studio exports read back: JSON, JSON-MIN and CSV, choices and rectangles, several annotators.

Every format becomes the same :class:`Annotation` rows, one per label an annotator gave a task (a task with
two choices from one annotator is two rows; a rectangle is a row with its region). JSON carries each
result's control name; JSON-MIN and CSV flatten them into columns, so those need the control names
(``controls``, ``label`` by default: the config :func:`~lakehouse.labels.tasks.labeling_config` writes).
Pure Python: a source lands the rows, this only reads them.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

FORMATS = ("json", "json_min", "csv")
LABEL_TYPES = {"choices": "choices", "rectanglelabels": "rectanglelabels", "labels": "labels"}
REGION_KEYS = ("x", "y", "width", "height", "rotation")
_MIN_KEYS = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time"}


class ExportError(ValueError):
    """A file is not a Label Studio export of a known format; the message says what was expected."""


@dataclass(frozen=True)
class Annotation:
    """One label one annotator gave one task (``region``: a rectangle's x/y/width/height/rotation in
    percent of the image, JSON; ``None`` for a choice)."""

    task_id: int
    annotation_id: int
    annotator: str
    control: str
    label_type: str
    label: str
    region: str | None
    content_hash: str | None
    object_uri: str | None
    created_at: str | None
    updated_at: str | None


def detect_format(text: str) -> str:
    """``json`` (tasks with nested annotations), ``json_min`` (one flat object per annotation) or ``csv``."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith("["):
        return "csv"
    try:
        records = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ExportError(f"not valid JSON ({type(error).__name__}: {error})") from error
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ExportError("a JSON export is a list of objects")
    return "json" if any("annotations" in r for r in records) else "json_min"


def read_export(text: str, fmt: str | None = None, controls: Sequence[str] = ("label",)) -> list[Annotation]:
    """Every label in one export file's ``text`` (``fmt`` detected when ``None``); :class:`ExportError`
    saying why for anything else (a log file, truncated JSON, a CSV without the annotation columns)."""
    try:
        return _read(text, fmt, controls)
    except ExportError:
        raise
    except (
        json.JSONDecodeError,
        csv.Error,
        RecursionError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
    ) as error:
        raise ExportError(f"not a Label Studio {fmt or 'export'}: {type(error).__name__}: {error}") from error


def _read(text: str, fmt: str | None, controls: Sequence[str]) -> list[Annotation]:
    fmt = fmt or detect_format(text)
    if fmt == "json":
        return list(_from_json(json.loads(text)))
    if fmt == "json_min":
        return [a for record in json.loads(text) for a in _from_flat(record, controls, decode=False)]
    if fmt == "csv":
        if not text.strip("\ufeff \t\r\n"):
            raise ExportError("an empty file")
        rows = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        missing = sorted(_MIN_KEYS - {"lead_time"} - set(rows.fieldnames or ()))
        if missing:  # checked on the header, so a CSV of some other kind is refused even without rows
            raise ExportError(f"a CSV without the columns {missing}: not a Label Studio CSV export")
        return [a for row in rows for a in _from_flat(row, controls, decode=True)]
    raise ExportError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")


def _annotator(value: Any) -> str:
    if isinstance(value, dict):  # older exports: {"id": 1, "email": ...}
        value = value.get("id", value.get("email"))
    if value is None or value == "":
        raise ExportError("an annotation without its annotator (completed_by / annotator)")
    return str(value)


def _labels(control: str, value: Any) -> Iterator[tuple[str, str, str | None]]:
    """``(label_type, label, region)`` for each label in one result's ``value``."""
    for key, label_type in LABEL_TYPES.items():
        if key in value:
            region = {k: value[k] for k in REGION_KEYS if k in value} or None
            for label in value[key]:
                yield label_type, str(label), None if region is None else json.dumps(region, sort_keys=True)
            return
    raise ExportError(f"control {control!r}: a result value without choices or labels: {sorted(value)}")


def _task_fields(data: dict) -> tuple[str | None, str | None]:
    return data.get("content_hash"), data.get("object_uri") or data.get("image")


def _from_json(tasks: list[dict]) -> Iterator[Annotation]:
    for task in tasks:
        content_hash, object_uri = _task_fields(task.get("data") or {})
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            annotator = _annotator(annotation.get("completed_by"))
            for result in annotation.get("result") or []:
                control = result.get("from_name")
                for label_type, label, region in _labels(control, result.get("value") or {}):
                    yield Annotation(
                        int(task["id"]),
                        int(annotation["id"]),
                        annotator,
                        control,
                        label_type,
                        label,
                        region,
                        content_hash,
                        object_uri,
                        annotation.get("created_at"),
                        annotation.get("updated_at"),
                    )


def _flat_value(control: str, value: Any, decode: bool) -> Iterator[tuple[str, str, str | None]]:
    if decode and isinstance(value, str) and value[:1] in "[{":
        value = json.loads(value)
    if value is None or value == "":
        return
    if isinstance(value, str):  # a single choice
        yield "choices", value, None
    elif isinstance(value, dict):  # several choices: {"choices": [...]}
        yield from _labels(control, value)
    elif isinstance(value, list):  # regions: [{x, y, width, height, rectanglelabels: [...]}, ...]
        for region in value:
            yield from _labels(control, region)
    else:
        raise ExportError(f"control {control!r}: an unexpected value {value!r}")


def _from_flat(record: dict, controls: Sequence[str], decode: bool) -> Iterator[Annotation]:
    missing = sorted(_MIN_KEYS - {"lead_time"} - set(record))
    if missing:
        raise ExportError(f"a JSON-MIN/CSV record without {missing}: export with annotator and annotation ids")
    content_hash, object_uri = _task_fields(record)
    annotator = _annotator(record["annotator"])
    for control in controls:
        for label_type, label, region in _flat_value(control, record.get(control), decode):
            yield Annotation(
                int(record["id"]),
                int(record["annotation_id"]),
                annotator,
                control,
                label_type,
                label,
                region,
                content_hash or None,
                object_uri or None,
                record.get("created_at") or None,
                record.get("updated_at") or None,
            )
