"""Reading the files of a file source: every line exactly one row, whatever the bytes (file_lines, read_files)."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import random
import tracemalloc
from datetime import datetime, timezone

import pytest

from lakehouse.sources.file_lines import (
    CsvOptions,
    Line,
    compression,
    csv_records,
    file_lines,
    lines_of_chunks,
    read_file,
    utf8_prefix,
)
from lakehouse.sources.formats import FileFormat, read_files

MIB = 1 << 20


def lines(content: bytes, max_line_bytes: int = MIB, chunk_bytes: int = 1 << 16) -> list[tuple]:
    return [(line.number, line.text, line.error) for line in file_lines(content, max_line_bytes, chunk_bytes)]


def texts(content: bytes, **kwargs) -> list[str | None]:
    return [text for _, text, _ in lines(content, **kwargs)]


# --- lines ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", []),
        (b"\n", [""]),
        (b"a", ["a"]),
        (b"a\n", ["a"]),
        (b"a\n\nb\n\n", ["a", "", "b", ""]),
        (b"a\r\nb\r\n", ["a", "b"]),
        (b"a\rb\rc", ["a", "b", "c"]),
        (b"a\r\r\nb", ["a", "", "b"]),
        (b"\r\n\r\n", ["", ""]),
        (b"a\n\rb", ["a", "", "b"]),
    ],
)
def test_each_line_is_one_row_and_a_final_line_end_starts_none(content, expected):
    assert texts(content) == expected
    assert [number for number, _, _ in lines(content)] == list(range(1, len(expected) + 1))


def test_line_ends_split_across_chunks_read_the_same():
    content = b"one\r\ntwo\rthree\n\r\nfour\r\r\nfive\r"
    whole = texts(content)
    assert whole == ["one", "two", "three", "", "four", "", "five"]
    for chunk_bytes in range(1, 9):
        assert texts(content, chunk_bytes=chunk_bytes) == whole, chunk_bytes


def test_bad_utf8_is_replaced_control_characters_stay_and_a_leading_bom_goes():
    content = b"\xef\xbb\xbfcaf\xe9\n\x00\x01\x1b[0m\x7f\n\xe2\x82\xac ok\n\xed\xa0\x80\n"
    assert texts(content) == ["caf\ufffd", "\x00\x01\x1b[0m\x7f", "\u20ac ok", "\ufffd\ufffd\ufffd"]
    assert texts(b"a\n\xef\xbb\xbfb\n") == ["a", "\ufeffb"]  # only the file's first bytes can be a BOM


def test_a_line_longer_than_the_limit_is_cut_at_a_character_boundary_and_rescued():
    assert lines(b"short\n0123456789abc\nnext", max_line_bytes=10) == [
        (1, "short", None),
        (2, "0123456789", "line_too_long"),
        (3, "next", None),
    ]
    assert lines(b"0123456789\n", max_line_bytes=10) == [(1, "0123456789", None)]  # exactly the limit fits
    euros = "\u20ac".encode() * 4  # 12 bytes, 3 per character
    for limit in range(1, 12):
        [(_, text, error)] = lines(euros, max_line_bytes=limit)
        assert (text, error) == ("\u20ac" * (limit // 3), "line_too_long"), limit
        assert utf8_prefix(euros, limit) == euros[: limit // 3 * 3]
    for chunk_bytes in (1, 3, 7):  # however the stream is chunked
        assert lines(b"ab\xc3\xa9cd\nx", max_line_bytes=3, chunk_bytes=chunk_bytes) == [
            (1, "ab", "line_too_long"),
            (2, "x", None),
        ]


def test_a_5_mib_line_keeps_its_first_mib():
    content = b"before\n" + b"y" * (5 * MIB) + b"\r\nafter"
    rows = lines(content)
    assert [(n, e) for n, _, e in rows] == [(1, None), (2, "line_too_long"), (3, None)]
    assert rows[1][1] == "y" * MIB and rows[2][1] == "after"


def test_a_50_mib_line_is_never_held_whole():
    """The line streams past in 64 KiB chunks made on the fly; memory stays near the 1 MiB kept."""

    def chunks():
        yield b"first\n"
        piece = b"z" * (1 << 16)
        for _ in range(50 * MIB // len(piece)):
            yield piece
        yield b"\nlast\n"

    tracemalloc.start()
    try:
        rows = [(line.number, len(line.text), line.error) for line in lines_of_chunks(chunks(), MIB)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == [(1, 5, None), (2, MIB, "line_too_long"), (3, 4, None)]
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"  # the 1 MiB kept, a few copies of it; never 50


# --- compression ------------------------------------------------------------------------------------

TEXT = b"".join(f"line {i} {random.Random(i).random()}\n".encode() for i in range(3000))
ORIGINAL = TEXT.decode().splitlines()


def test_compressed_files_are_recognised_by_their_bytes_not_their_name():
    half = len(TEXT) // 2
    for data in (
        gzip.compress(TEXT),
        gzip.compress(TEXT[:half]) + gzip.compress(TEXT[half:]),
        bz2.compress(TEXT),
        lzma.compress(TEXT),
        bz2.compress(TEXT[:half]) + bz2.compress(TEXT[half:]),
    ):
        assert texts(data) == ORIGINAL
    assert [
        compression(b) for b in (b"\x1f\x8b\x08", b"BZh91AY&SY", b"\xfd7zXZ\x00", b"(\xb5/\xfd", b"PK\x03\x04")
    ] == ["gzip", "bzip2", "xz", "zstd", "zip"]
    assert compression(b"BZh... a text line") is None and texts(b"BZh... a text line\n") == ["BZh... a text line"]
    assert lines(b"(\xb5/\xfd\x00\x00") == [(None, None, "unsupported_compression:zstd")]


@pytest.mark.parametrize(
    ("compress", "codec", "cut"),
    [
        (gzip.compress, "gzip", 2 / 3),
        (lzma.compress, "xz", 1 / 2),
        (bz2.compress, "bzip2", 0.9),
    ],
)
def test_a_truncated_file_keeps_the_lines_before_the_damage_then_says_so(compress, codec, cut):
    data = compress(TEXT)
    rows = lines(data[: int(len(data) * cut)])
    *read, (number, text, error) = rows
    assert (number, text, error) == (None, None, f"truncated_file:{codec} stream ends before its end marker")
    assert [n for n, _, _ in read] == list(range(1, len(read) + 1))
    assert [t for _, t, _ in read[:-1]] == ORIGINAL[: max(len(read) - 1, 0)]  # the last one read may be cut
    if codec != "bzip2":  # bzip2 decodes whole 900 kB blocks: a cut block yields nothing of itself
        assert len(read) > 1000


def test_a_corrupt_file_keeps_what_decoded_then_says_so():
    data = bytearray(gzip.compress(TEXT))
    data[-6] ^= 0xFF  # the CRC-32 of the member
    *read, last = lines(bytes(data))
    assert [t for _, t, _ in read] == ORIGINAL
    assert last[:2] == (None, None) and last[2] == "corrupt_file:gzip CRC check failed"
    garbage = gzip.compress(b"a\nb\n") + b"not gzip at all"
    assert lines(garbage) == [(1, "a", None), (2, "b", None), (None, None, "corrupt_file:gzip Not a gzipped file")]


# --- csv --------------------------------------------------------------------------------------------


def records(text: str | bytes, declared=("id", "name"), max_record_bytes: int = MIB, **options) -> list[tuple]:
    data = text.encode() if isinstance(text, str) else text
    found = read_file(data, max_record_bytes, CsvOptions(**options), declared)
    return [(r.number, r.text, r.fields, r.extra, r.error) for r in found]


def test_csv_records_span_lines_and_each_line_is_in_exactly_one():
    text = 'id,name\n1,"two\nlines"\n2,plain\n3,"a ""quoted"" word"\n4\n\n5,x,y\n6,"bad"quote\n7,last'
    assert records(text) == [
        (2, '1,"two\nlines"', ("1", "two\nlines"), None, None),
        (4, "2,plain", ("2", "plain"), None, None),
        (5, '3,"a ""quoted"" word"', ("3", 'a "quoted" word'), None, None),
        (6, "4", None, None, "wrong_field_count:1"),
        (7, "", None, None, "empty_line"),
        (8, "5,x,y", None, None, "wrong_field_count:3"),
        (9, '6,"bad"quote', None, None, "malformed_csv_row"),
        (10, "7,last", ("7", "last"), None, None),
    ]


def test_a_csv_quote_never_closed_swallows_at_most_the_record_limit():
    text = 'id,name\n1,"open\n' + "".join(f"{i},line\n" for i in range(2, 12))
    found = records(text, max_record_bytes=40)
    assert [(n, e) for n, _, _, _, e in found] == [(2, "record_too_long"), *[(n, None) for n in range(7, 13)]]
    spans = [(n, n + t.count("\n")) for n, t, _, _, _ in found]
    assert spans[0][0] == 2 and spans[-1][1] == 12
    assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:]))  # every line in exactly one record
    assert records('id,name\n1,"never closed') == [(2, '1,"never closed', None, None, "malformed_csv_row")]


def test_csv_header_maps_fields_by_name():
    assert records("name,id\nbob,1\n") == [(2, "bob,1", ("1", "bob"), None, None)]
    assert records("id,extra col,name\n1,x,bob\n") == [(2, "1,x,bob", ("1", "bob"), '{"extra_col": "x"}', None)]
    assert records("id\n1\n") == [(2, "1", ("1", None), None, None)]  # a declared column the file lacks: null
    assert records("a,b\n1,2\n", declared=()) == [(2, "1,2", (), '{"a": "1", "b": "2"}', None)]
    assert records("1,bob\n2,ann\n", header=False) == [
        (1, "1,bob", ("1", "bob"), None, None),
        (2, "2,ann", ("2", "ann"), None, None),
    ]
    assert records("x;y\n;NULL\n", declared=("x", "y"), delimiter=";", null_value="NULL") == [
        (2, ";NULL", ("", None), None, None)
    ]


def test_a_csv_header_that_names_no_declared_column_rescues_the_file():
    assert records("1,bob\n2,ann\n") == [
        (1, "1,bob", None, None, "header_mismatch"),
        (2, "2,ann", None, None, "header_mismatch"),
    ]


def test_csv_damage_and_long_lines_end_the_record_they_cut():
    data = gzip.compress(b"id,name\n1,a\n2,b\n" * 2000)
    found = records(data[: len(data) // 2])
    assert found[-1][0] is None and found[-1][4] == "truncated_file:gzip stream ends before its end marker"
    found = records(b'id,name\n1,"long\n' + b"x" * 50 + b'"\n2,b\n', max_record_bytes=20)
    assert [(n, e) for n, _, _, _, e in found] == [(2, "malformed_csv_row"), (3, "line_too_long"), (4, None)]


def test_a_csv_reader_built_on_lines_handles_file_level_lines():
    damaged = [Line(1, "id,name"), Line(2, "1,a"), Line(None, None, "corrupt_file:gzip x")]
    found = list(csv_records(damaged, CsvOptions(), ("id", "name"), MIB))
    assert [(r.number, r.fields, r.error) for r in found] == [
        (2, ("1", "a"), None),
        (None, None, "corrupt_file:gzip x"),
    ]


# --- Spark ------------------------------------------------------------------------------------------


def read_folder(spark, folder, fmt):
    files = spark.read.format("binaryFile").load(str(folder))
    return read_files(spark, files, fmt)


def test_read_files_lands_every_line_of_a_batch_whatever_its_files(spark, tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "a.log").write_bytes(b"one\r\ntwo\n\nfour")
    data = gzip.compress(TEXT)
    (folder / "cut.log.gz").write_bytes(data[: len(data) // 2])
    (folder / "empty.log").write_bytes(b"")
    (folder / "image.png").write_bytes(bytes(random.Random(7).randrange(256) for _ in range(5000)))
    (folder / "long5.log").write_bytes(b"x\n" + b"5" * (5 * MIB) + b"\ny\n")
    with gzip.open(folder / "long50.log.gz", "wb", compresslevel=1) as out:
        out.write(b"x\n" + b"b" * (50 * MIB) + b"\ny\n")
    os.utime(folder / "a.log", (1_700_000_000, 1_700_000_000.25))

    rows = (
        read_folder(spark, folder, FileFormat("text"))
        .selectExpr(
            "substring(value, 1, 20) AS head",
            "length(value) AS size",
            "line_number",
            "source_file",
            "source_modified_at",
            "parse_error",
        )
        .collect()
    )
    by_file: dict[str, list] = {}
    for row in rows:
        by_file.setdefault(row.source_file.rsplit("/", 1)[1], []).append(row)
    assert sorted(by_file) == ["a.log", "cut.log.gz", "image.png", "long5.log", "long50.log.gz"]
    a = sorted(by_file["a.log"], key=lambda r: r.line_number)
    assert [(r.line_number, r.head, r.parse_error) for r in a] == [
        (1, "one", None),
        (2, "two", None),
        (3, "", None),
        (4, "four", None),
    ]
    assert a[0].source_file.startswith("file:") and a[0].source_file.endswith("/landing/a.log")
    assert a[0].source_modified_at.replace(tzinfo=timezone.utc) == datetime.fromtimestamp(
        1_700_000_000.25, timezone.utc
    )
    cut = sorted(by_file["cut.log.gz"], key=lambda r: (r.line_number is None, r.line_number))
    assert cut[-1].line_number is None and cut[-1].parse_error.startswith("truncated_file:gzip")
    assert len(cut) > 1000 and all(r.parse_error is None for r in cut[:-1])
    assert len(by_file["image.png"]) == len((folder / "image.png").read_bytes().splitlines())
    for name in ("long5.log", "long50.log.gz"):  # 50 MiB decompressed as a stream, never held whole
        found = sorted((r.line_number, r.size, r.parse_error) for r in by_file[name])
        assert found == [(1, 1, None), (2, MIB, "line_too_long"), (3, 1, None)], name


def test_read_files_gives_csv_records_and_the_fields_parse_lines_needs(spark, tmp_path):
    (tmp_path / "people.csv").write_bytes(b'id,name,age\n1,"Ann\nSmith",40\n2,Bob\n')
    fmt = FileFormat("csv", columns=(("id", "bigint"), ("name", "string")))
    rows = read_folder(spark, tmp_path, fmt).orderBy("line_number").collect()
    assert [(r.line_number, r.value, r["__csv_fields"], r["__csv_extra"], r.parse_error) for r in rows] == [
        (2, '1,"Ann\nSmith",40', ["1", "Ann\nSmith"], json.dumps({"age": "40"}), None),
        (4, "2,Bob", None, None, "wrong_field_count:2"),
    ]


def test_read_files_works_on_the_micro_batches_of_a_file_stream(spark, tmp_path):
    folder, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "a.log").write_bytes(b"a1\na2\n")
    (folder / "b.log.gz").write_bytes(gzip.compress(b"b1\n"))
    landed: list[tuple] = []

    def land(batch, batch_id):
        rows = read_files(batch.sparkSession, batch, FileFormat("text")).collect()
        landed.extend((r.source_file.rsplit("/", 1)[1], r.line_number, r.value) for r in rows)

    stream = (
        spark.readStream.format("binaryFile")
        .schema("path string, modificationTime timestamp, length bigint, content binary")
        .load(str(folder))
    )
    query = (
        stream.writeStream.foreachBatch(land)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    assert sorted(landed) == [("a.log", 1, "a1"), ("a.log", 2, "a2"), ("b.log.gz", 1, "b1")]
