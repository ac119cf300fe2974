"""Pure transforms: DataFrames in, a DataFrame out; no I/O, no SparkSession state."""
