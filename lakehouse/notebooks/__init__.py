"""Databricks-format source notebooks (``notebooks/*.py``): parsed, run locally, exported to Jupyter."""
