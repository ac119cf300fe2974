"""The pipeline graph derived from the declarations: steps, their order, the drawing the README shows."""

import xml.etree.ElementTree as ElementTree

from lakehouse.dag import pipeline_steps, pipeline_tables, render_svg
from lakehouse.paths import PROJECT_ROOT
from lakehouse.tables import DECLARATIONS


def test_every_written_table_belongs_to_one_step_that_runs_after_its_writers():
    steps = pipeline_steps()
    position = {step.job: index for index, step in enumerate(steps)}
    writer = {}
    for step in steps:
        for table in step.outputs:
            assert table not in writer, f"{table} written by {writer.get(table)} and {step.job}"
            writer[table] = step.job
    assert set(writer) == {d.name for d in DECLARATIONS if d.job is not None}
    for step in steps:
        assert set(step.upstream_jobs) == {writer[name] for name in step.inputs}
        assert all(position[job] < position[step.job] for job in step.upstream_jobs), step.job
        assert not set(step.inputs) & set(step.outputs)
    popularity = next(step for step in steps if step.job == "build_gold_photo_popularity")
    assert {"build_image_predictions", "build_silver_events", "build_silver_snapshots"} <= set(popularity.upstream_jobs)
    assert next(step for step in steps if step.job == "ingest_app_events").inputs == ()


def test_the_readme_drawing_is_the_current_graph():
    drawn = (PROJECT_ROOT / "docs" / "dag.svg").read_text()
    assert drawn == render_svg(), "docs/dag.svg is stale: run `lakehouse dag --svg docs/dag.svg`"
    svg = ElementTree.fromstring(drawn)
    namespace = "{http://www.w3.org/2000/svg}"
    tables = pipeline_tables()
    names = {text.text for text in svg.iter(f"{namespace}text")}
    assert {d.name for d in tables} <= names and {"bronze", "silver", "gold"} <= names
    drawn_names = {d.name for d in tables}
    edges = sum(1 for d in tables for upstream in d.upstreams if upstream in drawn_names)
    assert len([p for p in svg.iter(f"{namespace}path") if p.get("marker-end")]) == edges > 20
