"""Which columns both loaders can turn into tensors, and the error naming those they cannot."""

from __future__ import annotations

from typing import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import types as T

TENSOR_TYPES = (
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
    T.FloatType,
    T.DoubleType,
    T.BooleanType,
)


class UnsupportedColumnError(TypeError):
    """A column has a type that cannot become a tensor."""


def tensor_columns(df: DataFrame, columns: Sequence[str] | None = None, encoded: Sequence[str] = ()) -> list[str]:
    """The columns to load: ``columns`` checked, or every column when none are named.

    ``encoded`` names binary columns (images) that reach the loader's transform as bytes, for it to
    decode. Raises :class:`UnsupportedColumnError` naming each other column whose type is not
    numeric or boolean, and each ``encoded`` column that is not binary.
    """
    fields = {f.name: f.dataType for f in df.schema.fields}
    wanted = list(columns) if columns else list(fields)
    missing = [name for name in [*wanted, *encoded] if name not in fields]
    if missing:
        raise KeyError(f"no such columns: {missing}; the table has {sorted(fields)}")
    not_binary = [f"{name} ({fields[name].simpleString()})" for name in encoded if not isinstance(fields[name], T.BinaryType)]
    if not_binary:
        raise UnsupportedColumnError("encoded columns must be binary: " + ", ".join(not_binary))
    unsupported = [
        f"{name} ({fields[name].simpleString()})"
        for name in wanted
        if name not in encoded and not isinstance(fields[name], TENSOR_TYPES)
    ]
    if unsupported:
        raise UnsupportedColumnError(
            "cannot turn these columns into tensors: " + ", ".join(unsupported)
            + "; select numeric columns, or name binary image columns as encoded and decode them in a transform"
        )
    return wanted
