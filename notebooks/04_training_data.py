# Databricks notebook source
# MAGIC %md
# MAGIC # 04 · The training data
# MAGIC
# MAGIC `gold.photo_popularity_training`: one row per photo, its author's activity before the upload as
# MAGIC features, the image and the classifier's prediction, and the label `likes_24h` (likes in the first
# MAGIC day). `jobs/train_popularity.py` trains on it through Petastorm or the Arrow loader.

# COMMAND ----------

import matplotlib.pyplot as plt

training = spark.table("gold.photo_popularity_training")
print(f"{training.count()} photos, {len(training.columns)} columns")
display(training.drop("image", "class_probabilities").limit(10))

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT category, count(*) AS photos, round(avg(likes_24h), 2) AS mean_likes, max(likes_24h) AS max_likes
# MAGIC FROM gold.photo_popularity_training
# MAGIC GROUP BY category
# MAGIC ORDER BY photos DESC

# COMMAND ----------

frame = training.select(
    "likes_24h", "caption_length", "upload_hour", "author_followers", "author_views_7d", "author_uploads_before"
).toPandas()
figure, axes = plt.subplots(2, 3, figsize=(10, 5))
for axis, column in zip(axes.flat, frame.columns):
    frame[column].dropna().plot.hist(bins=30, ax=axis)
    axis.set_title(column)
figure.suptitle("Label and feature distributions")
figure.tight_layout()
display(figure)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Activity over time (`gold.user_activity_daily`)

# COMMAND ----------

daily = spark.sql("""
    SELECT event_date, count(DISTINCT user_key) AS active_users, sum(n_events) AS events,
           sum(n_views) AS views, sum(n_likes) AS likes, sum(n_uploads) AS uploads
    FROM gold.user_activity_daily
    GROUP BY event_date
    ORDER BY event_date
""").toPandas()
figure, axis = plt.subplots(figsize=(8, 3))
daily.plot(x="event_date", y=["events", "views", "likes", "uploads"], ax=axis, marker="o")
axis.set_title("Events per day")
display(figure)
display(daily)
