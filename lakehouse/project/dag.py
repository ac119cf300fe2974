"""The pipeline as a graph, derived from the project's declarations (never written by hand).

A table's ``upstreams`` are its edges; a step writes one or more tables (:mod:`lakehouse.project.steps`).
``lakehouse dag`` prints the graph, draws it (SVG, one column per layer) and writes an Airflow DAG.
"""

from __future__ import annotations

import re
import textwrap
from html import escape
from pathlib import Path

from lakehouse.project import Project
from lakehouse.project.layout import SOURCES_DIR, TABLES_DIR
from lakehouse.project.steps import Step
from lakehouse.project.tables import TableDeclaration

LAYERS = ("bronze", "silver", "gold")
LAYER_COLOURS = {"bronze": "#e8c39e", "silver": "#d9dde3", "gold": "#f2d675"}


def pipeline_tables(project: Project) -> list[TableDeclaration]:
    """The tables steps write, upstreams first (quarantine tables are drawn with their table)."""
    return [d for d in project.tables(include_quarantine=False) if d.step is not None and d.layer in LAYERS]


def format_dag(project: Project) -> str:
    """The graph as text: each step, what it reads, what it writes, in the order they run."""
    steps = list(project.steps)
    if not steps:
        return f"{project.root}: no steps yet (add a source: `lakehouse source add-files ...`)"
    width = max(len(step.name) for step in steps)
    indent = " " * (width + 9)
    lines = []

    def listed(label: str, names: tuple[str, ...]) -> None:
        text = textwrap.fill(
            ", ".join(names), 110, initial_indent=f"{'':<{width}}  {label:<7}", subsequent_indent=indent
        )
        lines.append(text)

    for step in steps:
        after = f"  after {', '.join(step.upstream_steps)}" if step.upstream_steps else "  (reads sources only)"
        lines.append(f"{step.name:<{width}}{after}")
        if step.inputs:
            listed("reads", step.inputs)
        listed("writes", step.outputs)
    return "\n".join(lines)


def render_svg(project: Project) -> str:
    """An SVG drawing of the table graph: one column per layer, an arrow from each upstream."""
    tables = pipeline_tables(project)
    box_width, box_height, row_gap, column_gap, margin = 250, 34, 10, 110, 20
    columns = {layer: [d for d in tables if d.layer == layer] for layer in LAYERS}
    position: dict[str, tuple[int, int]] = {}
    for column, layer in enumerate(LAYERS):
        for row, declaration in enumerate(columns[layer]):
            x = margin + column * (box_width + column_gap)
            y = margin + 30 + row * (box_height + row_gap)
            position[declaration.name] = (x, y)
    height = margin * 2 + 30 + max([1, *(len(c) for c in columns.values())]) * (box_height + row_gap)
    width = margin * 2 + len(LAYERS) * box_width + (len(LAYERS) - 1) * column_gap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for column, layer in enumerate(LAYERS):
        x = margin + column * (box_width + column_gap) + box_width // 2
        parts.append(
            f'<text x="{x}" y="{margin + 12}" text-anchor="middle" font-weight="bold" font-size="14">{layer}</text>'
        )
    for declaration in tables:
        x2, y2 = position[declaration.name]
        for upstream in declaration.upstreams:
            if upstream not in position:
                continue
            x1, y1 = position[upstream]
            start, end = (x1 + box_width, y1 + box_height // 2), (x2, y2 + box_height // 2)
            bend = (end[0] - start[0]) // 2
            parts.append(
                f'<path d="M {start[0]} {start[1]} C {start[0] + bend} {start[1]}, {end[0] - bend} {end[1]}, '
                f'{end[0]} {end[1]}" fill="none" stroke="#555" stroke-width="1" marker-end="url(#arrow)"/>'
            )
    for declaration in tables:
        x, y = position[declaration.name]
        quarantine = " + quarantine" if declaration.has_quarantine else ""
        parts += [
            f'<rect x="{x}" y="{y}" width="{box_width}" height="{box_height}" rx="5" '
            f'fill="{LAYER_COLOURS[declaration.layer]}" stroke="#444"/>',
            f'<text x="{x + 8}" y="{y + 14}" font-weight="bold">{escape(declaration.name)}</text>',
            f'<text x="{x + 8}" y="{y + 28}" fill="#333" font-size="10">'
            f"{escape(_drawn_step(declaration))}{quarantine}</text>",
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _drawn_step(declaration: TableDeclaration) -> str:
    """What the box says writes the table: its definition file, or the step that derives it."""
    if declaration.step == declaration.name and declaration.defined_in is not None:
        parts = declaration.defined_in.parts
        # from the project's tables/ or sources/ folder on: the same drawing wherever the project lives
        start = max((i for i, part in enumerate(parts) if part in (TABLES_DIR, SOURCES_DIR)), default=len(parts) - 1)
        return "/".join(parts[start:])
    return declaration.step or ""


def write_svg(project: Project, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(project))
    return path


AIRFLOW_DAG_ID = "lakehouse_pipeline"


def _variable(step: Step) -> str:
    return re.sub(r"\W", "_", step.name)


def render_airflow_dag(project: Project) -> str:
    """An Apache Airflow DAG file with one task per step and the derived dependencies.

    Each task runs ``lakehouse run --select <step> --no-upstream``: that one step, skipped when its inputs,
    code and configuration are unchanged, recorded in ops.runs like any other run.
    """
    steps = list(project.steps)
    by_name = {step.name: step for step in steps}
    lines = [
        '"""The lakehouse pipeline for Apache Airflow: one task per step, dependencies from the table declarations.',
        "",
        "Generated by `lakehouse dag --airflow dags/lakehouse_pipeline.py`; regenerate instead of editing.",
        "Set LAKEHOUSE_HOME (the platform's clone, set up with `make setup`), LAKEHOUSE_PROJECT (the project",
        "folder) and LAKEHOUSE_CONF (its environment file) on the workers.",
        '"""',
        "",
        "import os",
        "from datetime import datetime",
        "",
        "from airflow import DAG",
        "",
        "try:",
        "    from airflow.providers.standard.operators.bash import BashOperator  # Airflow 3",
        "except ImportError:  # Airflow 2",
        "    from airflow.operators.bash import BashOperator",
        "",
        'HOME = os.environ.get("LAKEHOUSE_HOME", "/opt/lakehouse")',
        'PROJECT = os.environ.get("LAKEHOUSE_PROJECT", HOME)',
        'CONF_FILE = os.environ.get("LAKEHOUSE_CONF", f"{PROJECT}/conf/local.yaml")',
        "",
        "",
        "def step(name):",
        '    """A task running one step of the pipeline (skipped inside when nothing it reads changed)."""',
        "    return BashOperator(",
        "        task_id=name,",
        '        bash_command=f"{HOME}/.venv/bin/lakehouse --project {PROJECT} run --select {name} --no-upstream "',
        '        f"--conf-file {CONF_FILE}",',
        "    )",
        "",
        "",
        "with DAG(",
        f'    dag_id="{AIRFLOW_DAG_ID}",',
        '    schedule="@daily",',
        "    start_date=datetime(2026, 11, 1),",
        "    catchup=False,",
        "    max_active_runs=1,",
        '    tags=["lakehouse"],',
        ") as dag:",
    ]
    lines += [f'    {_variable(s)} = step("{s.name}")' for s in steps]
    lines.append("")
    for s in steps:
        for upstream in s.upstream_steps:
            lines.append(f"    {_variable(by_name[upstream])} >> {_variable(s)}")
    return "\n".join(lines) + "\n"
