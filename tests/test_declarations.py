import pytest
from pyspark.sql import types as T

from lakehouse.quality.suites import load_suite
from lakehouse.pipeline import available_jobs, ordered_declarations, pipeline_job_names
from lakehouse.schemas import SchemaFileError, load_schema, parse_type
from lakehouse.tables import DECLARATIONS, LAYERS, all_tables, get_table


@pytest.mark.parametrize("declaration", all_tables(), ids=lambda d: d.name)
def test_every_declaration_is_complete(declaration):
    assert declaration.layer in LAYERS
    assert len(declaration.schema.fields) > 0
    assert declaration.job is None or declaration.job in available_jobs()
    for key in (*declaration.keys, *declaration.partition_by):
        assert key in declaration.schema.names, f"{declaration.name}: {key} is not a column"
    if declaration.expectations_file:
        suite = load_suite(declaration)  # raises on a rule that does not fit the table
        assert suite.rules and all(rule.action in ("warn", "quarantine", "fail") for rule in suite.rules)


def test_upstreams_come_first_and_jobs_follow_the_dag():
    order = [d.name for d in ordered_declarations()]
    assert sorted(order) == sorted(d.name for d in DECLARATIONS)
    for declaration in DECLARATIONS:
        for upstream in declaration.upstreams:
            assert order.index(upstream) < order.index(declaration.name)
    jobs = pipeline_job_names()
    assert set(jobs) == {d.job for d in DECLARATIONS if d.job}
    assert jobs.index("ingest_image_manifests") < jobs.index("build_silver_images")
    assert pipeline_job_names(select=["gold.user_activity_daily"]) == [
        "ingest_app_events", "build_silver_events", "build_gold_user_activity"
    ]


def test_quarantine_table_is_derived_from_its_parent():
    quarantine = get_table("silver.events").quarantine
    assert quarantine.name == "silver.events_quarantine"
    assert quarantine.schema.names == ["record", "reason", "rule", "source", "quarantined_at", "run_id"]
    assert get_table("silver.events_quarantine") == quarantine
    with pytest.raises(ValueError):
        get_table("gold.user_activity_daily").quarantine


def test_unknown_table_lists_known_ones():
    with pytest.raises(KeyError, match="silver.events"):
        get_table("silver.nope")


def test_schema_types_parse_and_errors_name_file_and_column(tmp_path):
    assert parse_type("decimal(10, 2)") == T.DecimalType(10, 2)
    assert parse_type("array<bigint>") == T.ArrayType(T.LongType())
    (tmp_path / "t.yaml").write_text("columns:\n  - {name: a, type: strng}\n")
    with pytest.raises(SchemaFileError, match=r"t.yaml: column 'a': unknown column type 'strng'"):
        load_schema("t.yaml", tmp_path)
    (tmp_path / "d.yaml").write_text("columns:\n  - {name: a, type: int}\n  - {name: a, type: int}\n")
    with pytest.raises(SchemaFileError, match="listed twice"):
        load_schema("d.yaml", tmp_path)
    with pytest.raises(SchemaFileError, match="not found"):
        load_schema("missing.yaml", tmp_path)


def test_schema_keeps_nullability_and_comments():
    field = get_table("silver.events").schema["event_id"]
    assert field.nullable is False
    assert "dedup" in field.metadata["comment"]
