"""The file formats of file sources: declaring one, reading its files into lines, parsing the lines.

A file source lands ``bronze.<name>``: one row per line of every file (per record for ``csv``), plus
one file-level row for a file that cannot be read to its end. Columns, in order: ``value`` (the raw
line), the format's parsed columns (:meth:`FileFormat.parsed_schema`), ``parse_error`` (null when
parsed, else why the row is *rescued*), ``line_number``, ``source_file``, ``source_modified_at``,
``ingest_time``, ``run_id`` (:func:`bronze_schema`). Rows in = rows landed (parsed + rescued).

Reading (:func:`read_files`) is pure Python per file (:mod:`lakehouse.sources.file_lines`) run in
``rdd.mapPartitions``: no input, however long its lines or damaged its bytes, stops a job. Parsing
(:func:`parse_lines`) is Spark SQL on ``value`` with ``try_*`` functions only (ANSI mode is on), and
Java regexes written so that they never recurse per character (possessive, unrolled).

Formats and the reasons each gives (besides the read-level ``line_too_long``,
``truncated_file:<why>``, ``corrupt_file:<why>``, ``unsupported_compression:<codec>``):

- ``text``: no parsed columns, no reasons.
- ``jsonl``: declared columns, then ``_rescued_data``. ``empty_line``, ``invalid_json``,
  ``not_a_json_object``.
- ``csv``: declared columns, then ``_rescued_data``. ``empty_line``, ``wrong_field_count:<n>``,
  ``malformed_csv_row``, ``record_too_long``, ``header_mismatch``.
- ``access_log``: Apache/Nginx combined and common, Nginx and Traefik extras. ``empty_line``,
  ``not_access_log_format``, ``bad_timestamp``.
- ``syslog``: RFC 3164 (and journald ``short``), RFC 3339-stamped (rsyslog's file format, journald
  ``short-iso``), RFC 5424. ``empty_line``, ``not_syslog_format``, ``bad_timestamp``.
- ``regex``: one column per named group, then ``_rescued_data``. ``no_match``.

``_rescued_data`` (as in Databricks Auto Loader) is a JSON object of every field that no declared
column takes or whose value does not fit its column's type (that column is then null); null when
nothing was rescued. It does not make a row rescued: ``parse_error`` stays null.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zoneinfo
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.sources import file_lines

FORMATS = ("text", "jsonl", "csv", "access_log", "syslog", "regex")
DEFAULT_MAX_LINE_BYTES = 1 << 20
MAX_LINE_BYTES_LIMIT = 1 << 30
RESCUED_COLUMN = "_rescued_data"

# Options each format takes; ``columns`` is allowed for the formats in _DECLARED_COLUMNS only.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "text": (),
    "jsonl": (),
    "csv": ("delimiter", "quote", "escape", "header", "null_value"),
    "access_log": (),
    "syslog": ("timezone",),
    "regex": ("pattern",),
}
_DECLARED_COLUMNS = ("jsonl", "csv", "regex")
_RESERVED = {name.lower() for name in file_lines.RESERVED_COLUMNS}
_COLUMN_NAME = re.compile(r"[A-Za-z0-9_]+")


class FormatError(ValueError):
    """A file format declaration that cannot work; the message names the option and the fix."""


# ---------------------------------------------------------------------------------------------------
# Declaring a format

_SIMPLE_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "boolean": T.BooleanType(),
    "bool": T.BooleanType(),
    "tinyint": T.ByteType(),
    "byte": T.ByteType(),
    "smallint": T.ShortType(),
    "short": T.ShortType(),
    "int": T.IntegerType(),
    "integer": T.IntegerType(),
    "bigint": T.LongType(),
    "long": T.LongType(),
    "float": T.FloatType(),
    "double": T.DoubleType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "timestamp_ntz": T.TimestampNTZType(),
}
_DECIMAL = re.compile(r"decimal(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?")


def spark_type(type_name: str) -> T.DataType:
    """The Spark type a declared column's type name means (``string``, ``bigint``, ``decimal(10,2)``...)."""
    name = type_name.strip().lower()
    if name in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[name]
    decimal = _DECIMAL.fullmatch(name)
    if decimal:
        precision, scale = int(decimal.group(1) or 10), int(decimal.group(2) or 0)
        if 1 <= precision <= 38 and scale <= precision:
            return T.DecimalType(precision, scale)
    raise FormatError(
        f"column type {type_name!r} is not supported: use one of {', '.join(sorted(set(_SIMPLE_TYPES)))} "
        "or decimal(p,s) with 1 <= p <= 38"
    )


def _check_column_name(name: str, what: str) -> None:
    if not _COLUMN_NAME.fullmatch(name) or name.startswith("__"):
        raise FormatError(f"{what} {name!r} is not a column name: use letters, digits and _ (not starting with __)")
    if name.lower() in _RESERVED:
        raise FormatError(f"{what} {name!r} is a column every bronze table has: rename it (e.g. {name}_)")


