"""What a table is (:class:`TableDeclaration`), and the declarations every project has or derives.

A declaration names the table and its layer, its schema, its expectations, its upstream tables, the step
that writes it, its keys, partitioning and Delta properties. Declarations come from three places, and
nothing restates them:

- the platform's own tables (``quality.results``, ``ops.runs``, ``ops.tags``), defined here;
- the project's sources (``sources/*.yaml``): each source's bronze tables, and what the platform builds
  from them (a database table's silver current state and history, an image source's validated images);
- the project's definitions (``tables/<layer>/<name>.sql|.py``).

:mod:`lakehouse.project` puts them together; the writer, the gates, the catalog and the orchestration
read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pyspark.sql import types as T

from lakehouse.project.layout import BUILTIN_EXPECTATIONS, BUILTIN_SCHEMAS
from lakehouse.project.schemas import load_schema
from lakehouse.project.sources import PrivateColumn, SourceTable

LAYERS = ("bronze", "silver", "gold", "quality", "ops")
QUARANTINE_SCHEMA = BUILTIN_SCHEMAS / "quarantine.yaml"
SNAPSHOT_STAMPS = BUILTIN_SCHEMAS / "bronze" / "snapshot_stamps.yaml"
CURRENT_STATE_STAMPS = BUILTIN_SCHEMAS / "silver" / "current_state_stamps.yaml"
HISTORY_STAMPS = BUILTIN_SCHEMAS / "silver" / "history_stamps.yaml"
SNAPSHOT_SUITE = BUILTIN_EXPECTATIONS / "bronze" / "snapshot.yaml"
CURRENT_STATE_SUITE = BUILTIN_EXPECTATIONS / "silver" / "snapshot_current.yaml"


@dataclass(frozen=True)
class TableDeclaration:
    """What a table is: identity, shape, checks, inputs and storage options."""

    name: str
    description: str
    step: str | None  # the step that writes it; None for tables the platform itself keeps
    schema_file: Path | None = None  # its columns (YAML); None: the columns its definition produces
    upstreams: tuple[str, ...] = ()
    expectations_file: Path | None = None
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict, hash=False)
    has_quarantine: bool = False
    stamp_schema_file: Path | None = None  # columns appended after the schema's (e.g. snapshot stamps)
    pseudonymised_from: tuple[PrivateColumn, ...] = ()  # schema-file columns replaced by pseudonyms or dropped
    private_columns: tuple[
        PrivateColumn, ...
    ] = ()  # raw personal columns: pseudonymised whenever a definition reads them
    format_schema: T.StructType | None = field(
        default=None, compare=False, hash=False
    )  # columns given by a file format
    defined_in: Path | None = None  # the file that declares it (a source, a definition)

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def schema(self) -> T.StructType | None:
        """The declared columns; ``None`` for a table whose columns are what its definition produces."""
        if self.format_schema is not None:
            schema = self.format_schema
        elif self.schema_file is not None:
            schema = load_schema(self.schema_file)
        else:
            return None
        schema = _pseudonymised(schema, self.pseudonymised_from)
        if self.stamp_schema_file:
            schema = T.StructType([*schema.fields, *load_schema(self.stamp_schema_file).fields])
        return schema

    @property
    def source_schema(self) -> T.StructType:
        """The columns of the schema file alone, without appended stamp columns."""
        return self.format_schema if self.format_schema is not None else load_schema(self.schema_file)

    @property
    def schema_origin(self) -> str:
        """Where the columns are declared, for messages."""
        if self.format_schema is not None:
            return f"the file format of {self.defined_in}"
        return str(self.schema_file) if self.schema_file else f"the output of {self.defined_in}"

    @property
    def expectations_path(self) -> Path | None:
        return self.expectations_file

    @property
    def quarantine(self) -> "TableDeclaration":
        """The declaration of this table's quarantine table (``<name>_quarantine``)."""
        if not self.has_quarantine:
            raise ValueError(f"{self.name} declares no quarantine table")
        return TableDeclaration(
            name=f"{self.name}_quarantine",
            description=f"Rows kept out of {self.name}, each with the reason.",
            step=self.step,
            schema_file=QUARANTINE_SCHEMA,
            upstreams=self.upstreams,
            defined_in=self.defined_in,
        )


def _pseudonymised(schema: T.StructType, private: tuple[PrivateColumn, ...]) -> T.StructType:
    """``schema`` with each private column renamed to its pseudonym (same type) or dropped."""
    by_name = {column.name: column for column in private}
    fields = []
    for f in schema.fields:
        column = by_name.get(f.name)
        if column is None:
            fields.append(f)
        elif column.silver_name is not None:
            comment = f"keyed hash (pseudonym, purpose '{column.purpose}') of the source's {f.name}"
            if column.action == "mask":
                comment = f"the source's {f.name} with e-mail and IP addresses masked"
            fields.append(T.StructField(column.silver_name, f.dataType, f.nullable, {"comment": comment}))
    return T.StructType(fields)


