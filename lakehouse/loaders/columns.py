"""Which columns both loaders can turn into tensors, and the error naming those they cannot."""

from __future__ import annotations

from typing import Mapping, Sequence

# Delta's (and Spark's ``DataType.typeName()``) names of the types a tensor can hold.
TENSOR_TYPES = frozenset({"byte", "short", "integer", "long", "float", "double", "boolean"})


class UnsupportedColumnError(TypeError):
    """A column has a type that cannot become a tensor."""


def spark_field_types(df) -> dict[str, str]:
    """A Spark DataFrame's columns and their type names, as :func:`tensor_columns` takes them."""
    return {f.name: f.dataType.typeName() for f in df.schema.fields}


def tensor_columns(
    fields: Mapping[str, str], columns: Sequence[str] | None = None, encoded: Sequence[str] = ()
) -> list[str]:
    """The columns to load: ``columns`` checked, or every column when none are named.

    ``fields`` maps each column of the table to its Delta type name (``long``, ``binary``, ``date``...;
    :func:`spark_field_types` gives them for a DataFrame). ``encoded`` names binary columns (images) that
    reach the loader's transform as bytes, for it to decode. Raises :class:`UnsupportedColumnError`
    naming each other column whose type is not numeric or boolean, and each ``encoded`` column that is
    not binary.
    """
    wanted = list(columns) if columns else list(fields)
    missing = [name for name in [*wanted, *encoded] if name not in fields]
    if missing:
        raise KeyError(f"no such columns: {missing}; the table has {sorted(fields)}")
    not_binary = [f"{name} ({fields[name]})" for name in encoded if fields[name] != "binary"]
    if not_binary:
        raise UnsupportedColumnError("encoded columns must be binary: " + ", ".join(not_binary))
    unsupported = [
        f"{name} ({fields[name]})" for name in wanted if name not in encoded and fields[name] not in TENSOR_TYPES
    ]
    if unsupported:
        raise UnsupportedColumnError(
            "cannot turn these columns into tensors: "
            + ", ".join(unsupported)
            + "; select numeric columns, or name binary image columns as encoded and decode them in a transform"
        )
    return wanted
