"""Source declarations: ``sources/<name>.yaml`` in a project, one source each.

A source is data, not code. Three kinds::

    kind: database                     # tables read over JDBC (or from a pg_dump / CSV export)
    url: jdbc:postgresql://${postgres.host}:${postgres.port}/appdb
    user: ${postgres.user}
    password_from: env:APPDB_PASSWORD  # or project-postgres (the project's own server), or nothing
    tables:
      users: {keys: [user_id], private: {email: {as: email_hash, purpose: email}}}

    kind: files                        # a folder of log files, parsed by a format
    path: ${landing}/nginx
    files: "access.log*"               # which files of the folder (a glob; default: all)
    format: access_log                 # text | jsonl | csv | access_log | syslog | regex

    kind: images                       # a folder (or bucket prefix) of images
    path: ${landing}/photos            # labelled by sub-folder (ImageFolder), or
    manifest: ${landing}/manifests     # by a manifest (CSV or JSON lines: uri, label, ...)

    kind: labels                       # a folder of Label Studio exports (JSON, JSON-MIN or CSV)
    path: ${landing}/label_exports
    controls: [label]                  # the labelling config's control names (JSON-MIN and CSV need them)

Values may name the environment: ``${landing}``, ``${warehouse}``, ``${project}``, ``${postgres.host}``,
``${postgres.port}``, ``${postgres.user}`` and ``${env:NAME}`` are filled in when a job runs
(:func:`expand`), so one declaration serves every environment. A database's column declarations are in
``schemas/bronze/<source>/<table>.yaml``. Nothing here reads data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from lakehouse.project.layout import SCHEMAS_DIR, SOURCES_DIR

SOURCE_KINDS = ("database", "files", "images", "labels")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
PRIVATE_ACTIONS = ("hash", "drop", "mask")
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
DEFAULT_IMAGE_MAX_BYTES = 50 * 1024 * 1024


class SourceError(ValueError):
    """A source declaration is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class PrivateColumn:
    """A personal column and what leaves bronze instead of it.

    ``hash``: a keyed hash named ``silver_name`` (``purpose`` separates kinds of value: the same user id in
    two columns gets the same pseudonym); ``drop``: nothing; ``mask``: the text with anything that looks like
    an e-mail or IP address masked (for free text such as log messages).
    """

    name: str
    silver_name: str | None  # None: dropped
    purpose: str | None = None
    action: str = "hash"


@dataclass(frozen=True)
class SourceTable:
    """One table of a database source."""

    database: str
    name: str
    keys: tuple[str, ...]
    columns_file: Path
    partition_column: str | None = None
    partitions: int = 4
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


@dataclass(frozen=True)
class DatabaseSource:
    """A database whose tables are snapshotted into ``bronze.<source>_<table>``."""

    name: str
    file: Path
    description: str
    url: str
    tables: tuple[SourceTable, ...]
    user: str | None = None
    password_from: str | None = None  # env:NAME | project-postgres | None
    driver: str | None = None
    schema: str | None = "public"
    csv_null_value: str = ""
    silver_prefix: str = ""
    kind: str = "database"

    def table(self, name: str) -> SourceTable:
        for table in self.tables:
            if table.name == name:
                return table
        known = ", ".join(t.name for t in self.tables)
        raise KeyError(f"source {self.name!r} ({self.file}) lists no table {name!r}; it lists: {known}")


@dataclass(frozen=True)
class FileSource:
    """A folder of files, each line landed in ``bronze.<table>`` parsed by ``format`` (or rescued)."""

    name: str
    file: Path
    description: str
    path: str
    format: str
    table: str
    files: str | None = None  # glob on file names
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    columns: tuple[tuple[str, str], ...] = ()
    private: tuple[PrivateColumn, ...] = ()
    max_line_bytes: int | None = None
    kind: str = "files"

    @property
    def bronze_name(self) -> str:
        return f"bronze.{self.table}"


@dataclass(frozen=True)
class ImageSource:
    """A folder or bucket prefix of images: references in ``bronze.<table>``, validated images in silver."""

    name: str
    file: Path
    description: str
    table: str
    silver: str
    references: str
    path: str | None = None  # objects, labelled by the sub-folder they sit in
    manifest: str | None = None  # or a folder of manifests naming them
    formats: tuple[str, ...] = IMAGE_FORMATS
    max_bytes: int = DEFAULT_IMAGE_MAX_BYTES
    allowed_roots: tuple[str, ...] = ()
    kind: str = "images"

    @property
    def bronze_name(self) -> str:
        return f"bronze.{self.table}"

    @property
    def silver_name(self) -> str:
        return f"silver.{self.silver}"

    @property
    def references_name(self) -> str:
        return f"silver.{self.references}"

    @property
    def label_from(self) -> str:
        """``manifest`` when a manifest folder is declared, else ``folder`` (the ImageFolder convention)."""
        return "manifest" if self.manifest else "folder"


