"""Databricks source notebooks -> Jupyter ``.ipynb`` files (nbformat 4).

``%md`` cells become Markdown cells, ``%sql`` cells ``%%sql`` cells, and a first cell loads
:mod:`lakehouse.notebooks.magics`, which gives Jupyter what Databricks gives the notebook (``spark``,
``display``, ``dbutils``, ``%%sql``).
"""

from __future__ import annotations

from pathlib import Path

from lakehouse.notebooks.source import Cell, read_notebook

LOAD_MAGICS = "%load_ext lakehouse.notebooks.magics"


def to_notebook(cells: list[Cell], name: str):
    """An nbformat notebook holding ``cells``."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    notebook_cells = [new_code_cell(LOAD_MAGICS)]
    for cell in cells:
        if cell.kind == "md":
            notebook_cells.append(new_markdown_cell(cell.source))
        elif cell.kind == "python":
            notebook_cells.append(new_code_cell(cell.source))
        else:
            notebook_cells.append(new_code_cell(f"%%{cell.kind}\n{cell.source}"))
    notebook = new_notebook(
        cells=notebook_cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "lakehouse": {"exported_from": name},
        },
    )
    nbformat.validate(notebook)
    return notebook


def export_ipynb(path: Path, out_dir: Path | None = None) -> Path:
    """Write ``<stem>.ipynb`` beside the notebook (or into ``out_dir``); return its path."""
    import nbformat

    path = Path(path)
    target = (Path(out_dir) if out_dir else path.parent) / f"{path.stem}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(to_notebook(read_notebook(path), path.name), str(target))
    return target
