"""A few rows made in Python (a validation's results, a run's records) as a DataFrame, without a Spark job.

``spark.createDataFrame(rows, schema)`` ships the rows as an RDD and converts them in a Spark job: about
0.4 s on a 2-core machine (measured 2026-12-07), as much as the Delta append that follows, and the pipeline
makes one per validation and one per step. (Its Arrow path needs pyarrow >= 15, which the Petastorm pin
forbids.) Here the rows travel as one JSON literal that Spark parses into the declared types inside the plan
of the write itself.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Iterable, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T


def _plain(value: object) -> object:
    """``value`` as JSON that ``from_json`` reads back as the same Spark value."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"timestamps are written naive, in the session's time zone: {value!r}")
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def local_rows(spark: SparkSession, rows: Iterable[Sequence[object]], schema: T.StructType) -> DataFrame:
    """``rows`` (tuples in ``schema``'s column order) as a DataFrame of ``schema``'s columns and types."""
    records = [dict(zip(schema.names, map(_plain, row))) for row in rows]
    parsed = F.from_json(
        F.lit(json.dumps(records)), T.ArrayType(schema), {"timestampFormat": "yyyy-MM-dd HH:mm:ss[.SSSSSS]"}
    )
    return spark.range(0, 1, 1, numPartitions=1).select(F.inline(parsed)).select(*schema.names)
