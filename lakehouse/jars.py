"""The JVM jars Spark needs beside pyspark: Delta Lake and the PostgreSQL JDBC driver.

They come from Maven Central once, during set-up (``lakehouse setup-jars``, called by ``make setup``),
through Spark's own Ivy resolver into ``.cache/ivy``. Every later SparkSession puts the cached files on
``spark.jars``, so sessions start offline and without a resolution step.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lakehouse.paths import CACHE_DIR

POSTGRESQL_JDBC = "org.postgresql:postgresql:42.7.4"
EXTRA_PACKAGES = (POSTGRESQL_JDBC,)


class MissingJarsError(RuntimeError):
    """The Delta/JDBC jars have not been fetched yet."""


def ivy_dir() -> Path:
    """Ivy's cache folder; ``LAKEHOUSE_IVY_DIR`` moves it."""
    return Path(os.environ.get("LAKEHOUSE_IVY_DIR", CACHE_DIR / "ivy"))


def jar_dir() -> Path:
    """Folder holding the resolved jars (Ivy's ``jars/``)."""
    return ivy_dir() / "jars"


def maven_packages() -> list[str]:
    """Maven coordinates to resolve: Delta for the installed Spark, plus the extras.

    Same rule as ``delta.configure_spark_with_delta_pip``: since Delta 4.1 the artifact name carries
    Spark's major.minor version (``delta-spark_4.1_2.13``), and the version is the installed delta-spark's.
    """
    from importlib.metadata import version

    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta = f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"
    return [delta, *EXTRA_PACKAGES]


def _manifest() -> Path:
    return jar_dir() / ".packages"


def local_jars() -> list[str]:
    """Paths of the cached jars, or a clear error telling how to fetch them."""
    wanted = ",".join(maven_packages())
    manifest = _manifest()
    if not manifest.is_file() or manifest.read_text().strip() != wanted:
        raise MissingJarsError(
            f"Delta/JDBC jars for {wanted} are not in {jar_dir()}: run `make setup` "
            "(or `lakehouse setup-jars`) once with access to Maven Central."
        )
    return sorted(str(p) for p in jar_dir().glob("*.jar"))


def fetch_jars(force: bool = False) -> list[str]:
    """Resolve the Maven packages with Spark's Ivy into :func:`ivy_dir`; no-op when already cached."""
    packages = ",".join(maven_packages())
    if not force:
        try:
            return local_jars()
        except MissingJarsError:
            pass
    from pyspark.sql import SparkSession

    if jar_dir().exists():
        shutil.rmtree(jar_dir())
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("lakehouse-setup-jars")
        .config("spark.jars.packages", packages)
        .config("spark.jars.ivy", str(ivy_dir()))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.stop()
    jars = sorted(jar_dir().glob("*.jar"))
    if not jars:
        raise MissingJarsError(f"Ivy resolved nothing into {jar_dir()} for {packages}")
    _manifest().write_text(packages + "\n")
    return [str(p) for p in jars]
