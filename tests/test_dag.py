"""The pipeline graph derived from the declarations: steps, their order, the drawing the README shows."""

import xml.etree.ElementTree as ElementTree

from helpers import DEMO_PROJECT
from lakehouse.project import load_project
from lakehouse.project.dag import format_dag, pipeline_tables, render_svg

DEMO = load_project(DEMO_PROJECT)


def test_every_written_table_belongs_to_one_step_that_runs_after_its_writers():
    steps = list(DEMO.steps)
    position = {step.name: index for index, step in enumerate(steps)}
    writer = {}
    for step in steps:
        for table in step.outputs:
            assert table not in writer, f"{table} written by {writer.get(table)} and {step.name}"
            writer[table] = step.name
    assert set(writer) == {d.name for d in DEMO.tables() if d.step is not None}
    for step in steps:
        assert set(step.upstream_steps) == {writer[name] for name in step.inputs}
        assert all(position[upstream] < position[step.name] for upstream in step.upstream_steps), step.name
        assert not set(step.inputs) & set(step.outputs)
    popularity = next(step for step in steps if step.name == "gold.photo_popularity_training")
    assert {"silver.image_predictions", "silver.events", "silver.photos", "silver.follows"} <= set(
        popularity.upstream_steps
    )
    assert next(step for step in steps if step.name == "ingest_app_events").inputs == ()
    text = format_dag(DEMO)
    assert "gold.daily_active_users" in text and "after silver.events" in text


def test_the_readme_drawing_is_the_current_graph():
    drawn = (DEMO_PROJECT / "docs" / "dag.svg").read_text()
    assert drawn == render_svg(DEMO), "docs/dag.svg is stale: run `lakehouse dag --svg docs/dag.svg`"
    svg = ElementTree.fromstring(drawn)
    namespace = "{http://www.w3.org/2000/svg}"
    tables = pipeline_tables(DEMO)
    names = {text.text for text in svg.iter(f"{namespace}text")}
    assert {d.name for d in tables} <= names and {"bronze", "silver", "gold"} <= names
    assert "tables/gold/daily_active_users.sql" in names  # a definition is drawn with its file
    drawn_names = {d.name for d in tables}
    edges = sum(1 for d in tables for upstream in d.upstreams if upstream in drawn_names)
    assert len([p for p in svg.iter(f"{namespace}path") if p.get("marker-end")]) == edges > 20