@dataclass(frozen=True)
class FileFormat:
    """How the files of a file source are written: a format of :data:`FORMATS`, its options, and
    for ``jsonl``, ``csv`` and ``regex`` the declared columns as ``(name, Spark SQL type)`` pairs.

    Options: ``csv``: ``delimiter`` (default ``,``), ``quote`` (``"``), ``escape`` (none: quotes are
    doubled), ``header`` (true), ``null_value`` (the empty string). ``syslog``: ``timezone`` (UTC) for
    timestamps without an offset. ``regex``: ``pattern`` (required). ``max_line_bytes`` bounds a line
    (a csv record): longer ones are cut and rescued as ``line_too_long``.
    """

    name: str
    columns: tuple[tuple[str, str], ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def __post_init__(self) -> None:
        columns = self.columns.items() if isinstance(self.columns, Mapping) else self.columns
        object.__setattr__(self, "columns", tuple((str(name), str(type_name)) for name, type_name in columns))

    def validate(self) -> None:
        """Raise :class:`FormatError` when this declaration cannot work."""
        if self.name not in FORMATS:
            raise FormatError(f"format {self.name!r} is unknown: use one of {', '.join(FORMATS)}")
        allowed = _OPTIONS[self.name]
        for option in self.options:
            if option not in allowed:
                takes = f"its options are {', '.join(allowed)}" if allowed else "it takes no options"
                raise FormatError(f"option {option!r} does not apply to format {self.name}: {takes}")
        if (
            isinstance(self.max_line_bytes, bool)
            or not isinstance(self.max_line_bytes, int)
            or not (1 <= self.max_line_bytes <= MAX_LINE_BYTES_LIMIT)
        ):
            raise FormatError(
                f"max_line_bytes {self.max_line_bytes!r}: use a whole number from 1 to {MAX_LINE_BYTES_LIMIT}"
            )
        self._validate_columns()
        {"csv": self._validate_csv, "syslog": self._validate_syslog, "regex": self._validate_regex}.get(
            self.name, lambda: None
        )()

    def _validate_columns(self) -> None:
        if self.columns and self.name not in _DECLARED_COLUMNS:
            raise FormatError(f"columns: format {self.name} has fixed columns; remove `columns` from the declaration")
        seen: set[str] = set()
        for name, type_name in self.columns:
            _check_column_name(name, "column")
            if name.lower() in seen:
                raise FormatError(f"column {name!r} is declared twice: keep one")
            seen.add(name.lower())
            spark_type(type_name)

    def _validate_csv(self) -> None:
        options = self.options
        for option, default in (("delimiter", ","), ("quote", '"')):
            value = options.get(option, default)
            if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
                raise FormatError(f"option {option} {value!r}: use one character (not a line end)")
        escape = options.get("escape")
        if escape is not None and (not isinstance(escape, str) or len(escape) != 1 or escape in "\r\n"):
            raise FormatError(f"option escape {escape!r}: use one character, or leave it out to double quotes")
        if options.get("delimiter", ",") == options.get("quote", '"'):
            raise FormatError("options delimiter and quote are the same character: change one")
        header = options.get("header", True)
        if not isinstance(header, bool) and str(header).lower() not in ("true", "false"):
            raise FormatError(f"option header {header!r}: use true or false")
        null_value = options.get("null_value", "")
        if null_value is not None and not isinstance(null_value, str):
            raise FormatError(f"option null_value {null_value!r}: use a string (the text that means null)")
        if not self.columns and not file_lines.csv_options(options).header:
            raise FormatError("a csv source without a header needs `columns`: declare them (or set header: true)")

    def _validate_syslog(self) -> None:
        zone = self.options.get("timezone", "UTC")
        if not isinstance(zone, str) or not _valid_zone(zone):
            raise FormatError(
                f"option timezone {zone!r} is not a time zone: "
                "use an IANA name (Europe/Paris), UTC, or an offset (+02:00)"
            )

    def _validate_regex(self) -> None:
        pattern = _user_pattern(self.options.get("pattern"))
        groups = {name for _, name in pattern.named_groups()}
        for name, _ in self.columns:
            if name not in groups:
                raise FormatError(
                    f"column {name!r} is not a named group of option pattern: add (?P<{name}>...) or remove the column"
                )

    def declared_types(self) -> dict[str, T.DataType]:
        """The declared columns' Spark types, by name."""
        return {name: spark_type(type_name) for name, type_name in self.columns}

    def parsed_schema(self) -> T.StructType:
        """The parsed columns of this format (those between ``value`` and ``parse_error``)."""
        self.validate()
        if self.name == "access_log":
            return T.StructType(_ACCESS_LOG_FIELDS)
        if self.name == "syslog":
            return T.StructType(_SYSLOG_FIELDS)
        if self.name == "text":
            return T.StructType([])
        types = self.declared_types()
        if self.name == "regex":
            names = [name for _, name in _user_pattern(self.options["pattern"]).named_groups()]
            fields = [
                _field(name, types.get(name, T.StringType()), "the pattern's group of that name") for name in names
            ]
        else:
            fields = [_field(name, types[name], f"the {self.name} field of that name") for name, _ in self.columns]
        return T.StructType([*fields, _field(RESCUED_COLUMN, T.StringType(), _RESCUED_COMMENT)])


def _valid_zone(zone: str) -> bool:
    if zone in ("UTC", "GMT", "Z") or re.fullmatch(r"[+-](0\d|1[0-8])(:[0-5]\d)?", zone):
        return True
    try:
        zoneinfo.ZoneInfo(zone)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return "/" in zone  # Spark accepts region ids (area/city) and offsets, not abbreviations like EST


def _field(name: str, data_type: T.DataType, comment: str, nullable: bool = True) -> T.StructField:
    return T.StructField(name, data_type, nullable, metadata={"comment": comment})


_RESCUED_COMMENT = (
    "JSON object of the fields no declared column takes or whose value does not fit its type; null when none"
)


def bronze_schema(fmt: FileFormat) -> T.StructType:
    """The bronze table of a file source of format ``fmt``: ``value``, the parsed columns,
    ``parse_error``, ``line_number``, ``source_file``, ``source_modified_at``, ``ingest_time``, ``run_id``."""
    return T.StructType(
        [
            _field("value", T.StringType(), "the raw line (a csv record's raw text); null for a file-level row"),
            *fmt.parsed_schema().fields,
            _field("parse_error", T.StringType(), "null when parsed; else why not (the row is rescued)"),
            _field(
                "line_number",
                T.LongType(),
                "1-based line in its file (a csv record's first line); null for a file-level row",
            ),
            _field("source_file", T.StringType(), "URI of the file the row came from", nullable=False),
            _field("source_modified_at", T.TimestampType(), "modification time of that file"),
            _field("ingest_time", T.TimestampType(), "when the row was landed", nullable=False),
            _field("run_id", T.StringType(), "the ingestion run that landed it", nullable=False),
        ]
    )


# ---------------------------------------------------------------------------------------------------
# Reading files into lines

_READ_SCHEMA = T.StructType(
    [
        T.StructField("value", T.StringType()),
        T.StructField("line_number", T.LongType()),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("__modified_micros", T.LongType()),
        T.StructField("parse_error", T.StringType()),
    ]
)
_CSV_READ_FIELDS = [
    T.StructField("__csv_fields", T.ArrayType(T.StringType())),
    T.StructField("__csv_extra", T.StringType()),
]


def _read_partition(
    files: Iterable, max_line_bytes: int, csv_options: file_lines.CsvOptions | None, declared: tuple[str, ...]
) -> Iterator[tuple]:
    """The rows of the files of one partition (``path``, modification time in µs, ``content``)."""
    for path, modified_micros, content in files:
        for record in file_lines.read_file(content, max_line_bytes, csv_options, declared):
            row = (record.text, record.number, path, modified_micros, record.error)
            yield row + (record.fields, record.extra) if csv_options is not None else row


def read_files(spark: SparkSession, files: DataFrame, fmt: FileFormat) -> DataFrame:
    """One row per line of ``files`` (per record for ``csv``), plus one per damaged compressed file.

    ``files`` has the columns of Spark's ``binaryFile`` source (``path``, ``modificationTime``,
    ``length``, ``content``), batch or a streaming micro-batch. The result has ``value``,
    ``line_number``, ``source_file``, ``source_modified_at`` and ``parse_error`` (read-level reasons:
    ``line_too_long``, ``truncated_file:<why>``, ``corrupt_file:<why>``,
    ``unsupported_compression:<codec>``, and for csv the record reasons), and for csv the private
    columns :func:`parse_lines` reads. One pass over the files, nothing collected.

    Each file's ``content`` is handed to a Python worker whole (decompressed as a stream from there):
    ``binaryFile`` cannot hold a file above 2 GiB (``spark.sql.sources.binaryFile.maxLength``); the
    caller must keep such files out and account for them.
    """
    fmt.validate()
    is_csv = fmt.name == "csv"
    reader = partial(
        _read_partition,
        max_line_bytes=fmt.max_line_bytes,
        csv_options=file_lines.csv_options(fmt.options) if is_csv else None,
        declared=tuple(name for name, _ in fmt.columns),
    )
    # Modification times travel as microseconds: a naive Python datetime is ambiguous around DST changes.
    inputs = files.select("path", F.unix_micros("modificationTime"), "content").rdd.mapPartitions(reader)
    schema = T.StructType(_READ_SCHEMA.fields + (_CSV_READ_FIELDS if is_csv else []))
    lines = spark.createDataFrame(inputs, schema, verifySchema=False)
    return lines.select(
        "value",
        "line_number",
        "source_file",
        F.timestamp_micros("__modified_micros").alias("source_modified_at"),
        "parse_error",
        *([field.name for field in _CSV_READ_FIELDS] if is_csv else []),
    )


# ---------------------------------------------------------------------------------------------------
# Parsing lines
#
# Parsers write Spark SQL text, not Column objects: each pyspark Column call is several round trips to
# the JVM, and a parser built from Columns cost thousands of them (seconds per micro-batch); one
# `selectExpr` per stage costs a handful. A parser gives stages of helper columns (each stage one
# projection, so that a helper is computed once however often it is used), the parsed columns and
# the format's reason, all as SQL expressions over `value` and the helpers.

Stages = list[dict[str, str]]
Parsed = tuple[Stages, dict[str, str], str]  # helper stages, parsed columns, format reason


def parse_lines(lines: DataFrame, fmt: FileFormat) -> DataFrame:
    """The bronze columns of ``lines`` (from :func:`read_files`) but ``ingest_time`` and ``run_id``.

    ``parse_error`` is the read-level reason if any, else the format's reason, else null; the parsed
    columns of a rescued row are null.
    """
    fmt.validate()
    stages, parsed, reason = _PARSERS[fmt.name](fmt)
    frame = _apply(lines, [*stages, {"__error": _optimizer_barrier(f"coalesce(parse_error, {reason})")}])
    return frame.selectExpr(
        "value",
        *[
            f"CAST(CASE WHEN __error IS NULL THEN {parsed[f.name]} END AS {f.dataType.simpleString()}) "
            f"AS {_ident(f.name)}"
            for f in fmt.parsed_schema().fields
        ],
        "__error AS parse_error",
        "line_number",
        "source_file",
        "source_modified_at",
    )


def _optimizer_barrier(sql: str) -> str:
    """``sql``, made non-deterministic in Spark's eyes (``spark_partition_id()`` is never negative).

    A filter on the result (``parse_error IS NOT NULL``) is otherwise pushed down through every
    stage, each helper column replaced by its definition wherever it is used: the parse, written
    once per stage, becomes millions of characters of expression (measured on syslog: 5.9 million,
    and the query ran out of memory). Spark pushes no filter through a projection holding a
    non-deterministic column, and every parsed column reads this one."""
    return f"CASE WHEN spark_partition_id() >= 0 THEN {sql} END"


def _apply(frame: DataFrame, stages: Stages) -> DataFrame:
    """``frame`` plus each stage's helper columns, one projection per stage."""
    for stage in stages:
        if stage:
            frame = frame.selectExpr("*", *[f"{sql} AS {_ident(name)}" for name, sql in stage.items()])
    return frame


def _columns(sql: Mapping[str, str]) -> dict[str, Column]:
    return {name: F.expr(text) for name, text in sql.items()}


def _lit(text: str) -> str:
    """``text`` as a Spark SQL string literal (the parser undoes the backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _array(items: Iterable[str]) -> str:
    return f"array({', '.join(items)})"


def _null_if_empty(sql: str) -> str:
    return f"nullif({sql}, '')"


def _blank(sql: str) -> str:
    return f"({sql} IS NULL OR trim({sql}) = '')"


def _plausible(timestamp: str) -> str:
    """``timestamp`` if Python can hold it (years 1 to 9999, a day's margin for time zones), else null:
    ``0000-12-30`` is a valid Spark timestamp that no Python reader of the table could collect."""
    return (
        f"CASE WHEN {timestamp} >= TIMESTAMP'0001-01-02 00:00:00' "
        f"AND {timestamp} < TIMESTAMP'9999-12-30 00:00:00' THEN {timestamp} END"
    )


# All groups of a regex in one evaluation: the matched line is replaced by a marker and its groups
# joined by a separator, then split (one regexp_extract per group would run the pattern once per
# column: measured 5x slower on 163,000 access log lines). A line holding the marker or separator
# itself takes the slow way, so that no input is misread.
_MARKER, _SEPARATOR = "\u0002", "\u0001"


def _groups(pattern: str, layout: int | Iterable[int | str], value: str = "value") -> str:
    """SQL for the ``array<string>`` laid out as ``layout`` says (a group number, or a literal text;
    an int ``n``: groups 1..n) when ``pattern`` matches all of ``value``; null when it does not. A
    group that took no part is ``""``."""
    layout = list(range(1, layout + 1)) if isinstance(layout, int) else list(layout)
    template = _MARKER + _SEPARATOR.join(f"${part}" if isinstance(part, int) else part for part in layout)
    replaced = f"regexp_replace({value}, {_lit(pattern)}, {_lit(template)})"
    extracted = [
        f"regexp_extract({value}, {_lit(pattern)}, {part})" if isinstance(part, int) else _lit(part) for part in layout
    ]
    return (
        f"CASE WHEN contains({value}, {_lit(_SEPARATOR)}) OR contains({value}, {_lit(_MARKER)}) "
        f"THEN CASE WHEN {value} RLIKE {_lit(pattern)} THEN {_array(extracted)} END "
        f"WHEN startswith({replaced}, {_lit(_MARKER)}) THEN split(substring({replaced}, 2), {_lit(_SEPARATOR)}, -1) END"
    )


def _item(array: str, number: int) -> str:
    return f"try_element_at({array}, {number})"


def _typed_strings(
    raw: Mapping[str, str], types: Mapping[str, T.DataType], extra_json: str | None
) -> tuple[Stages, dict[str, str]]:
    """Parsed columns from text fields (SQL by name): each cast to its declared type (``try_cast``); a
    value that does not cast is null and goes to ``_rescued_data`` with ``extra_json``'s fields."""
    typed = {name: types[name] for name in raw if not isinstance(types.get(name, T.StringType()), T.StringType)}
    casts = {
        f"__typed_{name}": f"try_cast({raw[name]} AS {data_type.simpleString()})" for name, data_type in typed.items()
    }
    parsed = {name: f"__typed_{name}" if name in typed else text for name, text in raw.items()}
    misfits = {
        name: f"CASE WHEN {raw[name]} IS NOT NULL AND __typed_{name} IS NULL THEN {raw[name]} END" for name in typed
    }
    maps = []
    if misfits:
        pairs = f"map_from_arrays({_array(map(_lit, misfits))}, {_array(misfits.values())})"
        maps.append(f"map_filter({pairs}, (__k, __v) -> __v IS NOT NULL)")
    if extra_json is not None:
        maps.append(f"from_json(coalesce({extra_json}, '{{}}'), 'map<string,string>')")
    rescued = {"__rescued": maps[0] if len(maps) == 1 else f"map_concat({', '.join(maps)})"} if maps else {}
    parsed[RESCUED_COLUMN] = (
        "CASE WHEN size(__rescued) > 0 THEN to_json(__rescued) END" if maps else "CAST(NULL AS STRING)"
    )
    return [casts, rescued], parsed


# --- text ------------------------------------------------------------------------------------------


def _parse_text(fmt: FileFormat) -> Parsed:
    return [], {}, "CAST(NULL AS STRING)"


# --- jsonl -----------------------------------------------------------------------------------------

_INTEGRAL_KINDS = ("TINYINT", "SMALLINT", "INT", "BIGINT")
_NUMBER_KINDS = (*_INTEGRAL_KINDS, "FLOAT", "DOUBLE")
_WHOLE_DECIMAL = r"^DECIMAL\(\d+,0\)$"


def _json_fits(kind: str, data_type: T.DataType) -> str:
    """Whether a JSON value of variant ``kind`` (``schema_of_variant``) belongs in a ``data_type``
    column: only numbers in number columns (only whole ones in integer columns), only booleans in
    boolean ones, only strings in date and timestamp ones, anything in a string one."""
    if isinstance(data_type, T.StringType):
        return "TRUE"
    if isinstance(data_type, T.IntegralType):
        return f"({kind} IN ({', '.join(map(_lit, _INTEGRAL_KINDS))}) OR {kind} RLIKE {_lit(_WHOLE_DECIMAL)})"
    if isinstance(data_type, (T.FractionalType, T.DecimalType)):
        return f"({kind} IN ({', '.join(map(_lit, _NUMBER_KINDS))}) OR startswith({kind}, 'DECIMAL'))"
    return f"{kind} = {_lit('BOOLEAN' if isinstance(data_type, T.BooleanType) else 'STRING')}"


def _parse_jsonl(fmt: FileFormat) -> Parsed:
    types = fmt.declared_types()
    columns = list(enumerate(types.items()))
    # try_parse_json returns null for what Jackson refuses, nesting deeper than 1,000 levels included.
    stages: Stages = [
        {"__json": "try_parse_json(value)"},
        {"__object": "try_variant_get(__json, '$', 'map<string,variant>')"},
        {f"__element{i}": f"try_element_at(__object, {_lit(name)})" for i, (name, _) in columns},
        {
            f"__typed{i}": f"CASE WHEN {_json_fits(f'schema_of_variant(__element{i})', data_type)} "
            f"THEN try_variant_get(__element{i}, '$', {_lit(data_type.simpleString())}) END"
            for i, (_, data_type) in columns
        },
    ]
    parsed = {name: f"__typed{i}" for i, (name, _) in columns}
    if columns:
        misfits = [
            f"CASE WHEN __element{i} IS NOT NULL AND NOT is_variant_null(__element{i}) AND __typed{i} IS NULL "
            f"THEN {_lit(name)} END"
            for i, (name, _) in columns
        ]
        stages.append({"__misfits": f"array_compact({_array(misfits)})"})
        declared = _array(_lit(name) for name in types)
        kept = f"NOT array_contains({declared}, __k) OR array_contains(__misfits, __k)"
        rescued = f"map_filter(__object, (__k, __v) -> {kept})"
    else:
        rescued = "__object"
    stages.append({"__rescued": rescued})
    parsed[RESCUED_COLUMN] = "CASE WHEN size(__rescued) > 0 THEN to_json(__rescued) END"
    # try_parse_json stops after the first value: `{"a": 1} trailing` and `{"a": 1}{"b": 2}` would pass;
    # as an array's only element the line must make an array of length 1
    one_value = r"coalesce(json_array_length(concat('[', value, ']')), 0) = 1 AND value RLIKE '\\}\\s*$'"
    reason = (
        f"CASE WHEN {_blank('value')} THEN 'empty_line' WHEN __json IS NULL THEN 'invalid_json' "
        f"WHEN __object IS NULL THEN 'not_a_json_object' WHEN NOT ({one_value}) THEN 'invalid_json' END"
    )
    return stages, parsed, reason


# --- csv -------------------------------------------------------------------------------------------


def _parse_csv(fmt: FileFormat) -> Parsed:
    raw = {name: _item("__csv_fields", i + 1) for i, name in enumerate(fmt.declared_types())}
    stages, parsed = _typed_strings(raw, fmt.declared_types(), "__csv_extra")
    return stages, parsed, "CAST(NULL AS STRING)"  # csv records' reasons are all read-level


# --- access_log ------------------------------------------------------------------------------------

# A quoted field with backslash escapes, unrolled and possessive: `(?:[^"\\]|\\.)*` recurses once
# per character in Java and overflows the stack on a few thousand characters.
_QUOTED = r'"([^"\\]*+(?:\\.[^"\\]*+)*+)"'
ACCESS_LOG_PATTERN = (
    r"(?s)^(\S++) (\S++) (\S++) \[([^\]]++)\] " + _QUOTED + r" (\d{3}|-) (\d++|-)"
    r"(?: " + _QUOTED + " " + _QUOTED + r")?+\s*+(.*+)\z"
)
_ACCESS_LOG_GROUPS = (
    "client_host",
    "ident",
    "auth_user",
    "time",
    "request_line",
    "status",
    "bytes",
    "referrer",
    "user_agent",
    "extra_fields",
)
REQUEST_PATTERN = r"^\S++ \S++(?: \S++)?+$"
ACCESS_LOG_TIME_FORMAT = "dd/MMM/yyyy:HH:mm:ss Z"
_TRAEFIK_DURATION = r"(?:^|\s)(\d{1,15})ms$"  # Traefik's CLF ends with the duration: `... "/dashboard/" 12ms`
_NGINX_SECONDS = r"(?:^|\s)(\d{1,12}\.\d{3})$"  # nginx's $request_time last: seconds with milliseconds

_ACCESS_LOG_FIELDS = [
    _field("client_host", T.StringType(), "remote host name or address"),
    _field("ident", T.StringType(), "RFC 1413 identity, usually '-'"),
    _field("auth_user", T.StringType(), "authenticated user, usually '-'"),
    _field("request_time", T.TimestampType(), "time the request was received (UTC)"),
    _field("request_line", T.StringType(), "the quoted request line as sent"),
    _field("method", T.StringType(), "HTTP method; null when the request line is not `METHOD PATH [PROTOCOL]`"),
    _field("path", T.StringType(), "requested path"),
    _field("protocol", T.StringType(), "HTTP protocol; null for an HTTP/0.9 request line (`GET /`)"),
    _field("status", T.IntegerType(), "HTTP status code"),
    _field("response_bytes", T.LongType(), "body size; null for '-'"),
    _field("referrer", T.StringType(), "Referer header as logged"),
    _field("user_agent", T.StringType(), "User-Agent header as logged"),
    _field("extra_fields", T.StringType(), "anything after the user agent (Nginx, Traefik and others log more)"),
    _field(
        "duration_ms",
        T.LongType(),
        "request duration in ms when the line ends with one: Traefik's `<n>ms`, nginx's `$request_time` seconds",
    ),
]


def _access_log_sql() -> Parsed:
    def group(name: str) -> str:
        return _item("__parts", _ACCESS_LOG_GROUPS.index(name) + 1)

    request_line, extra = group("request_line"), group("extra_fields")
    stages: Stages = [
        {"__parts": _groups(ACCESS_LOG_PATTERN, len(_ACCESS_LOG_GROUPS))},
        {
            "__request_time_as_written": f"try_to_timestamp({group('time')}, {_lit(ACCESS_LOG_TIME_FORMAT)})",
            "__request": f"CASE WHEN {request_line} RLIKE {_lit(REQUEST_PATTERN)} "
            f"THEN split({request_line}, ' ', -1) END",
        },
        {"__request_time": _plausible("__request_time_as_written")},
    ]
    milliseconds = f"try_cast(regexp_extract({extra}, {_lit(_TRAEFIK_DURATION)}, 1) AS BIGINT)"
    seconds = f"try_cast(regexp_extract({extra}, {_lit(_NGINX_SECONDS)}, 1) AS DECIMAL(15,3))"
    parsed = {
        "client_host": group("client_host"),
        "ident": group("ident"),
        "auth_user": group("auth_user"),
        "request_time": "__request_time",
        "request_line": request_line,
        "method": _item("__request", 1),
        "path": _item("__request", 2),
        "protocol": _item("__request", 3),
        "status": f"CASE WHEN {group('status')} != '-' THEN try_cast({group('status')} AS INT) END",
        "response_bytes": f"CASE WHEN {group('bytes')} != '-' THEN try_cast({group('bytes')} AS BIGINT) END",
        "referrer": _null_if_empty(group("referrer")),
        "user_agent": _null_if_empty(group("user_agent")),
        "extra_fields": _null_if_empty(extra),
        "duration_ms": f"coalesce({milliseconds}, try_cast({seconds} * 1000 AS BIGINT))",
    }
    reason = (
        f"CASE WHEN {_blank('value')} THEN 'empty_line' WHEN __parts IS NULL THEN 'not_access_log_format' "
        "WHEN __request_time IS NULL THEN 'bad_timestamp' END"
    )
    return stages, parsed, reason


def access_log_columns(lines: DataFrame) -> tuple[DataFrame, dict[str, Column], Column]:
    """The ``access_log`` parse of ``lines.value``: the frame with its helper columns, the parsed
    columns (all of :data:`_ACCESS_LOG_FIELDS`) and the reason (null when the line parsed)."""
    stages, parsed, reason = _access_log_sql()
    return _apply(lines, stages), _columns(parsed), F.expr(reason)


def _parse_access_log(fmt: FileFormat) -> Parsed:
    return _access_log_sql()


# --- syslog ----------------------------------------------------------------------------------------

_PRI = r"(?:<(\d{1,3})>)?+"
_FRACTION = r"(?:[.,](\d{1,6})\d*+)?+"  # beyond microseconds: dropped
# A host name never ends with ':'; a tag does. Lines without a host (`prog[1]: msg`) leave it out.
_HOST_TAG_MESSAGE = r" ++(?:(\S*[^\s:]) ++)?(?:([^\s\[\]:]++)(?:\[(\d{1,18})\])?+:)?+\s*+(.*+)\z"
SYSLOG_PATTERNS = {
    # <34>1 2026-11-30T06:25:01.003Z host app 123 ID47 [sd] msg
    "rfc5424": (
        r"(?s)^<(\d{1,3})>(\d{1,2}) (?:-|(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)"
        + _FRACTION
        + r"(Z|[+-]\d\d:\d\d)) (\S++) (\S++) (\S++) (\S++) "
        r'(-|(?:\[[^\]"]*+(?:"[^"\\]*+(?:\\.[^"\\]*+)*+"[^\]"]*+)*+\])++)(?: (.*+))?+\z'
    ),
    # 2026-11-30T06:25:01.123456+00:00 host sshd[123]: msg (rsyslog's default; journald short-iso)
    "rfc3339": (
        r"(?s)^"
        + _PRI
        + r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)"
        + _FRACTION
        + r"(Z|[+-]\d\d:?\d\d)?+"
        + _HOST_TAG_MESSAGE
    ),
    # Nov 30 06:25:01 host sshd[123]: msg (journald short; FreeBSD's `<facility.severity>` after the time)
    "rfc3164": (
        r"(?s)^"
        + _PRI
        + r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)"
        + _FRACTION
        + r"(?: ++<([a-z0-9]{1,10}\.[a-z0-9]{1,10})>)?+"
        + _HOST_TAG_MESSAGE
    ),
}
_SYSLOG_GROUPS = {
    "rfc5424": (
        "pri",
        "version",
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "fraction",
        "zone",
        "hostname",
        "program",
        "pid",
        "msgid",
        "structured_data",
        "message",
    ),
    "rfc3339": (
        "pri",
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "fraction",
        "zone",
        "hostname",
        "program",
        "pid",
        "message",
    ),
    "rfc3164": (
        "pri",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "fraction",
        "bsd_priority",
        "hostname",
        "program",
        "pid",
        "message",
    ),
}
# What every form's match is laid out as (a form lacking a part gives ""), so that the rest of the
# parse is written once.
_SYSLOG_PARTS = (
    "format",
    "pri",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "fraction",
    "zone",
    "bsd_priority",
    "hostname",
    "program",
    "pid",
    "msgid",
    "structured_data",
    "message",
)
_LEADING_BOM = "^\ufeff"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    **{f"local{n}": 16 + n for n in range(8)},
}
_SEVERITIES = {
    "emerg": 0,
    "panic": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "error": 3,
    "warning": 4,
    "warn": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}

