# Databricks notebook source
# MAGIC %md
# MAGIC # 02 · Table history and time travel
# MAGIC
# MAGIC Every write is a Delta commit. Any past version can be read (`VERSION AS OF`), compared with
# MAGIC another, tagged and restored (`lakehouse tag`, `lakehouse restore`). Pick the table with the widget.

# COMMAND ----------

dbutils.widgets.text("table", "gold.photo_popularity_training")
table = dbutils.widgets.get("table")
table

# COMMAND ----------

history = spark.sql(f"DESCRIBE HISTORY {table}")
display(history.select("version", "timestamp", "operation", "operationParameters", "operationMetrics"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## What changed between the last two versions that hold data

# COMMAND ----------

versions = [row.version for row in history.orderBy("version").collect()]
with_rows = [v for v in versions if spark.sql(f"SELECT 1 FROM {table} VERSION AS OF {v} LIMIT 1").count()]
newer = with_rows[-1]
older = with_rows[-2] if len(with_rows) > 1 else versions[0]
before = spark.sql(f"SELECT * FROM {table} VERSION AS OF {older}")
after = spark.sql(f"SELECT * FROM {table} VERSION AS OF {newer}")
comparable = [f.name for f in after.schema.fields
              if f.dataType.simpleString() not in ("binary",)
              and not f.dataType.simpleString().startswith(("array", "map", "struct"))]
added = after.select(comparable).exceptAll(before.select(comparable))
removed = before.select(comparable).exceptAll(after.select(comparable))
print(f"version {older}: {before.count()} rows; version {newer}: {after.count()} rows; "
      f"{added.count()} rows added, {removed.count()} removed")
display(added.limit(5))

# COMMAND ----------

# MAGIC %sql
# MAGIC -- Time travel in SQL: the row count at every version of the training table
# MAGIC SELECT 'latest' AS version, count(*) AS rows FROM gold.photo_popularity_training
# MAGIC UNION ALL
# MAGIC SELECT 'first', count(*) FROM gold.photo_popularity_training VERSION AS OF 0

# COMMAND ----------

# MAGIC %md
# MAGIC Tags name a version (`lakehouse tag gold.photo_popularity_training paper_v1`); each tag is also a view,
# MAGIC `gold.photo_popularity_training__paper_v1`, and training runs record which versions they read.

# COMMAND ----------

if spark.catalog.tableExists("ops.tags"):  # made by the first `lakehouse tag`
    display(spark.sql("SELECT table_name, tag, version, created_at, note FROM ops.tags ORDER BY created_at DESC"))
else:
    print("no version is tagged yet: lakehouse tag gold.photo_popularity_training <name>")
