"""Image manifests -> reference rows: a CSV (header row) or JSON-lines file listing object URIs, a label
and any other metadata, one object per line.

Each non-blank line becomes exactly one row (a CSV field may not span lines): parsed, or kept raw with
``parse_error`` (rescued). Relative URIs are resolved against the manifest's own folder, so a folder of
objects and its manifest
can move together (local disk, ``s3a://``, any Hadoop filesystem).
"""

from __future__ import annotations

import csv
import json
import posixpath
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

URI_FIELD = "uri"
LABEL_FIELD = "label"
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".json")


@dataclass(frozen=True)
class ManifestLine:
    """One manifest line, parsed or rescued."""

    line_number: int
    value: str | None
    uri: str | None = None
    object_uri: str | None = None
    label: str | None = None
    metadata: str | None = None
    parse_error: str | None = None


LINE_SCHEMA = T.ArrayType(
    T.StructType(
        [
            T.StructField("line_number", T.LongType(), False),
            T.StructField("value", T.StringType()),
            T.StructField("uri", T.StringType()),
            T.StructField("object_uri", T.StringType()),
            T.StructField("label", T.StringType()),
            T.StructField("metadata", T.StringType()),
            T.StructField("parse_error", T.StringType()),
        ]
    )
)


def normalise_uri(uri: str) -> str:
    """``file:///a``, ``file:/a`` and ``/a`` -> ``file:/a`` (how Spark's file sources name local files), with
    ``.`` and ``..`` resolved in local paths (``file:/landing/../etc`` is ``file:/etc``)."""
    if uri.startswith("file://"):
        uri = "file:" + uri[len("file://") :]
    elif uri.startswith("/"):
        uri = "file:" + uri
    if uri.startswith("file:/"):
        return "file:" + posixpath.normpath(uri[len("file:") :]).replace("//", "/")
    return uri


def resolve_uri(uri: str, manifest_uri: str) -> str:
    """``uri`` as an absolute URI: kept when it has a scheme or is absolute, else joined to the
    manifest's folder."""
    if "://" in uri or uri.startswith(("file:", "/")):
        return normalise_uri(uri)
    folder = posixpath.dirname(normalise_uri(manifest_uri))
    scheme, sep, path = folder.partition(":")
    if sep and not path.startswith("//"):
        return f"{scheme}:{posixpath.normpath(posixpath.join(path, uri))}"
    if sep:  # scheme://authority/path (s3a://bucket/...): '..' is resolved in the path, never across the authority
        authority, _, folder_path = path[2:].partition("/")
        return f"{scheme}://{authority}{posixpath.normpath(posixpath.join('/' + folder_path, uri))}"
    return posixpath.join(folder, uri)


def _reference(line_number: int, value: str, fields: dict, manifest_uri: str) -> ManifestLine:
    uri = fields.get(URI_FIELD)
    if not isinstance(uri, str) or not uri.strip():
        return ManifestLine(line_number, value, parse_error=f"missing_field:{URI_FIELD}")
    label = fields.get(LABEL_FIELD)
    others = {k: v for k, v in fields.items() if k not in (URI_FIELD, LABEL_FIELD)}
    return ManifestLine(
        line_number,
        value,
        uri=uri,
        object_uri=resolve_uri(uri.strip(), manifest_uri),
        label=None if label is None else str(label),
        metadata=json.dumps(others, sort_keys=True) if others else None,
    )


def _parse_csv(text: str, manifest_uri: str) -> list[ManifestLine]:
    lines = text.splitlines()
    if not lines:
        return []
    header = next(csv.reader([lines[0]]))
    if URI_FIELD not in header:
        return [ManifestLine(1, lines[0], parse_error=f"csv_header_without_{URI_FIELD}_column")] + [
            ManifestLine(n, line, parse_error="no_usable_header")
            for n, line in enumerate(lines[1:], start=2)
            if line.strip()
        ]
    out = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            values = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            out.append(ManifestLine(number, line, parse_error=f"malformed_csv_row:{exc}"))
            continue
        if len(values) != len(header):
            out.append(ManifestLine(number, line, parse_error=f"wrong_field_count:{len(values)}"))
            continue
        out.append(_reference(number, line, dict(zip(header, values)), manifest_uri))
    return out


def _parse_json_lines(text: str, manifest_uri: str) -> list[ManifestLine]:
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except ValueError:
            out.append(ManifestLine(number, line, parse_error="invalid_json"))
            continue
        if not isinstance(fields, dict):
            out.append(ManifestLine(number, line, parse_error="not_a_json_object"))
            continue
        out.append(_reference(number, line, fields, manifest_uri))
    return out


def parse_manifest(content: bytes, manifest_uri: str) -> list[ManifestLine]:
    """Every non-blank line of a manifest, parsed or rescued. The format follows the file suffix
    (``.csv`` or ``.jsonl``/``.json``); a file that is not UTF-8 text gives one rescued row."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [ManifestLine(1, None, parse_error=f"not_utf8_text:{exc.reason}")]
    if manifest_uri.lower().endswith(".csv"):
        return _parse_csv(text, manifest_uri)
    return _parse_json_lines(text, manifest_uri)


@F.udf(returnType=LINE_SCHEMA)
def _manifest_lines(content, manifest_uri):
    return [
        (line.line_number, line.value, line.uri, line.object_uri, line.label, line.metadata, line.parse_error)
        for line in parse_manifest(bytes(content), manifest_uri)
    ]


def manifest_lines(content: Column, manifest_uri: Column) -> Column:
    """Spark column: the array of parsed lines of a manifest given its bytes and URI (explode it)."""
    return _manifest_lines(content, manifest_uri)
