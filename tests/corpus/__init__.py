"""The hostile corpus: files no reader may choke on (see README.md beside this file).

The small files are committed here; the big ones are written by :func:`write_big_files` at test time.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from pathlib import Path

CORPUS_DIR = Path(__file__).parent
MIB = 1 << 20

# Damaged compressed files: the file-level reason each must give (after the lines read before the damage).
DAMAGED = {
    "truncated.log.gz": "truncated_file:gzip",
    "corrupt_crc.log.gz": "corrupt_file:gzip",
    "truncated.log.xz": "truncated_file:xz",
}
# Files nothing can be read from: only a file-level row.
UNREADABLE = {"zstd_magic.log.zst": "unsupported_compression:zstd"}
BIG_FILES = ("long_line_5mib.log", "long_line_50mib.log.gz", "deep_json_100k.jsonl")
DEEP_JSON_LEVELS = 100_000


def small_files() -> list[Path]:
    """The committed corpus files."""
    return sorted(p for p in CORPUS_DIR.iterdir() if p.is_file() and p.suffix not in (".py", ".md", ".pyc"))


def write_big_files(folder: Path) -> list[Path]:
    """Write the big corpus files into ``folder``: a 5 MiB line and a 50 MiB line (gzip-compressed, so the
    reader must bound a line it decompresses), each between ordinary lines, and JSON nested 100,000 deep."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BIG_FILES[0]).write_bytes(b"before\n" + b"x" * (5 * MIB) + b"\nafter\n")
    with gzip.open(folder / BIG_FILES[1], "wb", compresslevel=1) as out:
        out.write(b"before\n")
        chunk = "\u00e9".encode() * (MIB // 2)  # two-byte characters: the cut must fall between them
        for _ in range(50):
            out.write(chunk)
        out.write(b"\nafter\n")
    deep = "[" * DEEP_JSON_LEVELS + "]" * DEEP_JSON_LEVELS
    deep_object = '{"a":' * DEEP_JSON_LEVELS + "1" + "}" * DEEP_JSON_LEVELS
    (folder / BIG_FILES[2]).write_text(f'{{"ok": 1}}\n{deep}\n{deep_object}\n{{"ok": 2}}\n')
    return [folder / name for name in BIG_FILES]


def build(folder: Path) -> Path:
    """A folder holding the whole corpus (small files copied, big ones written)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in small_files():
        shutil.copy(path, folder / path.name)
    write_big_files(folder)
    return folder


def decompressed(path: Path) -> bytes:
    """The bytes of an undamaged corpus file, decompressed by what its content is (not its name)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    return data


def line_count(path: Path) -> int:
    """How many lines an undamaged file has: ``bytes.splitlines`` splits at \\n, \\r\\n and lone \\r,
    and a final line end starts no new line (the rules the reader must follow)."""
    return len(decompressed(path).splitlines())
