"""An IPython extension that gives Jupyter what Databricks gives a notebook.

``%load_ext lakehouse.notebooks.magics`` (the first cell of every exported notebook) starts the
lakehouse's SparkSession (``conf/local.yaml``, or ``$LAKEHOUSE_CONF``) and defines ``spark``,
``display``, ``displayHTML``, ``dbutils`` and the ``%%sql`` cell magic, whose result is also ``_sqldf``.
"""

from __future__ import annotations

from lakehouse.notebooks.runner import DISPLAY_ROWS, LocalDbutils, split_sql


def load_ipython_extension(ipython) -> None:
    from IPython.core.magic import register_cell_magic
    from IPython.display import HTML
    from IPython.display import display as ipython_display

    from lakehouse.engine.session import get_spark
    from lakehouse.project.config import load_config

    spark = get_spark(load_config())

    def display(obj, *args, **kwargs):
        from pyspark.sql import DataFrame

        if isinstance(obj, DataFrame):
            obj = obj.limit(DISPLAY_ROWS).toPandas()
        ipython_display(obj)

    @register_cell_magic
    def sql(line, cell):
        result = None
        for statement in split_sql(cell):
            result = spark.sql(statement)
        if result is not None:
            ipython.user_ns["_sqldf"] = result
            display(result)

    ipython.push(
        {
            "spark": spark,
            "display": display,
            "displayHTML": lambda html: ipython_display(HTML(html)),
            "dbutils": LocalDbutils({}),
        }
    )
