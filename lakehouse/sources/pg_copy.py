"""PostgreSQL's COPY text format, read by Spark: the ``COPY ... FROM stdin`` blocks of a plain ``pg_dump``.

A block is a header line ``COPY schema.table (col, ...) FROM stdin;``, one line per row (fields
separated by tabs, ``\\N`` for NULL, backslash escapes for backslash and control characters) and a
terminator line ``\\.``. The dump is read with Spark (any Hadoop filesystem, gzip too); the driver only
collects the header and terminator lines to find where each table's block starts and ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

LINE_NUMBER = "__line"
FIELDS = "__fields"
_HEADER = re.compile(r"^COPY (?P<table>\S+) \((?P<columns>.*)\) FROM stdin;$")
_TERMINATOR = "\\."
_NULL = "\\N"
# COPY TO writes \\ \b \f \n \r \t \v (never octal or hex escapes); any other \x stands for x.
_ESCAPES = (("b", "\b"), ("f", "\f"), ("n", "\n"), ("r", "\r"), ("t", "\t"), ("v", "\v"))
_BACKSLASH_STANDIN = "\uffff"  # a Unicode noncharacter: holds escaped backslashes while the rest is decoded


class DumpFormatError(ValueError):
    """The file is not a plain-format pg_dump, or a block is cut off."""


@dataclass(frozen=True)
class CopyBlock:
    """Where one table's rows are in the dump: line numbers of its header and terminator."""

    table: str  # as named in the header, e.g. public.flights
    columns: tuple[str, ...]
    header_line: int
    end_line: int


def _unquote(identifier: str) -> str:
    identifier = identifier.strip()
    if len(identifier) >= 2 and identifier[0] == identifier[-1] == '"':
        return identifier[1:-1].replace('""', '"')
    return identifier


def parse_header(line: str) -> tuple[str, tuple[str, ...]] | None:
    """``(table, columns)`` of a COPY header line; ``None`` if it is not one."""
    match = _HEADER.match(line)
    if not match:
        return None
    table = ".".join(_unquote(part) for part in re.findall(r'"(?:[^"]|"")*"|[^.]+', match["table"]))
    return table, tuple(_unquote(c) for c in match["columns"].split(","))


def numbered_lines(spark: SparkSession, dump_path: str) -> DataFrame:
    """The dump's lines with increasing line numbers (file order), persisted: blocks are cut from it."""
    return spark.read.text(dump_path).withColumn(LINE_NUMBER, F.monotonically_increasing_id()).persist()


def find_blocks(lines: DataFrame, dump_path: str) -> dict[str, CopyBlock]:
    """Every COPY block of the dump, by table name. A data line can neither equal ``\\.`` nor, inside a
    block, be mistaken for a header (only lines outside blocks are read as headers)."""
    markers = (
        lines.where(F.col("value").startswith("COPY ") | (F.col("value") == _TERMINATOR)).orderBy(LINE_NUMBER).collect()
    )
    blocks: dict[str, CopyBlock] = {}
    open_header = None
    for marker in markers:
        if open_header is None:
            parsed = parse_header(marker.value)
            if parsed is not None:
                open_header = (parsed, marker[LINE_NUMBER])
        elif marker.value == _TERMINATOR:
            (table, columns), start = open_header
            blocks[table] = CopyBlock(table, columns, start, marker[LINE_NUMBER])
            open_header = None
    if open_header is not None:
        raise DumpFormatError(f"{dump_path}: the COPY block of {open_header[0][0]} has no terminating '\\.' line")
    return blocks


def unescape(field: Column) -> Column:
    """Decode one COPY text field: ``\\N`` -> NULL, backslash escapes -> characters."""
    decoded = F.regexp_replace(field, r"\\\\", _BACKSLASH_STANDIN)
    for letter, character in _ESCAPES:
        decoded = F.regexp_replace(decoded, r"\\" + letter, character)
    decoded = F.regexp_replace(decoded, r"\\(.)", "$1")
    decoded = F.regexp_replace(decoded, _BACKSLASH_STANDIN, r"\\")  # Java replacement syntax: one backslash
    return F.when(field == _NULL, None).when(F.instr(field, "\\") > 0, decoded).otherwise(field)


def block_rows(lines: DataFrame, block: CopyBlock) -> DataFrame:
    """The rows of one block: a string column per COPY column (decoded), ``value`` (the raw line) and
    ``__error`` (``wrong_field_count:<n>`` when the line does not have one field per column)."""
    body = lines.where((F.col(LINE_NUMBER) > block.header_line) & (F.col(LINE_NUMBER) < block.end_line))
    # decode inside one higher-order function: the same expression for every field keeps the generated
    # code small whatever the column count (one expression per column overflows Java's method size)
    split = body.select("value", F.transform(F.split("value", "\t", -1), unescape).alias(FIELDS))
    n = len(block.columns)
    error = F.when(F.size(FIELDS) != n, F.concat(F.lit("wrong_field_count:"), F.size(FIELDS).cast("string")))
    return split.select(
        "value",
        error.alias("__error"),
        *[F.when(error.isNull(), F.col(FIELDS)[i]).alias(name) for i, name in enumerate(block.columns)],
    )