_SYSLOG_FIELDS = [
    _field(
        "event_time",
        T.TimestampType(),
        "when the event was logged (UTC); RFC 3164's missing year inferred from the file's modification time",
    ),
    _field(
        "facility",
        T.IntegerType(),
        "syslog facility (0 kern .. 23 local7), from <PRI> or FreeBSD's <facility.severity>",
    ),
    _field("severity", T.IntegerType(), "syslog severity (0 emerg .. 7 debug)"),
    _field("hostname", T.StringType(), "host that logged the event"),
    _field("program", T.StringType(), "program (tag / APP-NAME), e.g. sshd, postfix/smtpd, kernel"),
    _field("pid", T.LongType(), "process id (PROCID) when numeric"),
    _field("msgid", T.StringType(), "RFC 5424 MSGID"),
    _field("structured_data", T.StringType(), "RFC 5424 STRUCTURED-DATA as written"),
    _field("message", T.StringType(), "the message text"),
    _field("syslog_format", T.StringType(), "form that matched: rfc5424, rfc3339 (ISO-stamped traditional) or rfc3164"),
]


def _syslog_layout(form: str) -> list[int | str]:
    groups = _SYSLOG_GROUPS[form]
    return [form if part == "format" else groups.index(part) + 1 if part in groups else "" for part in _SYSLOG_PARTS]


