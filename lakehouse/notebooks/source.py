"""Databricks' source format for notebooks: a ``.py`` file Databricks imports and exports as is.

    # Databricks notebook source
    print("a Python cell")

    # COMMAND ----------

    # MAGIC %sql
    # MAGIC SELECT * FROM gold.user_activity_daily

Cells are separated by ``# COMMAND ----------``; a cell whose every line starts with ``# MAGIC`` is a
magic cell (``%md``, ``%sql``, ...) with that prefix removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC_PREFIX = "# MAGIC"


class NotebookFormatError(ValueError):
    """The file is not a Databricks source notebook."""


@dataclass(frozen=True)
class Cell:
    """One cell: ``kind`` is ``python`` or the magic's name (``md``, ``sql``, ``sh``, ...)."""

    index: int
    kind: str
    source: str

    @property
    def title(self) -> str:
        first = next((line for line in self.source.splitlines() if line.strip()), "")
        return first.strip()[:80]


def _unmagic(line: str) -> str:
    rest = line[len(MAGIC_PREFIX) :]
    return rest[1:] if rest.startswith(" ") else rest


def parse_cell(index: int, text: str) -> Cell:
    lines = text.strip("\n").splitlines()
    non_blank = [line for line in lines if line.strip()]
    if non_blank and all(line.startswith(MAGIC_PREFIX) for line in non_blank):
        body = [_unmagic(line) if line.startswith(MAGIC_PREFIX) else line for line in lines]
        first = body[0].strip()
        if not first.startswith("%"):
            raise NotebookFormatError(f"cell {index}: a MAGIC cell must start with %md, %sql, ...: {first!r}")
        magic, _, rest = first.partition(" ")
        kind = magic[1:]
        source = "\n".join(([rest] if rest.strip() else []) + body[1:]).strip("\n")
        return Cell(index, "python" if kind == "python" else kind, source)
    return Cell(index, "python", "\n".join(lines))


def parse_notebook(text: str) -> list[Cell]:
    """The cells of a notebook's source text (the header line is required)."""
    first, _, rest = text.partition("\n")
    if first.strip() != HEADER:
        raise NotebookFormatError(f"not a Databricks source notebook: the first line must be {HEADER!r}")
    chunks = [chunk for chunk in rest.split("\n" + SEPARATOR + "\n")]
    cells = []
    for chunk in chunks:
        if chunk.strip():
            cells.append(parse_cell(len(cells) + 1, chunk))
    return cells


def read_notebook(path: Path) -> list[Cell]:
    try:
        return parse_notebook(Path(path).read_text())
    except NotebookFormatError as exc:
        raise NotebookFormatError(f"{path}: {exc}") from exc