# quality.results and ops.runs take one small append per validation and per step: a Delta checkpoint (by
# default every 10 commits) costs about 4 s on 2 cores, three times the append itself.
FREQUENTLY_APPENDED = {"delta.checkpointInterval": "100"}

PLATFORM_TABLES: tuple[TableDeclaration, ...] = (
    TableDeclaration(
        name="quality.results",
        description="Every quality rule's outcome for every validation run (appended by the quality gate).",
        step=None,
        schema_file=BUILTIN_SCHEMAS / "quality" / "results.yaml",
        properties=FREQUENTLY_APPENDED,
    ),
    TableDeclaration(
        name="ops.tags",
        description="Named versions of tables: a tag points at one version of one table.",
        step=None,
        schema_file=BUILTIN_SCHEMAS / "ops" / "tags.yaml",
        keys=("table_name", "tag"),
    ),
    TableDeclaration(
        name="ops.set_aside",
        description="Files moved out of a file source's folder because their batch could not land "
        "(`lakehouse source set-aside`): where each was, where it is, why.",
        step=None,
        schema_file=BUILTIN_SCHEMAS / "ops" / "set_aside.yaml",
    ),
    TableDeclaration(
        name="ops.runs",
        description="Every step of every `lakehouse run`: status, the input and output versions, code and "
        "configuration fingerprints, rows and error; a step whose fingerprint matches its last success is skipped.",
        step=None,
        schema_file=BUILTIN_SCHEMAS / "ops" / "runs.yaml",
        properties=FREQUENTLY_APPENDED,
    ),
)
RESULTS_TABLE, TAGS_TABLE, SET_ASIDE_TABLE, RUNS_TABLE = PLATFORM_TABLES


def platform_table(name: str) -> TableDeclaration:
    """One of :data:`PLATFORM_TABLES` by name."""
    for declaration in PLATFORM_TABLES:
        if declaration.name == name:
            return declaration
    raise KeyError(f"no platform table {name!r}")


def snapshot_declaration(
    table: SourceTable, step: str, defined_in: Path, expectations: Path | None
) -> TableDeclaration:
    """``bronze.<source>_<table>``: every snapshot of a source table, stamped."""
    return TableDeclaration(
        name=table.bronze_name,
        description=f"Snapshots of {table.database}.{table.name} as they were read (JDBC, pg_dump or CSV), "
        "each stamped with its snapshot id, time and source.",
        step=step,
        schema_file=table.columns_file,
        stamp_schema_file=SNAPSHOT_STAMPS,
        expectations_file=expectations or SNAPSHOT_SUITE,
        keys=table.keys,
        has_quarantine=True,
        private_columns=table.private,
        defined_in=defined_in,
    )


def current_state_declaration(
    table: SourceTable, step: str, defined_in: Path, expectations: Path | None
) -> TableDeclaration:
    """``silver.<table>``: one row per key as of the latest snapshot (type 1), private columns pseudonymised."""
    return TableDeclaration(
        name=table.silver_name,
        description=f"Current state of {table.database}.{table.name}: one row per key as of the latest snapshot "
        "(updated and deleted by MERGE), personal columns replaced by keyed hashes.",
        step=step,
        schema_file=table.columns_file,
        stamp_schema_file=CURRENT_STATE_STAMPS,
        pseudonymised_from=table.private,
        expectations_file=expectations or CURRENT_STATE_SUITE,
        upstreams=(table.bronze_name,),
        keys=table.silver_keys,
        has_quarantine=True,
        defined_in=defined_in,
    )


def history_declaration(table: SourceTable, step: str, defined_in: Path, expectations: Path | None) -> TableDeclaration:
    """``silver.<table>_history``: every version of every key with its validity interval (type 2)."""
    return TableDeclaration(
        name=table.history_name,
        description=f"History of {table.database}.{table.name}: each version of each key valid from one snapshot "
        "to the next that changed or deleted it (valid_to null while current), personal columns pseudonymised.",
        step=step,
        schema_file=table.columns_file,
        stamp_schema_file=HISTORY_STAMPS,
        pseudonymised_from=table.private,
        expectations_file=expectations,
        upstreams=(table.bronze_name,),
        keys=(*table.silver_keys, "valid_from"),
        defined_in=defined_in,
    )