def _part(name: str) -> str:
    return _item("__syslog", _SYSLOG_PARTS.index(name) + 1)


def _int(sql: str) -> str:
    return f"try_cast({sql} AS INT)"  # '' gives null too


def _sql_map(table: Mapping[str, int]) -> str:
    return f"map({', '.join(f'{_lit(key)}, {value}' for key, value in table.items())})"


def _name_or_number(text: str, table: Mapping[str, int]) -> str:
    return f"coalesce({_int(text)}, try_element_at({_sql_map(table)}, {text}))"


def _syslog_time_stages(zone: str) -> Stages:
    """Stages computing ``__event_time``: a line's own year and offset when it has them; for RFC 3164
    (no year) the year of the file's modification time, or the year before when that would put the
    event more than a day after the file was last written. Offsets from the data are applied by
    arithmetic, never handed to Spark as a zone id (an invalid one throws, even in try_make_timestamp).
    Each helper is its own column so that no big expression is repeated (whole-stage code generation
    stops at 64 KB of code per method)."""
    month_numbers = _sql_map({name: number for number, name in enumerate(_MONTHS, 1)})
    fraction = f"coalesce({_null_if_empty(_part('fraction'))}, '0')"
    parts = {
        "__year": _int(_part("year")),
        "__month": f"coalesce({_int(_part('month'))}, try_element_at({month_numbers}, {_part('month')}))",
        "__day": _int(_part("day")),
        "__hour": _int(_part("hour")),
        "__minute": _int(_part("minute")),
        "__second": f"try_cast(concat({_part('second')}, '.', {fraction}) AS DECIMAL(8,6))",
        "__zone": _part("zone"),
        "__reference": "coalesce(source_modified_at, current_timestamp())",
    }
    # `Z`, `+hh:mm` or `+hhmm`: seconds east of UTC; null beyond ±18:00 (a bad timestamp)
    offset_parts = {"__offset_hours": _int("substring(__zone, 2, 2)"), "__offset_minutes": _int("right(__zone, 2)")}
    offset = (
        "CASE WHEN __zone = 'Z' THEN 0 WHEN __offset_hours <= 18 AND __offset_minutes < 60 "
        "THEN (CASE WHEN startswith(__zone, '-') THEN -1 ELSE 1 END) "
        "* (__offset_hours * 3600 + __offset_minutes * 60) END"
    )

    def at(year: str, time_zone: str) -> str:
        return f"try_make_timestamp({year}, __month, __day, __hour, __minute, __second, {_lit(time_zone)})"

    shifted = f"timestamp_micros(unix_micros({at('__year', 'UTC')}) - CAST(__offset AS BIGINT) * 1000000)"
    event_time = (
        f"CASE WHEN __year IS NOT NULL AND __zone = '' THEN {at('__year', zone)} "
        f"WHEN __year IS NOT NULL THEN {shifted} "
        "WHEN __this_year IS NULL OR __this_year > __reference + INTERVAL 1 DAY "
        f"THEN {at('year(__reference) - 1', zone)} "
        "ELSE __this_year END"
    )
    return [
        parts,
        {**offset_parts, "__this_year": f"CASE WHEN __year IS NULL THEN {at('year(__reference)', zone)} END"},
        {"__offset": offset},
        {"__event_time_as_written": event_time},
        {"__event_time": _plausible("__event_time_as_written")},
    ]


