"""The JVM jars Spark needs beside pyspark: Delta Lake, the JDBC drivers of the source databases and s3a.

They come from Maven Central once, during set-up (``lakehouse setup-jars``, called by ``make setup``),
through Spark's own Ivy resolver into ``~/.cache/lakehouse/ivy/<hash of the package set>`` (see
:func:`lakehouse.install.paths.user_cache_dir`), shared by this user's clones. Every later SparkSession puts the cached
files on ``spark.jars``, so sessions start offline and without a resolution step.

JDBC drivers: PostgreSQL, SQLite (xerial's, which carries its native library for the usual platforms
inside the jar) and MariaDB's (which also reads MySQL servers: with a ``jdbc:mysql:...?permitMysqlScheme``
URL Spark applies its MySQL dialect). Each is one jar without required dependencies. Spark loads a
driver through its own class loader when a read names it (the ``driver`` option), and so does
:mod:`lakehouse.sources.jdbc` when it reads a catalog, so only the metastore's driver also needs the
JVM's class path (see :func:`lakehouse.services.spark_conf.jvm_settings`). Which driver a source uses comes from its
declaration (:mod:`lakehouse.sources.jdbc`); MySQL's own Connector/J (GPL) is known there but not fetched.

s3a (``s3a://`` warehouses, :mod:`lakehouse.services.object_store`) is ``hadoop-aws`` at the version of the
``hadoop-client-api`` pyspark ships, with the AWS SDK v2 modules it calls instead of the SDK's 640 MB
shaded ``bundle``: ``s3`` (and what it pulls in: auth, regions, the Apache sync HTTP client) and
``s3-transfer-manager`` (copies, renames and uploads, on ``netty-nio-client`` running on Spark's own
Netty): 33 jars, 9.4 MB, on every session. Left out because s3a does not load them unless configured to:
the analytics accelerator stream (``fs.s3a.input.stream.type=analytics``) and wildfly-openssl
(``fs.s3a.ssl.channel.mode=openssl``). Excluded because Spark already ships them: Netty, Apache HttpClient,
commons-codec.

The local S3 server of the tests and of ``lakehouse s3-server`` (S3Proxy) is one self-contained jar fetched
beside, into ``~/.cache/lakehouse/tools``: it is never put on a session's class path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from lakehouse.install.paths import user_cache_dir

POSTGRESQL_JDBC = "org.postgresql:postgresql:42.7.4"
SQLITE_JDBC = "org.xerial:sqlite-jdbc:3.54.1.0"
MARIADB_JDBC = "org.mariadb.jdbc:mariadb-java-client:3.5.11"
JDBC_DRIVERS = (POSTGRESQL_JDBC, SQLITE_JDBC, MARIADB_JDBC)
HADOOP_VERSION = "3.4.2"  # must equal pyspark's jars/hadoop-client-api-*.jar (checked by tests/test_object_storage.py)
AWS_SDK_VERSION = "2.29.52"  # the SDK v2 release hadoop 3.4.2 is built and tested against
S3A_PACKAGES = (
    f"org.apache.hadoop:hadoop-aws:{HADOOP_VERSION}",
    f"software.amazon.awssdk:s3:{AWS_SDK_VERSION}",
    f"software.amazon.awssdk:s3-transfer-manager:{AWS_SDK_VERSION}",
)
EXTRA_PACKAGES = (*JDBC_DRIVERS, *S3A_PACKAGES)
# groupId:artifactId left out of the resolution (Spark's `spark.jars.excludes`): see the module's docstring.
EXCLUDED_PACKAGES = (
    "software.amazon.awssdk:bundle",
    "software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3",
    "org.wildfly.openssl:wildfly-openssl",
    "io.netty:*",
    "org.apache.httpcomponents:*",
    "commons-codec:commons-codec",
)

MAVEN_CENTRAL = os.environ.get("LAKEHOUSE_MAVEN_REPO", "https://repo1.maven.org/maven2")
# (group, artifact, version, classifier) of the S3-compatible server the tests and `lakehouse s3-server` run.
S3PROXY = ("org.gaul", "s3proxy", "4.1.0", "jar-with-dependencies")


class MissingJarsError(RuntimeError):
    """The Delta/JDBC jars have not been fetched yet."""


def ivy_dir() -> Path:
    """Ivy's cache folder for this package set (a clone of another version resolves into another);
    ``LAKEHOUSE_IVY_DIR`` moves it."""
    if os.environ.get("LAKEHOUSE_IVY_DIR"):
        return Path(os.environ["LAKEHOUSE_IVY_DIR"])
    return user_cache_dir() / "ivy" / hashlib.sha1(_manifest_text().encode()).hexdigest()[:12]


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


def _manifest_text() -> str:
    return ",".join(maven_packages()) + " excluding " + ",".join(EXCLUDED_PACKAGES)


def local_jars() -> list[str]:
    """Paths of the cached jars, or a clear error telling how to fetch them."""
    wanted = _manifest_text()
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
            jars = local_jars()
        except MissingJarsError:
            jars = None
        if jars is not None:
            fetch_s3proxy_jar()
            return jars
    from pyspark.sql import SparkSession

    if jar_dir().exists():
        shutil.rmtree(jar_dir())
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("lakehouse-setup-jars")
        .config("spark.jars.packages", packages)
        .config("spark.jars.excludes", ",".join(EXCLUDED_PACKAGES))
        .config("spark.jars.ivy", str(ivy_dir()))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.stop()
    jars = sorted(jar_dir().glob("*.jar"))
    if not jars:
        raise MissingJarsError(f"Ivy resolved nothing into {jar_dir()} for {packages}")
    _manifest().write_text(_manifest_text() + "\n")
    fetch_s3proxy_jar()
    return [str(p) for p in jars]


def tools_dir() -> Path:
    """Jars that run as programs of their own (never on a session's class path)."""
    return user_cache_dir() / "tools"


def s3proxy_jar() -> Path:
    group, artifact, version, classifier = S3PROXY
    return tools_dir() / f"{artifact}-{version}-{classifier}.jar"


def fetch_s3proxy_jar() -> Path:
    """Download S3Proxy's self-contained jar from Maven Central once (checked against its SHA-1)."""
    target = s3proxy_jar()
    if target.is_file():
        return target
    group, artifact, version, classifier = S3PROXY
    url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{target.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
        with urllib.request.urlopen(url + ".sha1", timeout=60) as response:
            expected = response.read().decode().split()[0].strip()
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise MissingJarsError(
            f"could not download {url}: {exc} (run `make setup` with access to Maven Central)"
        ) from exc
    actual = hashlib.sha1(partial.read_bytes()).hexdigest()
    if actual != expected:
        partial.unlink()
        raise MissingJarsError(f"{url}: SHA-1 {actual} is not the published {expected}")
    partial.replace(target)
    return target
