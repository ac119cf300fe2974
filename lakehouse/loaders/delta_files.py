"""Which Parquet files, rows and columns make up one Delta table version, read without Spark (delta-rs).

A training process needs only this much of Delta to read a pinned version with pyarrow: the version's
live files, the rows each file's deletion vector removed, the physical name of each logical column
(column mapping) and the column types. :func:`resolve_snapshot` reads them from the Delta log through
``deltalake`` (delta-rs) in a fraction of a second, where a SparkSession costs a JVM and ~15 s.

Checked on deltalake 1.6.6 (``tests/test_arrow_loader.py`` compares every case with Spark's rows):

- ``file_uris()`` lists a file that has a deletion vector like any other: its deleted rows are still in
  the file. ``deletion_vectors()`` gives each such file's keep mask, which is applied here.
  (``to_pyarrow_dataset()`` refuses these tables outright.)
- Under column mapping the schema gives each field's physical name
  (``delta.columnMapping.physicalName``), which is the column's name in the files.
- Partition values live in the log, not the files: a partition column cannot be loaded and is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lakehouse.loaders.columns import UnsupportedColumnError, tensor_columns
from lakehouse.project.config import LakehouseConfig

# Reader features whose meaning this module applies (or which change nothing for a reader of the files).
READABLE_FEATURES = frozenset(
    {"deletionVectors", "columnMapping", "timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"}
)


class UnsupportedTableError(ValueError):
    """The table uses a Delta feature whose rows cannot be read from its Parquet files alone."""


@dataclass(frozen=True)
class Snapshot:
    """The Parquet files of one table version, the rows to keep in each and the columns to load from them.

    ``columns`` are logical names, ``physical`` their names in the files (the same unless the table uses
    column mapping). ``keep`` maps a file that has a deletion vector to its keep mask (``True``: the row
    is live; rows past the mask's end are live); files without one are absent.
    """

    table: str
    version: int
    files: tuple[str, ...]
    columns: tuple[str, ...]
    encoded: tuple[str, ...] = ()
    physical: tuple[str, ...] = ()
    keep: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False, hash=False)

    def physical_names(self) -> list[str]:
        """The names to read from the files, in ``columns``' order."""
        return list(self.physical or self.columns)

    @property
    def deleted_rows(self) -> int:
        """Rows the version's deletion vectors remove from its files."""
        return int(sum(int((~mask).sum()) for mask in self.keep.values()))


def local_path(uri: str) -> str:
    """A ``file:`` URI (or a plain path) as a local path."""
    return uri.removeprefix("file://").removeprefix("file:")


def file_uri(path: str) -> str:
    """A local path as a ``file://`` URI; a URI of any scheme as it is."""
    return path if "://" in path else Path(path).resolve().as_uri()


def _field_types(schema_json: str) -> tuple[dict[str, str], dict[str, str]]:
    """Each top-level field's Delta type name (``long``, ``binary``, ``struct``...) and physical name."""
    types, physical = {}, {}
    for item in json.loads(schema_json)["fields"]:
        kind = item["type"]
        types[item["name"]] = kind if isinstance(kind, str) else kind["type"]
        physical[item["name"]] = (item.get("metadata") or {}).get("delta.columnMapping.physicalName", item["name"])
    return types, physical


def open_delta_table(path: str, version: int | None = None):
    """delta-rs' table at ``path`` (at ``version``, default latest), with an error naming what is missing."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(path, version=version)
    except TableNotFoundError as error:
        raise FileNotFoundError(f"no Delta table at {path}: build it first ({error})") from error
    except Exception as error:  # delta-rs reports a version past the latest as a generic DeltaError
        if version is not None and "version" in str(error).lower():
            raise ValueError(f"{path} has no version {version}: {error}") from error
        raise


def latest_version(config: LakehouseConfig, table: str) -> int:
    """The newest version of ``table``, read from its Delta log (no Spark)."""
    return open_delta_table(config.table_path(config.table(table).name)).version()


def resolve_snapshot(
    config: LakehouseConfig,
    table: str,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    encoded: Sequence[str] = (),
) -> Snapshot:
    """The files, deletion masks and columns of ``table`` at ``version`` (default latest), without Spark.

    ``encoded`` names binary columns handed to the transform as bytes (see :func:`tensor_columns`).
    Raises :class:`UnsupportedTableError` for partition columns and reader features it cannot apply,
    :class:`~lakehouse.loaders.columns.UnsupportedColumnError` for columns that cannot become tensors.
    """
    delta = _open_readable(config, table, version)
    types, physical = _field_types(delta.schema().to_json())
    wanted = list(columns) if columns else list(types)
    wanted += [name for name in encoded if name not in wanted]
    _refuse_partition_columns(delta, table, wanted)
    tensor_columns(types, wanted, encoded)  # raises naming strings, dates, nested types
    files = tuple(sorted(file_uri(uri) for uri in delta.file_uris()))
    keep = _keep_masks(delta, set(files))
    return Snapshot(
        table, delta.version(), files, tuple(wanted), tuple(encoded), tuple(physical[name] for name in wanted), keep
    )


def _open_readable(config: LakehouseConfig, table: str, version: int | None):
    """delta-rs' table, refused when it needs a reader feature this module cannot apply."""
    delta = open_delta_table(config.table_path(config.table(table).name), version)
    unknown = sorted(set(delta.protocol().reader_features or ()) - READABLE_FEATURES)
    if unknown:
        raise UnsupportedTableError(
            f"{table} needs Delta reader features {unknown}, which the Arrow loader cannot apply"
        )
    return delta


def _refuse_partition_columns(delta, table: str, wanted: Sequence[str]) -> None:
    partitioned = sorted(set(wanted) & set(delta.metadata().partition_columns))
    if partitioned:
        raise UnsupportedTableError(
            f"{table}: partition columns {partitioned} are not stored in its files; "
            "leave them out of the columns to load"
        )


def read_version(config: LakehouseConfig, table: str, version: int | None = None, columns: Sequence[str] | None = None):
    """The live rows of ``table`` at ``version`` (default latest) as one Arrow table, without Spark:
    deletion vectors applied, columns under their logical names, any column type. For the small tables
    a Spark-free process needs whole (``ops.tags``, a column of a bronze table's source files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    delta = _open_readable(config, table, version)
    types, physical = _field_types(delta.schema().to_json())
    wanted = list(columns) if columns else list(types)
    _refuse_partition_columns(delta, table, wanted)
    files = sorted(file_uri(uri) for uri in delta.file_uris())
    keep = _keep_masks(delta, set(files))
    schema = pa.schema(delta.schema().to_arrow())  # delta-rs hands over an arro3 schema (Arrow C interface)
    parts = []
    for path in files:
        part = pq.read_table(local_path(path), columns=[physical[name] for name in wanted])
        mask = keep.get(path)
        if mask is not None:
            live = np.ones(part.num_rows, dtype=bool)
            live[: len(mask)] = mask[: part.num_rows]
            part = part.filter(pa.array(live))
        parts.append(part.rename_columns(wanted))
    if not parts:
        return pa.schema([pa.field(name, schema.field(name).type) for name in wanted]).empty_table()
    return pa.concat_tables(parts, promote_options="default")


def _keep_masks(delta, files: set[str]) -> dict[str, np.ndarray]:
    import pyarrow as pa

    protocol = delta.protocol()
    if "deletionVectors" not in (protocol.reader_features or ()):
        return {}
    masks = {}
    vectors = pa.table(delta.deletion_vectors().read_all())  # through the Arrow C stream interface
    selections = vectors.column(1).combine_chunks()
    flags = selections.flatten().to_numpy(zero_copy_only=False).astype(bool)
    offsets = selections.offsets.to_numpy()
    for i, uri in enumerate(vectors.column(0).to_pylist()):
        path = file_uri(uri)
        if path not in files:
            raise UnsupportedTableError(f"a deletion vector names {uri}, which is not a live file of the version")
        mask = flags[offsets[i] : offsets[i + 1]]
        mask.setflags(write=False)
        masks[path] = mask
    return masks


__all__ = [
    "READABLE_FEATURES",
    "Snapshot",
    "UnsupportedColumnError",
    "UnsupportedTableError",
    "file_uri",
    "latest_version",
    "local_path",
    "open_delta_table",
    "read_version",
    "resolve_snapshot",
]
