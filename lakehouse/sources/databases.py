"""The source databases of ``conf/databases.yaml``: which tables land in bronze, their keys, how to read them.

Nothing about a source table is written in code: adding a table to the YAML (and its column file
``schemas/bronze/<database>/<table>.yaml``) declares ``bronze.<database>_<table>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from lakehouse.paths import CONF_DIR

DATABASES_FILE = CONF_DIR / "databases.yaml"
SNAPSHOT_STAMP_SCHEMA = "bronze/_snapshot.yaml"
_TABLE_KEYS = {"keys", "jdbc_partition_column", "jdbc_partitions", "private"}


class SourceConfigError(ValueError):
    """``conf/databases.yaml`` is malformed; the message names the entry."""


@dataclass(frozen=True)
class PrivateColumn:
    """A personal column and what silver holds instead: a keyed hash named ``silver_name`` (``purpose``
    separates kinds of value: the same user id in two columns gets the same pseudonym), or nothing."""

    name: str
    silver_name: str | None  # None: the column is dropped before silver
    purpose: str | None = None


@dataclass(frozen=True)
class SourceTable:
    """One table of a source database."""

    database: str
    name: str
    keys: tuple[str, ...]
    jdbc_partition_column: str | None = None
    jdbc_partitions: int = 4
    private: tuple[PrivateColumn, ...] = ()
    silver_prefix: str = ""

    @property
    def bronze_name(self) -> str:
        return f"bronze.{self.database}_{self.name}"

    @property
    def silver_name(self) -> str:
        """Current state (one row per key, as of the latest snapshot): ``silver.<prefix><table>``."""
        return f"silver.{self.silver_prefix}{self.name}"

    @property
    def history_name(self) -> str:
        """Every version of every key with its validity interval: ``silver.<prefix><table>_history``."""
        return f"{self.silver_name}_history"

    @property
    def silver_keys(self) -> tuple[str, ...]:
        """The keys as silver names them (a private key column becomes its pseudonym)."""
        renamed = {column.name: column.silver_name for column in self.private}
        return tuple(renamed.get(key, key) for key in self.keys)

    @property
    def columns_file(self) -> str:
        """Schema file (under ``schemas/``) of the table's own columns."""
        return f"bronze/{self.database}/{self.name}.yaml"


@dataclass(frozen=True)
class SourceDatabase:
    """A database whose tables are snapshotted into bronze."""

    name: str
    description: str
    schema: str
    tables: tuple[SourceTable, ...]
    csv_null_value: str = ""
    silver_prefix: str = ""

    def table(self, name: str) -> SourceTable:
        for table in self.tables:
            if table.name == name:
                return table
        known = ", ".join(t.name for t in self.tables)
        raise KeyError(f"database {self.name!r} lists no table {name!r} in {DATABASES_FILE}; it lists: {known}")


@lru_cache(maxsize=None)
def source_databases(path: Path = DATABASES_FILE) -> dict[str, SourceDatabase]:
    """Every source database declared in ``path``, by name."""
    document = yaml.safe_load(Path(path).read_text()) or {}
    databases = {}
    for db_name, raw in (document.get("databases") or {}).items():
        if not isinstance(raw, dict) or not raw.get("tables"):
            raise SourceConfigError(f"{path}: database {db_name!r} needs a 'tables' mapping")
        tables = []
        for table_name, options in raw["tables"].items():
            options = options or {}
            unknown = set(options) - _TABLE_KEYS
            if unknown:
                raise SourceConfigError(f"{path}: {db_name}.{table_name}: unknown keys {sorted(unknown)}")
            if not options.get("keys"):
                raise SourceConfigError(f"{path}: {db_name}.{table_name}: 'keys' (the primary key) is required")
            tables.append(SourceTable(
                database=db_name,
                name=table_name,
                keys=tuple(options["keys"]),
                jdbc_partition_column=options.get("jdbc_partition_column"),
                jdbc_partitions=int(options.get("jdbc_partitions", 4)),
                private=_private_columns(options.get("private") or {}, f"{path}: {db_name}.{table_name}"),
                silver_prefix=str(raw.get("silver_prefix", "")),
            ))
        databases[db_name] = SourceDatabase(
            name=db_name,
            description=str(raw.get("description", "")),
            schema=str(raw.get("schema", "public")),
            tables=tuple(tables),
            csv_null_value=str(raw.get("csv_null_value", "")),
            silver_prefix=str(raw.get("silver_prefix", "")),
        )
    return databases


def _private_columns(raw: dict, where: str) -> tuple[PrivateColumn, ...]:
    """``private:`` entries: ``column: drop`` or ``column: {as: silver_name, purpose: kind}``."""
    columns = []
    for name, spec in raw.items():
        if spec == "drop":
            columns.append(PrivateColumn(name, None))
        elif isinstance(spec, dict) and spec.get("as") and spec.get("purpose"):
            columns.append(PrivateColumn(name, str(spec["as"]), str(spec["purpose"])))
        else:
            raise SourceConfigError(f"{where}: private column {name!r} must be 'drop' or {{as: ..., purpose: ...}}")
    return tuple(columns)


def get_database(name: str) -> SourceDatabase:
    """The source database ``name``; ``KeyError`` listing the declared ones otherwise."""
    databases = source_databases()
    if name not in databases:
        raise KeyError(f"no source database {name!r} in {DATABASES_FILE}; declared: {', '.join(databases)}")
    return databases[name]
