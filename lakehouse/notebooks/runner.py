"""Run a Databricks source notebook top to bottom against the local lakehouse.

The cells get what Databricks gives them: ``spark``, ``display()``, ``displayHTML()``, ``%sql`` cells
(whose last result is ``_sqldf`` in Python, as on Databricks; ``${name}`` is a widget's value),
``%md`` cells, and ``dbutils.widgets`` for parameters. Figures are saved as PNG files; tables shown with
``display()`` are printed. The run stops at the first failing cell, as "Run all" does, and the result
names it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lakehouse.notebooks.source import Cell, read_notebook

DISPLAY_ROWS = 20


class Widgets:
    """``dbutils.widgets`` locally: a widget's value is the runner's parameter, else its default."""

    def __init__(self, parameters: Mapping[str, str]):
        self._parameters = dict(parameters)
        self._values: dict[str, str] = {}

    def _define(self, name: str, default: str, *args, **kwargs) -> None:
        self._values[name] = self._parameters.get(name, default)

    text = dropdown = combobox = multiselect = _define

    def get(self, name: str) -> str:
        if name not in self._values and name not in self._parameters:
            raise ValueError(f"no widget named {name!r}")
        return self._values.get(name, self._parameters.get(name))

    def removeAll(self) -> None:  # noqa: N802 - Databricks' name
        self._values.clear()


class LocalDbutils:
    """The part of Databricks' ``dbutils`` the notebooks use."""

    def __init__(self, parameters: Mapping[str, str]):
        self.widgets = Widgets(parameters)


@dataclass
class NotebookRun:
    """What a run did: cells run, figures saved, the printed output, and the failing cell if any."""

    path: Path
    cells_total: int
    cells_run: int = 0
    seconds: float = 0.0
    figures: list[Path] = field(default_factory=list)
    output: str = ""
    failed_cell: Cell | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed_cell is None

    def summary(self) -> str:
        head = (
            f"{self.path.name}: {self.cells_run}/{self.cells_total} cells in {self.seconds:.1f}s, "
            f"{len(self.figures)} figures"
        )
        if self.ok:
            return head
        return (
            f"{head}\nFAILED at cell {self.failed_cell.index} ({self.failed_cell.kind}: {self.failed_cell.title}):\n"
            f"{self.error}"
        )


class _Display:
    """``display()``: Spark and pandas frames are printed, matplotlib figures saved."""

    def __init__(self, out: io.StringIO, save_figure):
        self._out = out
        self._save_figure = save_figure

    def __call__(self, obj: Any, *args, **kwargs) -> None:
        from pyspark.sql import DataFrame

        if isinstance(obj, DataFrame):
            rows = obj.limit(DISPLAY_ROWS + 1).toPandas()
            self._out.write(rows.head(DISPLAY_ROWS).to_string(index=False) + "\n")
            if len(rows) > DISPLAY_ROWS:
                self._out.write(f"(first {DISPLAY_ROWS} rows)\n")
        elif hasattr(obj, "savefig"):
            self._save_figure(obj)
        elif hasattr(obj, "to_string"):
            self._out.write(obj.head(DISPLAY_ROWS).to_string() + "\n")
        else:
            self._out.write(repr(obj) + "\n")


def run_notebook(
    path: Path,
    spark,
    config=None,
    parameters: Mapping[str, str] | None = None,
    out_dir: Path | None = None,
) -> NotebookRun:
    """Run every cell of the notebook at ``path`` in one namespace; stop at the first error.

    The cells see ``config``'s project as the current one (``lakehouse.project.find_project_root``).
    """
    import matplotlib

    matplotlib.use("Agg")  # no screen: figures go to files
    import matplotlib.pyplot as plt

    path = Path(path)
    cells = read_notebook(path)
    out_dir = Path(out_dir) if out_dir else Path(config.warehouse if config else ".") / "_notebooks"
    out_dir = out_dir / path.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    run = NotebookRun(path, len(cells))
    printed = io.StringIO()

    def save_figure(figure) -> None:
        target = out_dir / f"figure-{len(run.figures) + 1:02d}.png"
        figure.savefig(target, dpi=80, bbox_inches="tight")
        plt.close(figure)
        run.figures.append(target)

    display = _Display(printed, save_figure)
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "spark": spark,
        "display": display,
        "displayHTML": lambda html: printed.write(str(html) + "\n"),
        "dbutils": LocalDbutils(parameters or {}),
    }
    started = time.monotonic()
    with _current_project(config):
        for cell in cells:
            printed.write(f"--- cell {cell.index} ({cell.kind}) ---\n")
            try:
                with contextlib.redirect_stdout(printed):
                    _run_cell(cell, namespace, spark, display)
                for number in plt.get_fignums():  # figures a cell drew without display()
                    save_figure(plt.figure(number))
            except Exception:
                run.failed_cell = cell
                run.error = traceback.format_exc(limit=-3)
                break
            run.cells_run += 1
    plt.close("all")
    run.seconds = time.monotonic() - started
    run.output = printed.getvalue()
    (out_dir / "output.txt").write_text(run.output + ("\n" + run.summary() if not run.ok else ""))
    return run


@contextlib.contextmanager
def _current_project(config):
    """``config``'s project as the one cells find (``$LAKEHOUSE_PROJECT``) while they run."""
    previous = os.environ.get("LAKEHOUSE_PROJECT")
    if config is not None:
        os.environ["LAKEHOUSE_PROJECT"] = str(config.project_root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LAKEHOUSE_PROJECT", None)
        else:
            os.environ["LAKEHOUSE_PROJECT"] = previous


def _run_cell(cell: Cell, namespace: dict[str, Any], spark, display) -> None:
    if cell.kind == "python":
        exec(compile(cell.source, f"<cell {cell.index}>", "exec"), namespace)
    elif cell.kind == "sql":
        result = None
        widgets = namespace["dbutils"].widgets
        source = re.sub(r"\$\{(\w+)\}", lambda match: widgets.get(match.group(1)), cell.source)
        for statement in split_sql(source):
            result = spark.sql(statement)
        if result is not None:
            namespace["_sqldf"] = result
            display(result)
    elif cell.kind == "md":
        print(cell.source)
    else:
        raise NotImplementedError(f"%{cell.kind} cells are not run by the local runner (only Python, %sql and %md)")


def split_sql(text: str) -> list[str]:
    """The statements of a ``%sql`` cell (``;``-separated; ``--`` comment lines dropped)."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]