def _parse_syslog(fmt: FileFormat) -> Parsed:
    zone = fmt.options.get("timezone", "UTC")
    # each form only tries the lines the ones before it did not match
    stages: Stages = []
    unmatched = "TRUE"
    for form in SYSLOG_PATTERNS:
        stages.append(
            {f"__{form}": f"CASE WHEN {unmatched} THEN {_groups(SYSLOG_PATTERNS[form], _syslog_layout(form))} END"}
        )
        unmatched += f" AND __{form} IS NULL"
    stages += [
        {"__syslog": f"coalesce({', '.join(f'__{form}' for form in SYSLOG_PATTERNS)})"},
        *_syslog_time_stages(zone),
        {"__pri": f"CASE WHEN {_int(_part('pri'))} <= 191 THEN {_int(_part('pri'))} END"},
    ]

    def given(name: str) -> str:  # "" (the form has no such part) and RFC 5424's "-" are no value
        return f"CASE WHEN {_part(name)} NOT IN ('', '-') THEN {_part(name)} END"

    # FreeBSD's `<4.3>` / `<auth.info>`: facility and severity as numbers or names
    bsd_facility = _name_or_number(f"substring_index({_part('bsd_priority')}, '.', 1)", _FACILITIES)
    bsd_severity = _name_or_number(f"substring_index({_part('bsd_priority')}, '.', -1)", _SEVERITIES)
    parsed = {
        "event_time": "__event_time",
        "facility": f"coalesce(CAST(floor(__pri / 8) AS INT), {bsd_facility})",
        "severity": f"coalesce(__pri % 8, {bsd_severity})",
        "hostname": given("hostname"),
        "program": given("program"),
        "pid": f"try_cast({given('pid')} AS BIGINT)",
        "msgid": given("msgid"),
        "structured_data": given("structured_data"),
        "message": _null_if_empty(f"regexp_replace({_part('message')}, {_lit(_LEADING_BOM)}, '')"),  # RFC 5424 MSG's
        "syslog_format": _part("format"),
    }
    reason = (
        f"CASE WHEN {_blank('value')} THEN 'empty_line' WHEN __syslog IS NULL THEN 'not_syslog_format' "
        # RFC 5424 allows "-" for no timestamp: no month then, and no error
        f"WHEN {_part('month')} != '' AND __event_time IS NULL THEN 'bad_timestamp' END"
    )
    return stages, parsed, reason


