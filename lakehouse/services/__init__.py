"""The services the project starts and talks to: PostgreSQL, the Hive metastore in it, the SQL server, a Spark
standalone cluster, the S3-compatible server, the daemon plumbing they share, and the settings every Spark JVM
gets (:mod:`lakehouse.services.spark_conf`)."""