@dataclass(frozen=True)
class LabelsSource:
    """A folder of Label Studio exports: every label in ``bronze.<table>``, their history in
    ``silver.<silver>`` and the annotators' agreement in ``silver.<silver>_agreement`` (per task) and
    ``silver.<silver>_label_agreement`` (per label)."""

    name: str
    file: Path
    description: str
    path: str
    table: str
    silver: str
    controls: tuple[str, ...] = ("label",)
    kind: str = "labels"

    @property
    def bronze_name(self) -> str:
        return f"bronze.{self.table}"

    @property
    def silver_name(self) -> str:
        return f"silver.{self.silver}"

    @property
    def agreement_name(self) -> str:
        return f"silver.{self.silver}_agreement"

    @property
    def label_agreement_name(self) -> str:
        return f"silver.{self.silver}_label_agreement"


Source = DatabaseSource | FileSource | ImageSource | LabelsSource


def load_sources(root: Path) -> dict[str, Source]:
    """Every ``sources/*.yaml`` of the project at ``root``, by source name (the file's stem)."""
    folder = Path(root) / SOURCES_DIR
    sources: dict[str, Source] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        sources[path.stem] = load_source(path, root)
    return sources


def load_source(path: Path, root: Path) -> Source:
    """Read one source declaration; :class:`SourceError` naming the file and the problem."""
    name = path.stem
    if not _NAME.match(name):
        raise SourceError(f"{path}: a source name is lower-case letters, digits and _ (rename the file)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SourceError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SourceError(f"{path}: expected a mapping (kind: {' | '.join(SOURCE_KINDS)}, ...)")
    kind = raw.get("kind")
    if kind not in SOURCE_KINDS:
        raise SourceError(f"{path}: 'kind' must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
    reader = {"database": _database, "files": _files, "images": _images, "labels": _labels}[kind]
    return reader(name, path, Path(root), raw)


def _check_keys(raw: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SourceError(f"{where}: unknown keys {unknown}; known: {sorted(allowed)}")


def _required(raw: Mapping, key: str, where: str) -> Any:
    if raw.get(key) in (None, ""):
        raise SourceError(f"{where}: '{key}' is required")
    return raw[key]


_DATABASE_KEYS = {
    "kind",
    "description",
    "url",
    "user",
    "password_from",
    "driver",
    "schema",
    "csv_null_value",
    "silver_prefix",
    "tables",
}
_TABLE_KEYS = {"keys", "partition_column", "partitions", "private"}


def _database(name: str, path: Path, root: Path, raw: Mapping) -> DatabaseSource:
    _check_keys(raw, _DATABASE_KEYS, str(path))
    password_from = raw.get("password_from")
    if password_from is not None and not (password_from == "project-postgres" or str(password_from).startswith("env:")):
        raise SourceError(
            f"{path}: password_from is env:VARIABLE or project-postgres (a password never lives in a file)"
        )
    tables_raw = raw.get("tables")
    if not isinstance(tables_raw, dict) or not tables_raw:
        raise SourceError(f"{path}: 'tables' must map each table to its keys (lakehouse source add-database writes it)")
    prefix = str(raw.get("silver_prefix") or "")
    tables = []
    for table_name, options in tables_raw.items():
        where = f"{path}: table {table_name}"
        options = options or {}
        _check_keys(options, _TABLE_KEYS, where)
        keys = options.get("keys")
        if not keys:
            raise SourceError(
                f"{where}: 'keys' (the primary key) is required: silver keeps current state and history by it"
            )
        tables.append(
            SourceTable(
                database=name,
                name=str(table_name),
                keys=tuple(str(k) for k in keys),
                columns_file=root / SCHEMAS_DIR / "bronze" / name / f"{table_name}.yaml",
                partition_column=options.get("partition_column"),
                partitions=int(options.get("partitions", 4)),
                private=private_columns(options.get("private") or {}, where),
                silver_prefix=prefix,
            )
        )
    return DatabaseSource(
        name=name,
        file=path,
        description=str(raw.get("description") or ""),
        url=str(_required(raw, "url", str(path))),
        tables=tuple(tables),
        user=raw.get("user"),
        password_from=password_from,
        driver=raw.get("driver"),
        schema=raw.get("schema", "public"),
        csv_null_value=str(raw.get("csv_null_value") or ""),
        silver_prefix=prefix,
    )


_FILES_KEYS = {
    "kind",
    "description",
    "path",
    "files",
    "format",
    "options",
    "columns",
    "private",
    "max_line_bytes",
    "table",
}


def _files(name: str, path: Path, root: Path, raw: Mapping) -> FileSource:
    _check_keys(raw, _FILES_KEYS, str(path))
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise SourceError(f"{path}: 'options' must be a mapping")
    table = str(raw.get("table") or name)
    if not _NAME.match(table):
        raise SourceError(f"{path}: table {table!r} must be lower-case letters, digits and _")
    return FileSource(
        name=name,
        file=path,
        description=str(raw.get("description") or ""),
        path=str(_required(raw, "path", str(path))),
        format=str(_required(raw, "format", str(path))),
        table=table,
        files=raw.get("files"),
        options=dict(options),
        columns=_columns(raw.get("columns"), str(path)),
        private=private_columns(raw.get("private") or {}, str(path)),
        max_line_bytes=int(raw["max_line_bytes"]) if raw.get("max_line_bytes") else None,
    )


_IMAGES_KEYS = {
    "kind",
    "description",
    "path",
    "manifest",
    "table",
    "silver",
    "references",
    "formats",
    "max_bytes",
    "allowed_roots",
}


def _images(name: str, path: Path, root: Path, raw: Mapping) -> ImageSource:
    _check_keys(raw, _IMAGES_KEYS, str(path))
    if not raw.get("path") and not raw.get("manifest"):
        raise SourceError(f"{path}: an images source needs 'path' (a folder of class sub-folders) or 'manifest'")
    formats = tuple(str(f).upper() for f in (raw.get("formats") or IMAGE_FORMATS))
    unknown = [f for f in formats if f not in IMAGE_FORMATS]
    if unknown:
        raise SourceError(f"{path}: formats {unknown} are not decoded; allowed: {', '.join(IMAGE_FORMATS)}")
    silver = str(raw.get("silver") or name)
    roots = raw.get("allowed_roots")
    if roots is None:  # by default a manifest may only name objects under the source's own folders
        roots = [p for p in (raw.get("path"), raw.get("manifest") and "${landing}") if p]
    return ImageSource(
        name=name,
        file=path,
        description=str(raw.get("description") or ""),
        table=str(raw.get("table") or name),
        silver=silver,
        references=str(raw.get("references") or f"{silver}_references"),
        path=raw.get("path"),
        manifest=raw.get("manifest"),
        formats=formats,
        max_bytes=int(raw.get("max_bytes") or DEFAULT_IMAGE_MAX_BYTES),
        allowed_roots=tuple(str(r) for r in roots),
    )


_LABELS_KEYS = {"kind", "description", "path", "controls", "table", "silver"}


def _labels(name: str, path: Path, root: Path, raw: Mapping) -> LabelsSource:
    _check_keys(raw, _LABELS_KEYS, str(path))
    controls = raw.get("controls") or ["label"]
    if isinstance(controls, str):
        controls = [controls]
    if not isinstance(controls, list) or not all(isinstance(c, str) and c for c in controls):
        raise SourceError(f"{path}: 'controls' lists the labelling config's control names, e.g. [label]")
    table, silver = str(raw.get("table") or name), str(raw.get("silver") or name)
    for value in (table, silver):
        if not _NAME.match(value):
            raise SourceError(f"{path}: table name {value!r} must be lower-case letters, digits and _")
    return LabelsSource(
        name=name,
        file=path,
        description=str(raw.get("description") or ""),
        path=str(_required(raw, "path", str(path))),
        table=table,
        silver=silver,
        controls=tuple(controls),
    )


def _columns(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    """``columns:`` as a list of ``{name, type}`` or a mapping ``name: type``."""
    if not raw:
        return ()
    if isinstance(raw, dict):
        return tuple((str(k), str(v)) for k, v in raw.items())
    if isinstance(raw, list) and all(isinstance(c, dict) and "name" in c and "type" in c for c in raw):
        return tuple((str(c["name"]), str(c["type"])) for c in raw)
    raise SourceError(f"{where}: 'columns' is a list of {{name, type}} or a mapping of name: type")


def private_columns(raw: Mapping, where: str) -> tuple[PrivateColumn, ...]:
    """``private:`` entries: ``column: drop``, ``column: mask`` or ``column: {as: new_name, purpose: kind}``."""
    if not isinstance(raw, dict):
        raise SourceError(f"{where}: 'private' maps each personal column to drop, mask or {{as: ..., purpose: ...}}")
    columns = []
    for name, spec in raw.items():
        if spec == "drop":
            columns.append(PrivateColumn(str(name), None, action="drop"))
        elif spec == "mask":
            columns.append(PrivateColumn(str(name), str(name), action="mask"))
        elif isinstance(spec, dict) and spec.get("as") and spec.get("purpose"):
            columns.append(PrivateColumn(str(name), str(spec["as"]), str(spec["purpose"])))
        else:
            raise SourceError(f"{where}: private column {name!r} must be drop, mask or {{as: ..., purpose: ...}}")
    return tuple(columns)


def expand(value: str | None, config, environ: Mapping[str, str] | None = None) -> str | None:
    """``value`` with its ``${...}`` placeholders filled in from the environment's configuration."""
    if value is None:
        return None
    environ = os.environ if environ is None else environ
    known = {
        "landing": config.landing,
        "warehouse": config.warehouse,
        "project": str(config.project_root),
        "postgres.host": config.postgres.host,
        "postgres.port": str(config.postgres.port),
        "postgres.user": config.postgres.user,
    }

    def fill(match: re.Match) -> str:
        name = match.group(1).strip()
        if name.startswith("env:"):
            variable = name[4:]
            if variable not in environ:
                raise SourceError(f"{value!r} needs the environment variable {variable}, which is not set")
            return environ[variable]
        if name not in known:
            raise SourceError(
                f"{value!r}: unknown placeholder ${{{name}}}; known: {', '.join(sorted(known))}, env:NAME"
            )
        return known[name]

    return _PLACEHOLDER.sub(fill, str(value))