# --- regex -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _UserPattern:
    """A ``regex`` source's pattern: as Java runs it (named groups made plain) and its groups' names."""

    java: str
    names: tuple[str | None, ...]  # one per capturing group, in order; None for an unnamed group

    def named_groups(self) -> list[tuple[int, str]]:
        """``(group number, name)`` of the named groups, in pattern order."""
        return [(n, name) for n, name in enumerate(self.names, 1) if name is not None]


_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_NAMED_REFERENCE = re.compile(r"\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)|\\k<([A-Za-z_][A-Za-z0-9_]*)>")


def _class_end(pattern: str, start: int) -> int:
    """Index just past the character class opening at ``start`` (Java's nested classes counted)."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    depth = 1
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        depth += char == "["
        depth -= char == "]"
        i += 1
        if depth == 0:
            return i
    return len(pattern)


def _scan_pattern(pattern: str) -> _UserPattern:
    """Number the capturing groups of ``pattern`` and make its named groups plain ones for Java
    (whose group names allow no ``_``); named back-references become numbered ones."""
    out: list[str] = []
    names: list[str | None] = []
    i = 0
    while i < len(pattern):
        reference = _NAMED_REFERENCE.match(pattern, i)
        named = _NAMED_GROUP.match(pattern, i)
        if reference:
            name = reference.group(1) or reference.group(2)
            if name not in names:
                raise FormatError(
                    f"option pattern refers to group {name!r} before defining it: define (?P<{name}>...) first"
                )
            out.append(f"(?:\\{names.index(name) + 1})")
            i = reference.end()
        elif pattern.startswith("\\Q", i):
            end = pattern.find("\\E", i + 2)
            end = len(pattern) if end < 0 else end + 2
            out.append(pattern[i:end])
            i = end
        elif pattern[i] == "\\":
            out.append(pattern[i : i + 2])
            i += 2
        elif pattern[i] == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i:end])
            i = end
        elif named:
            names.append(named.group(1))
            out.append("(")
            i = named.end()
        elif pattern.startswith("(?", i):
            out.append("(?")
            i += 2
        else:
            if pattern[i] == "(":
                names.append(None)
            out.append(pattern[i])
            i += 1
    return _UserPattern("".join(out), tuple(names))


def _java_regex_error(pattern: str) -> str | None:
    """Java's complaint about ``pattern`` (None when it compiles, or when no JVM is running here)."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None:
        return None
    try:
        context._jvm.java.util.regex.Pattern.compile(pattern)
    except Exception as exc:  # py4j's Py4JJavaError
        java = getattr(exc, "java_exception", None)
        return str(java.getMessage() if java is not None else exc).splitlines()[0]
    return None


