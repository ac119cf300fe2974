"""The bytes of one file -> its lines (or CSV records), for every input: pure Python, no Spark.

Rules (the bronze table of a file source relies on them):

- Every line is one :class:`Line`, numbered from 1. ``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line
  (as Hadoop's line reader, and so Spark's text source, treats them); the terminator is not part of
  the text. A file ending with a terminator gives no extra empty line; empty lines are lines.
- Text is UTF-8; invalid bytes become U+FFFD (the line still lands); NUL and other control characters
  stay. A UTF-8 byte-order mark at the very start of a file is dropped.
- A line longer than ``max_line_bytes`` is never held whole: its first ``max_line_bytes`` bytes (cut
  at a UTF-8 character boundary) are kept, the rest is skipped, and its error is ``line_too_long``.
- gzip (multi-member too), bzip2 and xz files are recognised by their magic bytes, whatever their
  name, and decompressed as a stream. When one ends early or is damaged, the lines read before the
  damage come out as usual (the last, cut one included), then one file-level line (number and text
  ``None``) whose error is ``truncated_file:<why>`` or ``corrupt_file:<why>``. (bzip2 decodes whole
  blocks of up to 900 kB: the lines of a block cut short are lost with it.) zstd and zip files, which
  the standard library cannot read, give only a file-level ``unsupported_compression:<codec>``.
- CSV records are parsed with Python's :mod:`csv` over the decoded lines (see :func:`csv_records`).

Spark's ``binaryFile`` source hands over each file whole, so a file above its per-file limit
(``spark.sql.sources.binaryFile.maxLength``, at most 2 GiB) fails before it gets here: the caller's
to handle.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import re
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator, Mapping, Sequence

LINE_TOO_LONG = "line_too_long"
RECORD_TOO_LONG = "record_too_long"
EMPTY_LINE = "empty_line"
MALFORMED_CSV_ROW = "malformed_csv_row"
HEADER_MISMATCH = "header_mismatch"

CHUNK_BYTES = 1 << 16
_UTF8_BOM = b"\xef\xbb\xbf"
_UNSUPPORTED_MAGIC = {b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}
# What a damaged stream raises: EOFError when it ends early, the others when its bytes are wrong.
_DAMAGE = (EOFError, OSError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class Line:
    """One line of a file (``number`` from 1), or a file-level line (``number`` and ``text`` None)."""

    number: int | None
    text: str | None
    error: str | None = None


@dataclass(frozen=True)
class Record:
    """One CSV record: its first line's number, its raw text (lines joined by ``\\n``), its fields
    mapped onto the declared columns (``None`` where absent or null), the fields no declared column
    takes (a JSON object, or ``None``), and why it was rescued (``None`` when parsed)."""

    number: int | None
    text: str | None
    fields: tuple[str | None, ...] | None = None
    extra: str | None = None
    error: str | None = None


# ---------------------------------------------------------------------------------------------------
# Compression


def compression(head: bytes) -> str | None:
    """The compression a file's first bytes announce: ``gzip``, ``bzip2``, ``xz``, ``zstd``, ``zip``,
    or ``None`` for anything else (read as text)."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    # "BZh" + block size digit + the magic of a first block or of an empty stream's end
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return _UNSUPPORTED_MAGIC.get(head[:4])


def decompressed(raw: BinaryIO, codec: str | None) -> io.BufferedIOBase:
    """``raw`` read through the decompressor of ``codec`` (``raw`` itself for ``None``)."""
    if codec == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if codec == "bzip2":
        return bz2.BZ2File(raw)
    if codec == "xz":
        return lzma.LZMAFile(raw)
    return raw


def _damage_reason(codec: str | None, error: BaseException) -> str:
    """``truncated_file:...`` or ``corrupt_file:...`` for an error raised while decompressing."""
    name = codec or "file"
    if isinstance(error, EOFError):
        return f"truncated_file:{name} stream ends before its end marker"
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    message = re.sub(r"^Error -?\d+ while decompressing data: ", "", message)
    message = re.sub(r"\s*(\(b'.*'\)|0x[0-9a-f]+ != 0x[0-9a-f]+)", "", message)  # the bytes seen: not a reason
    return f"corrupt_file:{name} {message[:80]}"


class _Chunks:
    """The chunks of a stream; a decompression error ends them and is kept in :attr:`damage`."""

    def __init__(self, stream: BinaryIO, codec: str | None, chunk_bytes: int):
        self.stream, self.codec, self.chunk_bytes = stream, codec, chunk_bytes
        self.damage: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self.stream.read1(self.chunk_bytes)  # read1: what came before the damage is not lost
            except _DAMAGE as exc:
                self.damage = _damage_reason(self.codec, exc)
                return
            if not chunk:
                return
            yield chunk


# ---------------------------------------------------------------------------------------------------
# Lines


