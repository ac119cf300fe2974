"""The pipeline's steps, read off the table declarations: each table's job, upstream jobs first."""

from __future__ import annotations

import importlib
from types import ModuleType

from lakehouse.tables import DECLARATIONS, TableDeclaration


def ordered_declarations() -> list[TableDeclaration]:
    """Declarations sorted so that every table comes after its upstreams (a topological order)."""
    by_name = {d.name: d for d in DECLARATIONS}
    ordered: list[TableDeclaration] = []
    visiting: set[str] = set()

    def visit(declaration: TableDeclaration) -> None:
        if declaration in ordered:
            return
        if declaration.name in visiting:
            raise ValueError(f"declarations form a cycle through {declaration.name}")
        visiting.add(declaration.name)
        for upstream in declaration.upstreams:
            if upstream not in by_name:
                raise ValueError(f"{declaration.name} names an undeclared upstream {upstream!r}")
            visit(by_name[upstream])
        visiting.discard(declaration.name)
        ordered.append(declaration)

    for declaration in DECLARATIONS:
        visit(declaration)
    return ordered


def upstream_closure(table_names: list[str]) -> set[str]:
    """The named tables and every table they are built from, transitively."""
    by_name = {d.name: d for d in DECLARATIONS}
    wanted: set[str] = set()
    pending = list(table_names)
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        if name not in by_name:
            raise KeyError(f"no declared table {name!r}")
        wanted.add(name)
        pending.extend(by_name[name].upstreams)
    return wanted


def pipeline_job_names(select: list[str] | None = None) -> list[str]:
    """The jobs that write the declared tables, each once, in dependency order; with ``select``,
    only the jobs of those tables and of their upstreams."""
    wanted = upstream_closure(select) if select else None
    names: list[str] = []
    for declaration in ordered_declarations():
        if wanted is not None and declaration.name not in wanted:
            continue
        if declaration.job is not None and declaration.job not in names:
            names.append(declaration.job)
    return names


def load_job(name: str) -> ModuleType:
    """Import ``jobs/<name>.py``; ``KeyError`` naming the available jobs when there is none."""
    try:
        return importlib.import_module(f"jobs.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"jobs.{name}":
            raise
        raise KeyError(f"no job {name!r}; jobs: {', '.join(available_jobs())}") from None


def available_jobs() -> list[str]:
    """Names of the modules in ``jobs/``."""
    from lakehouse.paths import JOBS_DIR

    return sorted(p.stem for p in JOBS_DIR.glob("*.py") if not p.stem.startswith("_"))
