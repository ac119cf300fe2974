"""SQL access to tagged versions: each tag becomes a view ``<layer>.<table>__<tag>``.

Spark SQL's ``VERSION AS OF`` takes only a number, so ``SELECT * FROM gold.user_activity_daily__train_2026_11_20``
is how SQL users read a table by tag (characters other than letters, digits and ``_`` become ``_``).
"""

from __future__ import annotations

import re

from pyspark.sql import SparkSession

from lakehouse.project.config import LakehouseConfig
from lakehouse.project.tables import TableDeclaration


def tag_view_name(declaration: TableDeclaration, tag: str) -> str:
    return f"{declaration.layer}.{declaration.short_name}__{re.sub(r'[^A-Za-z0-9_]', '_', tag)}"


def register_tag_view(spark: SparkSession, config: LakehouseConfig, tag) -> str:
    """Create (or replace) the view of one tag; return its name."""
    declaration = config.table(tag.table)
    name = tag_view_name(declaration, tag.tag)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {declaration.layer}")
    path = config.table_path(declaration.name)
    spark.sql(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM delta.`{path}` VERSION AS OF {int(tag.version)}")
    return name


def drop_tag_view(spark: SparkSession, declaration: TableDeclaration, tag: str) -> None:
    spark.sql(f"DROP VIEW IF EXISTS {tag_view_name(declaration, tag)}")