def utf8_prefix(data: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes of ``data``, minus a UTF-8 character the cut would split."""
    return _without_partial_char(data[:limit]) if len(data) > limit else data


def _without_partial_char(cut: bytes) -> bytes:
    """``cut`` without a last UTF-8 character whose bytes it does not all hold."""
    for back in range(1, min(4, len(cut)) + 1):
        byte = cut[-back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): does its character end inside the cut?
            length = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
            return cut[:-back] if length > back else cut
    return cut


def split_lines(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """``(line bytes, too long)`` for each line of a chunked byte stream, terminators removed.

    At most ``max_line_bytes`` (plus one chunk) of a line is ever held: the rest of a longer line is
    dropped as it streams past.
    """
    kept: list[bytes] = []
    size, too_long, skip_lf = 0, False, False
    for chunk in chunks:
        if skip_lf and chunk[:1] == b"\n":  # the \n of a \r\n split across two chunks
            chunk = chunk[1:]
        skip_lf = False
        for piece in chunk.splitlines(keepends=True):
            ended = piece[-1:] in (b"\n", b"\r")
            body = piece.rstrip(b"\r\n") if ended else piece
            if not too_long:
                if size + len(body) > max_line_bytes:
                    kept.append(body[: max_line_bytes - size])
                    too_long = True
                else:
                    kept.append(body)
                size += len(body)
            if ended:
                yield _joined(kept, max_line_bytes, too_long), too_long
                kept, size, too_long = [], 0, False
            skip_lf = piece.endswith(b"\r")  # matters only for a chunk's last piece
    if size or too_long:
        yield _joined(kept, max_line_bytes, too_long), too_long


def _joined(kept: list[bytes], max_line_bytes: int, too_long: bool) -> bytes:
    data = b"".join(kept)
    return _without_partial_char(data) if too_long else data


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def file_lines(content: bytes, max_line_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Line]:
    """Every line of a file's ``content`` (compressed or not), then a file-level line if it is damaged."""
    codec = compression(content[:10])
    if codec in _UNSUPPORTED_MAGIC.values():
        yield Line(None, None, f"unsupported_compression:{codec}")
        return
    chunks = _Chunks(decompressed(io.BytesIO(content), codec), codec, chunk_bytes)
    yield from lines_of_chunks(chunks, max_line_bytes)
    if chunks.damage:
        yield Line(None, None, chunks.damage)


def lines_of_chunks(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[Line]:
    """The numbered, decoded lines of a stream of decompressed chunks."""
    for number, (data, too_long) in enumerate(split_lines(chunks, max_line_bytes), start=1):
        if number == 1 and data.startswith(_UTF8_BOM):
            data = data[len(_UTF8_BOM) :]
        yield Line(number, _decode(data), LINE_TOO_LONG if too_long else None)


# ---------------------------------------------------------------------------------------------------
# CSV


@dataclass(frozen=True)
class CsvOptions:
    """How a CSV source is written: Python :mod:`csv` dialect settings, header, null marker."""

    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    header: bool = True
    null_value: str | None = ""

    def dialect(self) -> dict:
        """Keyword arguments for :func:`csv.reader`."""
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quote,
            "escapechar": self.escape,
            "doublequote": True,
            "strict": True,
        }


# Columns every bronze table has: a CSV field of one of these names gets a trailing "_".
RESERVED_COLUMNS = (
    "value",
    "parse_error",
    "line_number",
    "source_file",
    "source_modified_at",
    "ingest_time",
    "run_id",
    "_rescued_data",
)


def column_names(header: Sequence[str]) -> list[str]:
    """Column names for CSV header fields: runs of characters other than letters, digits and ``_``
    become one ``_`` (none at the ends), an empty name becomes ``_c<position>``, a bronze column's
    name gets a trailing ``_`` (``value_``), and a repeated one ``_2``, ``_3``..."""
    names: list[str] = []
    seen: set[str] = set()
    for position, field in enumerate(header):
        name = "_".join(re.sub(r"[^0-9A-Za-z_]+", " ", field).split()) or f"_c{position}"
        name = re.sub(r"^__+", "_", name)
        if name.lower() in RESERVED_COLUMNS:
            name += "_"
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate.lower())
        names.append(candidate)
    return names


