"""Whole small files under the warehouse (model weights and their metadata, kept server checksums), local or on
any Hadoop filesystem.

Local paths (no scheme, or ``file:``) use plain file I/O; any other scheme (``s3a://``, ``hdfs://``)
goes through Hadoop's ``FileSystem`` of the active SparkSession, so models sit beside the tables
whatever the warehouse is.
"""

from __future__ import annotations

import re
from pathlib import Path

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file:"):
        return Path("/" + uri.removeprefix("file:").lstrip("/"))
    return None if _SCHEME.match(uri) else Path(uri)


def _hadoop(uri: str):
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RuntimeError(f"{uri}: a non-local location needs an active SparkSession (Hadoop filesystem)")
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def exists(uri: str) -> bool:
    """True when the file ``uri`` exists."""
    local = _local_path(uri)
    if local is not None:
        return local.is_file()
    fs, path = _hadoop(uri)
    return bool(fs.exists(path))


def read_bytes(uri: str) -> bytes:
    """The whole content of the file ``uri``."""
    local = _local_path(uri)
    if local is not None:
        return local.read_bytes()
    fs, path = _hadoop(uri)
    stream = fs.open(path)
    try:
        return bytes(stream.readAllBytes())
    finally:
        stream.close()


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` (parents created, an existing file replaced)."""
    local = _local_path(uri)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".partial")
        partial.write_bytes(data)
        partial.replace(local)  # readers never see half a file
        return
    fs, path = _hadoop(uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()
