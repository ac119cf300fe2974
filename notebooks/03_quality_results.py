# Databricks notebook source
# MAGIC %md
# MAGIC # 03 · Quality checks and quarantine
# MAGIC
# MAGIC Great Expectations suites (`expectations/`) run on every write. Rows that break a row rule go to the
# MAGIC table's `_quarantine` table with a reason; a failed table-level check stops the publish. Every
# MAGIC check's outcome is a row of `quality.results`.

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT table_name, count(*) AS checks, sum(CASE WHEN success THEN 1 ELSE 0 END) AS passed,
# MAGIC        sum(rows_failing) AS rows_failing, max(checked_at) AS last_checked
# MAGIC FROM quality.results
# MAGIC GROUP BY table_name
# MAGIC ORDER BY table_name

# COMMAND ----------

failing = _sqldf.toPandas()
print(f"{len(failing)} tables checked; {int((failing.checks != failing.passed).sum())} with a failing check")

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT table_name, rule, action, outcome, rows_checked, rows_failing
# MAGIC FROM quality.results
# MAGIC WHERE NOT success
# MAGIC ORDER BY checked_at DESC
# MAGIC LIMIT 20

# COMMAND ----------

# MAGIC %md
# MAGIC ## Quarantined rows by reason

# COMMAND ----------

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lakehouse.project import find_project_root, load_project  # noqa: E402

quarantine_tables = [t.quarantine.name for t in load_project(find_project_root()).tables() if t.has_quarantine
                     and spark.catalog.tableExists(t.quarantine.name)]
reasons = pd.concat(
    [spark.sql(f"SELECT '{name}' AS quarantine, rule, count(*) AS rows FROM {name} GROUP BY rule").toPandas()
     for name in quarantine_tables],
    ignore_index=True,
)
display(reasons.sort_values("rows", ascending=False))

# COMMAND ----------

if len(reasons):
    figure, axis = plt.subplots(figsize=(7, 3))
    reasons.groupby("rule")["rows"].sum().sort_values().plot.barh(ax=axis)
    axis.set_xlabel("quarantined rows")
    axis.set_title("Quarantine by rule")
    display(figure)
else:
    print("no row was quarantined")
