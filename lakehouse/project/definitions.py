"""Table definitions: ``tables/<layer>/<name>.sql`` or ``.py`` in a project, one table each.

A SQL definition is a SELECT over other tables by name. Its settings are its leading ``--`` comment lines,
in YAML::

    -- description: Per UTC day, distinct active users and events.
    -- keys: [event_date]
    SELECT event_date, count(DISTINCT user_key) AS active_users, count(*) AS n_events
    FROM silver.events GROUP BY event_date

A Python definition is one function decorated with :func:`lakehouse.table`; its parameters name its inputs
(a parameter ``events`` is the table whose short name is ``events``; ``inputs={"param": "layer.name"}``
disambiguates), and a parameter named ``ctx`` receives the step's context::

    from lakehouse import table

    @table(keys=["photo_id"])
    def photo_popularity(ctx, photos, events):
        return ...

Either way the inputs are read off the definition, never listed a second time: the SQL's table names,
the function's parameters. The schema (``schemas/<layer>/<name>.yaml``) and expectations
(``expectations/<layer>/<name>.yaml``) are found by name when they exist; a table without a schema file
has the columns its definition produces. Nothing here reads data (Python definitions are imported).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from lakehouse.project.layout import DEFINITION_LAYERS, TABLES_DIR

MODES = ("overwrite", "insert_new", "incremental")
CONTEXT_PARAMETER = "ctx"


class DefinitionError(ValueError):
    """A table definition is malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class TableSettings:
    """What a definition says about its table besides how to compute it.

    ``mode``: ``overwrite`` (the definition returns the whole table; published with write-audit-publish),
    ``insert_new`` (it returns new rows, merged in on the keys), ``incremental`` (like ``insert_new``, and
    its first input arrives as only the rows added since the last run). Rows a Python definition returns
    with a non-null ``_reject_reason`` go to the quarantine table (``_record``, when present, is what the
    quarantine keeps of them). ``options`` are the step's own options with their defaults
    (``lakehouse step NAME --option key=value``).
    """

    description: str = ""
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=dict, hash=False)
    quarantine: bool = False
    mode: str = "overwrite"
    schema: str | None = None
    expectations: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict, hash=False)
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)


SETTING_NAMES = tuple(f.name for f in fields(TableSettings))


def make_settings(raw: Mapping[str, Any], where: str) -> TableSettings:
    """Check and convert settings given as YAML or decorator arguments."""
    unknown = sorted(set(raw) - set(SETTING_NAMES))
    if unknown:
        raise DefinitionError(f"{where}: unknown settings {unknown}; known: {', '.join(SETTING_NAMES)}")
    mode = str(raw.get("mode") or "overwrite")
    if mode not in MODES:
        raise DefinitionError(f"{where}: mode must be one of {', '.join(MODES)}, not {mode!r}")

    def names(key: str) -> tuple[str, ...]:
        value = raw.get(key) or ()
        if isinstance(value, str):
            value = (value,)
        return tuple(str(v) for v in value)

    keys = names("keys")
    if mode != "overwrite" and not keys:
        raise DefinitionError(f"{where}: mode {mode} merges new rows on the keys: declare keys")
    return TableSettings(
        description=str(raw.get("description") or ""),
        keys=keys,
        partition_by=names("partition_by"),
        properties={str(k): str(v) for k, v in (raw.get("properties") or {}).items()},
        quarantine=bool(raw.get("quarantine", False)),
        mode=mode,
        schema=raw.get("schema"),
        expectations=raw.get("expectations"),
        inputs={str(k): str(v) for k, v in (raw.get("inputs") or {}).items()},
        options=dict(raw.get("options") or {}),
    )


@dataclass(frozen=True)
class TableDefinition:
    """One definition file: its table, settings, and the names it reads (not yet resolved to tables)."""

    name: str  # layer.table
    file: Path
    language: str  # sql | python
    settings: TableSettings
    references: tuple[str, ...]  # SQL: table names as written; Python: the input parameters, in order
    sql: str | None = None
    function: Callable | None = field(default=None, compare=False, hash=False)

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]


def load_definitions(root: Path) -> dict[str, TableDefinition]:
    """Every ``tables/<layer>/<name>.sql|.py`` of the project at ``root``, by table name."""
    definitions: dict[str, TableDefinition] = {}
    tables_dir = Path(root) / TABLES_DIR
    if not tables_dir.is_dir():
        return definitions
    for path in sorted(tables_dir.rglob("*")):
        if path.is_dir() or path.name.startswith(("_", ".")) or path.suffix not in (".sql", ".py"):
            continue
        relative = path.relative_to(tables_dir)
        if len(relative.parts) != 2 or relative.parts[0] not in DEFINITION_LAYERS:
            raise DefinitionError(
                f"{path}: definitions live in tables/<layer>/<name>.sql|.py "
                f"with layer one of {', '.join(DEFINITION_LAYERS)}"
            )
        name = f"{relative.parts[0]}.{path.stem}"
        if name in definitions:
            raise DefinitionError(f"{path}: {name} is defined twice ({definitions[name].file} too)")
        definitions[name] = load_sql(path, name) if path.suffix == ".sql" else load_python(path, name, root)
    return definitions


# ---------------------------------------------------------------- SQL


def split_header(text: str) -> tuple[str, str]:
    """``(settings YAML, query)``: the leading ``--`` lines without their marker, and the rest."""
    lines = text.splitlines()
    header = []
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        content = stripped[2:]
        header.append(content[1:] if content.startswith(" ") else content)
    return "\n".join(header), "\n".join(lines[len(header) :]).strip()


