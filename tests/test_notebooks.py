"""Databricks source notebooks: parsing, the local runner's behaviour, the .ipynb export."""

import pytest

from lakehouse.notebooks.export import to_notebook
from lakehouse.notebooks.runner import run_notebook, split_sql
from lakehouse.notebooks.source import NotebookFormatError, parse_notebook

NOTEBOOK = """# Databricks notebook source
# MAGIC %md
# MAGIC # Title
# MAGIC
# MAGIC Some *text*.

# COMMAND ----------

dbutils.widgets.text("limit", "2")
numbers = spark.range(10).toDF("n")
numbers.createOrReplaceTempView("numbers")

# COMMAND ----------

# MAGIC %sql
# MAGIC -- the largest ones
# MAGIC SELECT n FROM numbers WHERE n > 5;
# MAGIC SELECT n FROM numbers ORDER BY n DESC LIMIT ${limit}

# COMMAND ----------

largest = [row.n for row in _sqldf.collect()]
print("largest:", largest)
"""


def test_cells_are_split_and_magics_unwrapped():
    cells = parse_notebook(NOTEBOOK)
    assert [cell.kind for cell in cells] == ["md", "python", "sql", "python"]
    assert cells[0].source == "# Title\n\nSome *text*."
    assert cells[2].source.splitlines()[0] == "-- the largest ones"
    assert split_sql(cells[2].source) == [
        "SELECT n FROM numbers WHERE n > 5",
        "SELECT n FROM numbers ORDER BY n DESC LIMIT ${limit}",
    ]
    with pytest.raises(NotebookFormatError, match="Databricks notebook source"):
        parse_notebook("print('a plain script')\n")


def test_runner_gives_spark_widgets_in_sql_and_sqldf(spark, tmp_path):
    path = tmp_path / "demo.py"
    path.write_text(NOTEBOOK)
    run = run_notebook(path, spark, parameters={"limit": "3"}, out_dir=tmp_path)
    assert run.ok, run.summary()
    assert run.cells_run == run.cells_total == 4
    assert "largest: [9, 8, 7]" in run.output
    assert (tmp_path / "demo" / "output.txt").read_text() == run.output


def test_runner_stops_at_the_first_failing_cell_and_names_it(spark, tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(
        "# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\n"
        "# MAGIC %sql\n# MAGIC SELECT * FROM no_such_view\n"
        "\n# COMMAND ----------\n\nprint('never')\n"
    )
    run = run_notebook(path, spark, out_dir=tmp_path)
    assert not run.ok and run.cells_run == 1 and run.failed_cell.index == 2
    assert "no_such_view" in run.error and "never" not in run.output
    assert "FAILED at cell 2 (sql: SELECT * FROM no_such_view)" in run.summary()


def test_export_keeps_every_cell_with_its_kind():
    notebook = to_notebook(parse_notebook(NOTEBOOK), "demo.py")
    kinds = [(cell.cell_type, cell.source.splitlines()[0]) for cell in notebook.cells]
    assert kinds == [
        ("code", "%load_ext lakehouse.notebooks.magics"),
        ("markdown", "# Title"),
        ("code", 'dbutils.widgets.text("limit", "2")'),
        ("code", "%%sql"),
        ("code", "largest = [row.n for row in _sqldf.collect()]"),
    ]