def _user_pattern(pattern: Any) -> _UserPattern:
    """Check a ``regex`` source's pattern (Python's and, where a JVM runs, Java's view) and scan it."""
    if not isinstance(pattern, str) or not pattern:
        raise FormatError("option pattern is missing: give a regex with named groups, e.g. (?P<host>\\S+) (?P<rest>.*)")
    scanned = _scan_pattern(pattern)
    if not scanned.named_groups():
        raise FormatError("option pattern has no named group: name the parts to keep, e.g. (?P<host>\\S+)")
    seen: set[str] = set()
    for _, name in scanned.named_groups():
        _check_column_name(name, "group")
        if name.lower() in seen:
            raise FormatError(f"option pattern names group {name!r} twice: rename one")
        seen.add(name.lower())
    java_error = _java_regex_error(scanned.java)
    if java_error:
        raise FormatError(f"option pattern does not compile as a Java regex (what Spark runs): {java_error}")
    python_pattern = _NAMED_GROUP.sub(lambda m: f"(?P<{m.group(1)}>", pattern)
    try:
        compiled = re.compile(python_pattern)
    except re.error as exc:
        from pyspark import SparkContext

        if SparkContext._active_spark_context is None:  # nobody else could check it
            raise FormatError(f"option pattern does not compile: {exc}") from exc
        return scanned  # Java-only syntax (\p{L}, nested classes): Java accepted it
    if compiled.groups != len(scanned.names) or {name: n for n, name in scanned.named_groups()} != dict(
        compiled.groupindex
    ):
        raise FormatError("option pattern: its groups cannot be numbered safely; avoid (?|...) and conditionals")
    return scanned