class _Interrupted(Exception):
    """Raised into :mod:`csv`'s reader to end the record it is reading (see :class:`_Feeder`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Feeder:
    """The lines of a file as :mod:`csv` wants them, keeping the lines of the record being read.

    A line that cannot be part of a record (a cut, too long line; the file-level damage line) and a
    line that would make the record longer than the budget are held back and interrupt the reader:
    the record read so far is then rescued, and the held line comes next.
    """

    def __init__(self, lines: Iterable[Line], budget: int):
        self._lines = iter(lines)
        self.budget = budget
        self.used: list[Line] = []
        self.held: Line | None = None
        self._size = 0

    def __iter__(self) -> "_Feeder":
        return self

    def __next__(self) -> str:
        line = self.held if self.held is not None else next(self._lines)
        self.held = None
        if line.error is not None:
            self.held = line
            raise _Interrupted(line.error)
        if self.used and self._size + len(line.text) > self.budget:
            self.held = line
            raise _Interrupted(RECORD_TOO_LONG)
        self.used.append(line)
        self._size += len(line.text) + 1
        return line.text + "\n"

    def take_used(self) -> tuple[int | None, str | None]:
        """The first line number and raw text of the lines read since the last call; forget them."""
        used, self.used, self._size = self.used, [], 0
        if not used:
            return None, None
        return used[0].number, "\n".join(line.text for line in used)

    def take_held(self) -> Line | None:
        """The held-back line if it cannot start a record (it lands alone); else ``None``."""
        if self.held is not None and self.held.error is not None:
            held, self.held = self.held, None
            return held
        return None


RawRecord = tuple[int | None, str | None, list[str] | None, str | None]  # line number, text, fields, error


def _raw_records(lines: Iterable[Line], options: CsvOptions, budget: int) -> Iterator[RawRecord]:
    """``(line number, raw text, fields or None, error)`` for each record and each unparseable piece."""
    feeder = _Feeder(lines, budget)
    reader = csv.reader(feeder, **options.dialect())
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except _Interrupted as stop:
            number, text = feeder.take_used()
            if text is not None:
                yield number, text, None, RECORD_TOO_LONG if stop.reason == RECORD_TOO_LONG else MALFORMED_CSV_ROW
            held = feeder.take_held()
            if held is not None:
                yield held.number, held.text, None, held.error
            continue
        except csv.Error:
            number, text = feeder.take_used()
            yield number, text, None, MALFORMED_CSV_ROW
            continue
        number, text = feeder.take_used()
        yield number, text, fields, EMPTY_LINE if not fields else None


class _HeaderMap:
    """Where each declared column's field is in a file's records, from its header (or by position)."""

    def __init__(self, declared: Sequence[str], header: Sequence[str] | None, usable: bool = True):
        self.declared = list(declared)
        names = column_names(header) if header is not None else list(declared)
        self.width = len(names)
        self.matches = usable and (not declared or header is None or bool(set(names) & set(declared)))
        position = {name: i for i, name in reversed(list(enumerate(names)))}
        self.take = [position.get(name) for name in self.declared]
        self.extra = [(i, name) for i, name in enumerate(names) if name not in set(self.declared)]

    def apply(self, fields: list[str], null_value: str | None) -> tuple[tuple[str | None, ...], str | None]:
        """The declared columns' fields and the JSON object of the other fields of one record."""
        values = [None if field == null_value else field for field in fields]
        taken = tuple(None if i is None else values[i] for i in self.take)
        extra = {name: values[i] for i, name in self.extra}
        return taken, (json.dumps(extra, ensure_ascii=False) if extra else None)


def csv_records(
    lines: Iterable[Line], options: CsvOptions, declared: Sequence[str], max_record_bytes: int
) -> Iterator[Record]:
    """The records of one file's lines: every line ends up in exactly one record.

    With ``options.header`` the first record names the fields. It is not a record itself when it
    shares a name with ``declared`` (any order; fields no declared column takes go to
    :attr:`Record.extra`, declared columns it lacks are ``None``) or nothing is declared. Otherwise
    it lands with every record of the file as ``header_mismatch``. A record with another field count
    than the header (or the declared columns) is ``wrong_field_count:<n>``; one the csv module cannot
    parse, ``malformed_csv_row``; one of more than ``max_record_bytes`` characters, ``record_too_long``
    (its lines so far; the next line starts a new record); an empty line, ``empty_line``.
    """
    mapping: _HeaderMap | None = None if options.header else _HeaderMap(declared, None)
    for number, text, fields, error in _raw_records(lines, options, max_record_bytes):
        if mapping is None and number is not None:  # the first record: the header
            mapping = _HeaderMap(declared, fields, usable=error is None)
            if not mapping.matches:
                yield Record(number, text, error=error or HEADER_MISMATCH)
            continue
        if error is not None or fields is None:
            yield Record(number, text, error=error)
        elif mapping is not None and not mapping.matches:
            yield Record(number, text, error=HEADER_MISMATCH)
        elif mapping is not None and len(fields) != mapping.width:
            yield Record(number, text, error=f"wrong_field_count:{len(fields)}")
        else:
            taken, extra = mapping.apply(fields, options.null_value)
            yield Record(number, text, taken, extra)


def read_file(
    content: bytes, max_line_bytes: int, csv_options: CsvOptions | None = None, declared: Sequence[str] = ()
) -> Iterator[Record]:
    """The rows of one file for its bronze table: its lines, or with ``csv_options`` its CSV records."""
    lines = file_lines(content or b"", max_line_bytes)
    if csv_options is None:
        for line in lines:
            yield Record(line.number, line.text, error=line.error)
    else:
        if csv.field_size_limit() < max_line_bytes:
            csv.field_size_limit(max_line_bytes)  # records are bounded by max_line_bytes instead
        yield from csv_records(lines, csv_options, declared, max_line_bytes)


def csv_options(options: Mapping[str, object]) -> CsvOptions:
    """A :class:`CsvOptions` from a file source's ``options`` (already validated)."""
    known = {key: options[key] for key in ("delimiter", "quote", "escape", "null_value") if key in options}
    header = options.get("header", True)
    return CsvOptions(header=header if isinstance(header, bool) else str(header).lower() == "true", **known)
