"""Whether a database table changed since its last snapshot, asked of the database server instead of read.

PostgreSQL computes a checksum of a table's rows itself: the row count and two 60-bit sums of each row's md5
(sums do not depend on row order, so the same rows in any physical order give the same checksum). That takes
the server well under a second for hundreds of thousands of rows, and nothing crosses to Spark. The checksum
is kept beside the job's checkpoint with the bronze version its snapshot left. When the server gives the same
checksum and bronze is still at that version, the table is not read again.

Any doubt reads the table as before: another engine (no checksum), no checksum kept, bronze moved on
(restored, written by another run), the checksum query failing. A change between the checksum and the read
only makes the next run read once more. The checksum covers every column of the row, declared or not, so it
can only say "changed" too often (an undeclared column changed), never "unchanged" wrongly.
"""

from __future__ import annotations

import json

from pyspark.sql import SparkSession

from lakehouse.project.config import LakehouseConfig
from lakehouse.storage import small_files
from lakehouse.storage.catalog import current_version

_CHECKSUM_SQL = (
    "SELECT count(*) AS n,"
    " coalesce(sum(('x' || substr(h, 1, 15))::bit(60)::bigint::numeric), 0)::text AS a,"
    " coalesce(sum(('x' || substr(h, 17, 15))::bit(60)::bigint::numeric), 0)::text AS b"
    " FROM (SELECT md5(CAST(t AS text)) AS h FROM {table} AS t) AS hashed"
)


def server_checksum(spark: SparkSession, options: dict[str, str], qualified: str) -> str | None:
    """The server's checksum of the table ``qualified`` (quoted, as ``dbtable`` takes it); ``None`` when the
    database is not PostgreSQL or the query fails (then the table is read)."""
    from lakehouse.sources.jdbc import POSTGRESQL, engine_for

    if engine_for(options["url"]) is not POSTGRESQL:
        return None
    try:
        query = _CHECKSUM_SQL.format(table=qualified)
        row = spark.read.format("jdbc").options(**options).option("query", query).load().first()
    except Exception:  # noqa: BLE001 - no checksum is never an error: the table is read as before
        return None
    return f"{row.n}:{row.a}:{row.b}"


def _kept_uri(config: LakehouseConfig, job: str, table: str) -> str:
    return f"{config.checkpoint_path(job)}/server_checksums/{table}.json"


def unchanged(spark: SparkSession, config: LakehouseConfig, job: str, table: str, checksum: str | None) -> bool:
    """True when ``checksum`` is the one kept for bronze ``table`` and bronze is still at the version it left."""
    uri = _kept_uri(config, job, table)
    if checksum is None or not small_files.exists(uri):
        return False
    kept = json.loads(small_files.read_bytes(uri))
    return kept.get("checksum") == checksum and kept.get("bronze_version") == current_version(
        spark, config.table_path(table)
    )


def remember(config: LakehouseConfig, job: str, table: str, checksum: str | None, bronze_version: int | None) -> None:
    """Keep ``checksum`` as the one bronze ``table`` holds at ``bronze_version`` (nothing when either is unknown)."""
    if checksum is not None and bronze_version is not None:
        payload = {"checksum": checksum, "bronze_version": bronze_version}
        small_files.write_bytes(_kept_uri(config, job, table), json.dumps(payload).encode())