def load_sql(path: Path, name: str) -> TableDefinition:
    """Read a SQL definition: its settings header and the tables its query reads."""
    header, query = split_header(path.read_text())
    try:
        raw = yaml.safe_load(header) if header.strip() else {}
    except yaml.YAMLError as exc:
        raise DefinitionError(
            f"{path}: the leading '--' lines are the table's settings, in YAML ({exc}); put other comments after them"
        ) from exc
    if not isinstance(raw, dict):
        raise DefinitionError(f"{path}: the leading '--' lines must be YAML settings such as '-- keys: [id]'")
    settings = make_settings(raw, str(path))
    if settings.mode != "overwrite":
        raise DefinitionError(f"{path}: a SQL definition computes the whole table (mode overwrite)")
    if not query:
        raise DefinitionError(f"{path}: no query after the settings")
    return TableDefinition(name, path, "sql", settings, tuple(referenced_tables(query, path)), sql=query)


def _parse_sql(query: str, path: Path):
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        statements = sqlglot.parse(query, read="spark")
    except ParseError as exc:
        raise DefinitionError(f"{path}: not valid Spark SQL: {exc}") from exc
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise DefinitionError(f"{path}: one SELECT statement per definition, found {len(statements)}")
    return statements[0]


def _table_references(tree):
    """The ``Table`` nodes of a parsed query that name real tables (not CTEs defined in it)."""
    from sqlglot import exp

    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not table.name or isinstance(table.this, exp.Func):
            continue  # a table-valued function such as range(10)
        if not table.db and table.name.lower() in ctes:
            continue
        yield table


def referenced_tables(query: str, path: Path) -> list[str]:
    """The ``layer.table`` names a query reads, in order of first mention."""
    from sqlglot import exp

    tree = _parse_sql(query, path)
    if not isinstance(tree, (exp.Query,)):
        raise DefinitionError(f"{path}: a definition is a SELECT (or WITH ... SELECT), not {tree.key.upper()}")
    names: list[str] = []
    for table in sorted(_table_references(tree), key=lambda t: t.this.meta.get("start", 0)):
        if not table.db:
            raise DefinitionError(
                f"{path}: name tables with their layer, e.g. silver.{table.name} (found {table.name!r})"
            )
        name = f"{table.db}.{table.name}".lower()
        if name not in names:
            names.append(name)
    return names


def with_tables_replaced(query: str, replacements: Mapping[str, str], path: Path) -> str:
    """``query`` with each table name in ``replacements`` (``layer.table`` -> view name) substituted in
    place, the rest of the text untouched. The engine reads every input at its pinned version through a
    view of that name."""
    tree = _parse_sql(query, path)
    spans = []
    for table in _table_references(tree):
        name = f"{table.db}.{table.name}".lower()
        if name in replacements:
            start, end = table.args["db"].meta["start"], table.this.meta["end"]
            spans.append((start, end + 1, replacements[name]))
    text = query
    for start, end, view in sorted(spans, reverse=True):
        text = text[:start] + view + text[end:]
    return text


# ---------------------------------------------------------------- Python


def _module_name(root: Path, path: Path) -> str:
    tag = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:8]
    relative = path.relative_to(root).with_suffix("")
    return f"lakehouse_project_{tag}." + ".".join(relative.parts)


def import_project_file(path: Path, root: Path):
    """Import a Python file of the project as a module (its functions pickle by value onto executors)."""
    name = _module_name(root, path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise DefinitionError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    from pyspark import cloudpickle

    # Executors cannot import the project's files: UDFs defined in them travel by value.
    cloudpickle.register_pickle_by_value(module)
    return module


def load_python(path: Path, name: str, root: Path) -> TableDefinition:
    """Import a Python definition and read its one ``@table`` function's settings and parameters."""
    module = import_project_file(path, root)
    found = [
        value
        for value in vars(module).values()
        if callable(value)
        and getattr(value, "__lakehouse_table__", None) is not None
        and getattr(value, "__module__", None) == module.__name__
    ]
    if len(found) != 1:
        raise DefinitionError(
            f"{path}: a Python definition holds exactly one function decorated with @table "
            f"(from lakehouse import table); found {len(found)}"
        )
    function = found[0]
    settings = make_settings(function.__lakehouse_table__, str(path))
    parameters = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise DefinitionError(
                f"{path}: {function.__name__} must name each input as a parameter (no *args/**kwargs)"
            )
        if parameter.name != CONTEXT_PARAMETER:
            parameters.append(parameter.name)
    stray = sorted(set(settings.inputs) - set(parameters))
    if stray:
        raise DefinitionError(f"{path}: inputs names {stray}, which are not parameters of {function.__name__}")
    if settings.mode == "incremental" and not parameters:
        raise DefinitionError(f"{path}: an incremental definition reads its first parameter's new rows: add one")
    return TableDefinition(name, path, "python", settings, tuple(parameters), function=function)


def table(
    description: str = "",
    *,
    keys=(),
    partition_by=(),
    properties: Mapping[str, str] | None = None,
    quarantine: bool = False,
    mode: str = "overwrite",
    schema: str | None = None,
    expectations: str | None = None,
    inputs: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
):
    """Mark a function as the definition of the table its file names (``tables/<layer>/<name>.py``).

    The function's parameters are its inputs (see the module doc); it returns a DataFrame. The
    arguments are the table's settings (:class:`TableSettings`), checked when the project is loaded.
    """
    settings = {
        "description": description,
        "keys": keys,
        "partition_by": partition_by,
        "properties": properties or {},
        "quarantine": quarantine,
        "mode": mode,
        "schema": schema,
        "expectations": expectations,
        "inputs": inputs or {},
        "options": options or {},
    }

    def mark(function: Callable) -> Callable:
        function.__lakehouse_table__ = settings
        return function

    return mark
