"""Read a table's schema from its YAML file (``schemas/`` of a project, or the package's own) into a ``StructType``.

A schema file lists columns in order::

    columns:
      - {name: event_id, type: string, nullable: false, comment: "id the app gave the event"}

Types are Spark SQL type names: string, bigint/long, int, smallint, double, float, boolean, date,
timestamp, binary, decimal(p,s) and array<...> of those.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml
from pyspark.sql import types as T

_ATOMIC_TYPES = {
    "string": T.StringType(),
    "bigint": T.LongType(),
    "long": T.LongType(),
    "int": T.IntegerType(),
    "integer": T.IntegerType(),
    "smallint": T.ShortType(),
    "tinyint": T.ByteType(),
    "double": T.DoubleType(),
    "float": T.FloatType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "binary": T.BinaryType(),
}
_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")
_ARRAY = re.compile(r"array<(.+)>")


class SchemaFileError(ValueError):
    """A schema file is missing or names something this loader does not know."""


def parse_type(type_name: str) -> T.DataType:
    """Turn a Spark SQL type name into a ``DataType``; raise ``SchemaFileError`` when unknown."""
    name = type_name.strip().lower()
    if name in _ATOMIC_TYPES:
        return _ATOMIC_TYPES[name]
    if match := _DECIMAL.fullmatch(name):
        return T.DecimalType(int(match.group(1)), int(match.group(2)))
    if match := _ARRAY.fullmatch(name):
        return T.ArrayType(parse_type(match.group(1)))
    raise SchemaFileError(f"unknown column type {type_name!r}")


def load_schema(path: str | Path) -> T.StructType:
    """Load the schema file at ``path`` as a ``StructType`` (column comments kept as metadata)."""
    return _load_schema(str(Path(path).resolve()))


@lru_cache(maxsize=None)
def _load_schema(location: str) -> T.StructType:
    path = Path(location)
    if not path.is_file():
        raise SchemaFileError(f"schema file not found: {path}")
    document = yaml.safe_load(path.read_text()) or {}
    columns = document.get("columns")
    if not columns:
        raise SchemaFileError(f"{path}: no 'columns' list")
    fields, seen = [], set()
    for position, column in enumerate(columns, start=1):
        try:
            name = column["name"]
            data_type = parse_type(column["type"])
        except (KeyError, TypeError) as exc:
            raise SchemaFileError(f"{path}: column {position} needs 'name' and 'type'") from exc
        except SchemaFileError as exc:
            raise SchemaFileError(f"{path}: column {name!r}: {exc}") from exc
        if name in seen:
            raise SchemaFileError(f"{path}: column {name!r} is listed twice")
        seen.add(name)
        metadata = {"comment": column["comment"]} if column.get("comment") else {}
        fields.append(T.StructField(name, data_type, bool(column.get("nullable", True)), metadata))
    return T.StructType(fields)
