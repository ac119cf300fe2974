"""The pipeline's steps, derived from the declarations: what each step writes, reads and runs after.

A step writes one or more tables:

- ``ingest_<source>``: a source into its bronze table(s) (reads outside data, so it always runs and is
  incremental itself);
- ``silver.<table>`` of a database table: its current state and history, from its bronze snapshots;
- ``silver.<images>`` of an image source: the validated images and their references, from bronze;
- ``silver.<labels>`` of a labels source: the labels' history and agreement, from bronze;
- ``<layer>.<name>`` of a definition: that table.

Nothing here is written by hand: a table's upstreams are the step's inputs, and the steps writing those
inputs are the steps it runs after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STEP_KINDS = (
    "ingest_database",
    "ingest_files",
    "ingest_images",
    "ingest_labels",
    "snapshot_silver",
    "images_silver",
    "labels_silver",
    "definition",
)


@dataclass(frozen=True)
class Step:
    """One unit the orchestration runs: the tables it writes and the tables (written by other steps) it reads."""

    name: str
    kind: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...]
    upstream_steps: tuple[str, ...]
    files: tuple[Path, ...]  # the declarations its result depends on (part of its fingerprint)
    source: str | None = None  # the source it belongs to, for source-derived steps
    description: str = ""

    @property
    def reads_outside(self) -> bool:
        """True for steps that read a source outside the lakehouse (they are never skipped)."""
        return self.kind.startswith("ingest_")

    @property
    def job(self) -> str:
        """The name commits and run records carry (the step's name)."""
        return self.name


def ingest_step_name(source: str) -> str:
    return f"ingest_{source}"


def order_steps(steps: list[Step]) -> list[Step]:
    """``steps`` sorted so that each comes after the steps it reads from (stable otherwise);
    ``ValueError`` naming a cycle."""
    by_name = {step.name: step for step in steps}
    ordered: list[Step] = []
    done: set[str] = set()
    visiting: list[str] = []

    def visit(step: Step) -> None:
        if step.name in done:
            return
        if step.name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(step.name) :], step.name])
            raise ValueError(f"the table definitions form a cycle: {cycle}")
        visiting.append(step.name)
        for upstream in step.upstream_steps:
            visit(by_name[upstream])
        visiting.pop()
        done.add(step.name)
        ordered.append(step)

    for step in steps:
        visit(step)
    return ordered
