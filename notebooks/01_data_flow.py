# Databricks notebook source
# MAGIC %md
# MAGIC # 01 · How data flows through the lakehouse
# MAGIC
# MAGIC Raw sources land in **bronze** as they arrived, **silver** holds them validated, deduplicated and
# MAGIC pseudonymised, **gold** holds what analysts and training jobs read. Every table is declared once, in
# MAGIC the project (`sources/`, `tables/`); this notebook reads those declarations and the tables themselves.

# COMMAND ----------

import matplotlib.pyplot as plt
import pandas as pd

from lakehouse.project import find_project_root, load_project

declared = pd.DataFrame(
    [
        {"table": t.name, "layer": t.layer, "built_by": t.step or "", "upstreams": ", ".join(t.upstreams)}
        for t in load_project(find_project_root()).tables()
    ]
)
present = {f"{row.namespace}.{row.tableName}" for layer in ("bronze", "silver", "gold", "quality", "ops")
           if spark.catalog.databaseExists(layer)
           for row in spark.sql(f"SHOW TABLES IN {layer}").collect() if not row.isTemporary}
declared["built"] = declared["table"].isin(present)
display(declared)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Rows and versions per table
# MAGIC `DESCRIBE DETAIL` and `DESCRIBE HISTORY` are Delta's own; the row count is the table's current state.

# COMMAND ----------

def table_summary(name):
    detail = spark.sql(f"DESCRIBE DETAIL {name}").first()
    latest = spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").first()
    return {
        "table": name,
        "rows": spark.table(name).count(),
        "version": latest.version,
        "files": detail.numFiles,
        "megabytes": round(detail.sizeInBytes / 1e6, 2),
        "last_operation": latest.operation,
    }


summary = pd.DataFrame([table_summary(name) for name in declared.loc[declared.built, "table"]])
display(summary)

# COMMAND ----------

by_layer = summary.assign(layer=summary.table.str.split(".").str[0]).groupby("layer")["rows"].sum()
figure, axis = plt.subplots(figsize=(6, 3))
by_layer.reindex(
    [layer for layer in ("bronze", "silver", "gold", "quality", "ops") if layer in by_layer.index]
).plot.bar(ax=axis)
axis.set_ylabel("rows")
axis.set_title("Rows per layer")
display(figure)

# COMMAND ----------

# MAGIC %sql
# MAGIC -- The same catalog is open to SQL: every declared table by name
# MAGIC SHOW TABLES IN gold
