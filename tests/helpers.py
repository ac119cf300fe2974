"""Assertions shared by tests.

pyspark 4.1's ``assertDataFrameEqual`` insists on pyarrow >= 15, but Petastorm needs pyarrow 14
(see README, "Pinned versions"), so DataFrames are compared here on their schema and sorted rows.
"""

from pyspark.sql import DataFrame


def sorted_rows(df: DataFrame) -> list[tuple]:
    return sorted((tuple(row) for row in df.collect()), key=repr)


def assert_same_rows(actual: DataFrame, expected: DataFrame, check_types: bool = True) -> None:
    """Same column names (and types), and the same rows in any order, duplicates counted."""
    assert actual.columns == expected.columns, f"columns {actual.columns} != {expected.columns}"
    if check_types:
        actual_types = [f.dataType for f in actual.schema.fields]
        expected_types = [f.dataType for f in expected.schema.fields]
        assert actual_types == expected_types, f"types {actual_types} != {expected_types}"
    assert sorted_rows(actual) == sorted_rows(expected)
