"""Every table the demo project declares is complete, and the schema files parse."""

import pytest
from pyspark.sql import types as T

from helpers import DEMO_PROJECT, demo_table
from lakehouse.project import load_project
from lakehouse.project.schemas import SchemaFileError, load_schema, parse_type
from lakehouse.project.tables import LAYERS
from lakehouse.quality.suites import load_suite

DEMO = load_project(DEMO_PROJECT)


@pytest.mark.parametrize("declaration", DEMO.tables(), ids=lambda d: d.name)
def test_every_declaration_is_complete(declaration):
    assert declaration.layer in LAYERS
    schema = declaration.schema
    assert schema is not None and len(schema.fields) > 0  # every demo table declares its columns
    assert declaration.step is None or declaration.step in {step.name for step in DEMO.steps}
    for key in (*declaration.keys, *declaration.partition_by):
        assert key in schema.names, f"{declaration.name}: {key} is not a column"
    if declaration.expectations_file:
        suite = load_suite(declaration)  # raises on a rule that does not fit the table
        assert suite.rules and all(rule.action in ("warn", "quarantine", "fail") for rule in suite.rules)


def test_quarantine_table_is_derived_from_its_parent():
    quarantine = demo_table("silver.events").quarantine
    assert quarantine.name == "silver.events_quarantine"
    assert quarantine.schema.names == ["record", "reason", "rule", "source", "quarantined_at", "run_id"]
    assert demo_table("silver.events_quarantine") == quarantine
    with pytest.raises(ValueError):
        demo_table("gold.user_activity_daily").quarantine


def test_unknown_table_names_close_ones():
    with pytest.raises(KeyError, match="silver.events"):
        demo_table("silver.event")


def test_schema_types_parse_and_errors_name_file_and_column(tmp_path):
    assert parse_type("decimal(10, 2)") == T.DecimalType(10, 2)
    assert parse_type("array<bigint>") == T.ArrayType(T.LongType())
    (tmp_path / "t.yaml").write_text("columns:\n  - {name: a, type: strng}\n")
    with pytest.raises(SchemaFileError, match=r"t.yaml: column 'a': unknown column type 'strng'"):
        load_schema(tmp_path / "t.yaml")
    (tmp_path / "d.yaml").write_text("columns:\n  - {name: a, type: int}\n  - {name: a, type: int}\n")
    with pytest.raises(SchemaFileError, match="listed twice"):
        load_schema(tmp_path / "d.yaml")
    with pytest.raises(SchemaFileError, match="not found"):
        load_schema(tmp_path / "missing.yaml")


def test_schema_keeps_nullability_and_comments():
    field = demo_table("silver.events").schema["event_id"]
    assert field.nullable is False
    assert "dedup" in field.metadata["comment"]
