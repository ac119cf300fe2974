"""A project's own jobs: the Python files of its ``jobs/`` folder, each with a ``main(argv) -> int``.

They run with ``lakehouse job NAME ...`` and ``spark-submit jobs/NAME.py ...``; the pipeline's steps
do not need one (``lakehouse step NAME`` / ``spark-submit jobs/run.py NAME`` runs any of those).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from lakehouse.project.definitions import import_project_file
from lakehouse.project.layout import JOBS_DIR


def job_names(root: Path) -> list[str]:
    """The jobs of the project at ``root`` (``jobs/*.py``, not starting with ``_``)."""
    folder = Path(root) / JOBS_DIR
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")) if folder.is_dir() else []


def load_job(root: Path, name: str) -> ModuleType:
    """Import ``jobs/<name>.py`` of the project; ``KeyError`` naming its jobs when there is none."""
    path = Path(root) / JOBS_DIR / f"{name}.py"
    if not path.is_file():
        jobs = ", ".join(job_names(root)) or "none"
        raise KeyError(f"no job {name!r} in {Path(root) / JOBS_DIR}; jobs: {jobs} (steps run with `lakehouse step`)")
    return import_project_file(path, Path(root))