def _parse_regex(fmt: FileFormat) -> Parsed:
    pattern = _user_pattern(fmt.options["pattern"])
    raw = {name: _null_if_empty(_item("__groups", number)) for number, name in pattern.named_groups()}
    stages, parsed = _typed_strings(raw, fmt.declared_types(), None)
    groups = {"__groups": _groups(f"^(?:{pattern.java})\\z", len(pattern.names))}
    return [groups, *stages], parsed, "CASE WHEN __groups IS NULL THEN 'no_match' END"


_PARSERS: dict[str, Callable[[FileFormat], Parsed]] = {
    "text": _parse_text,
    "jsonl": _parse_jsonl,
    "csv": _parse_csv,
    "access_log": _parse_access_log,
    "syslog": _parse_syslog,
    "regex": _parse_regex,
}


# ---------------------------------------------------------------------------------------------------
# Inferring columns from a sample

_INT = re.compile(r"[+-]?\d+")
_LEADING_ZERO = re.compile(r"[+-]?0\d")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:?\d\d)?")
_WIDER = {
    ("bigint", "double"): "double",
    ("double", "bigint"): "double",
    ("date", "timestamp"): "timestamp",
    ("timestamp", "date"): "timestamp",
}


def _merge(known: str | None, seen: str | None) -> str | None:
    if seen is None or known == seen:
        return known if seen is None else seen
    if known is None:
        return seen
    return _WIDER.get((known, seen), "string")


def _text_type(text: str) -> str:
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return "boolean"
    if _LEADING_ZERO.match(stripped):  # 007, 01234: codes, not numbers
        return "string"
    if _INT.fullmatch(stripped):
        return "bigint" if -(1 << 63) <= int(stripped) < (1 << 63) else "string"
    if _FLOAT.fullmatch(stripped):
        return "double"
    if _DATE.fullmatch(text):
        return "date"
    if _TIMESTAMP.fullmatch(text):
        return "timestamp"
    return "string"


def _json_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint" if -(1 << 63) <= value < (1 << 63) else "string"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "timestamp" if _TIMESTAMP.fullmatch(value) else "date" if _DATE.fullmatch(value) else "string"
    return "string"  # objects and arrays land as their JSON text


def _valid_column(name: str) -> bool:
    try:
        _check_column_name(name, "field")
    except FormatError:
        return False
    return True


def _infer_jsonl(sample_lines: list[str]) -> dict[str, str | None]:
    types: dict[str, str | None] = {}
    for line in sample_lines:
        try:
            document = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(document, dict):
            continue
        for key, value in document.items():
            if _valid_column(key) and key.lower() not in {k.lower() for k in types if k != key}:
                types[key] = _merge(types.get(key), _json_type(value))
    return types


def _sample_records(sample_lines: list[str], options: file_lines.CsvOptions) -> list[list[str]]:
    """The non-empty records of a CSV sample; records the csv module cannot parse are left out."""
    reader = csv.reader(io.StringIO("\n".join(sample_lines) + "\n"), **options.dialect())
    records = []
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return records
        except csv.Error:  # the reader starts afresh on the next line
            continue
        if record:
            records.append(record)


def _infer_csv(sample_lines: list[str], fmt: FileFormat) -> dict[str, str | None]:
    options = file_lines.csv_options(fmt.options)
    records = _sample_records(sample_lines, options)
    if not records:
        raise FormatError("the csv sample has no record: sample lines from a file that has some")
    if options.header:
        names, records = file_lines.column_names(records[0]), records[1:]
    else:
        names = list(dict.fromkeys(name for name, _ in fmt.columns)) or [
            f"_c{i}" for i in range(max(len(r) for r in records))
        ]
    types: dict[str, str | None] = {name: None for name in names}
    for record in records:
        if len(record) != len(names):
            continue
        for name, text in zip(names, record):
            if text != options.null_value:
                types[name] = _merge(types[name], _text_type(text))
    return types


def infer_columns(sample_lines: list[str], fmt: FileFormat) -> tuple[tuple[str, str], ...]:
    """Columns to declare for a ``jsonl`` or ``csv`` source, from some of its lines (pure Python).

    jsonl: every top-level field of the sampled objects whose name is a valid column name, in first
    seen order (others will land in ``_rescued_data``); types ``boolean``, ``bigint``, ``double``,
    ``date`` / ``timestamp`` (ISO 8601 strings), else ``string`` (objects and arrays: their JSON).
    csv: the header's fields (as :func:`file_lines.column_names` names them) or ``_c0``, ``_c1``...,
    typed the same way from their values. A field seen only as null or with mixed types is ``string``.
    """
    if fmt.name == "jsonl":
        types = _infer_jsonl(sample_lines)
    elif fmt.name == "csv":
        types = _infer_csv(sample_lines, fmt)
    else:
        raise FormatError(f"format {fmt.name}: columns are inferred for jsonl and csv only")
    return tuple((name, type_name or "string") for name, type_name in types.items())
