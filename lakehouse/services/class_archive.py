"""A class-data-sharing archive of the classes a Spark session loads, so that a new session's JVM maps them.

A fresh Spark JVM loads, parses and verifies about 25,000 classes before its first Delta commit. HotSpot can
instead map them from an archive that an earlier JVM wrote when it exited (dynamic CDS, JDK 13 and later).
Measured 2026-12-07 on 2 cores, a fresh process each, interleaved: the session started in 7.1-7.2 s instead
of 9.5-10.7 s, its first Delta write took 4.5-5.7 s instead of 7.6-8.5 s, and the JVM spent 33-37
CPU-seconds instead of 44-48 on start, write, read and MERGE.

``lakehouse setup`` writes the archive once per environment (:func:`build_archive`); every session that
:func:`lakehouse.engine.session.get_spark` starts then maps it (:func:`archive_for_sessions`). JDK 17's CDS
sets two limits, and they shape this module:

- The class path may hold no non-empty folder. Spark's launcher puts its conf folder on it
  (``$SPARK_CONF_DIR``, else pyspark's ``conf/``, which holds the set-up's ``spark-defaults.conf``). A session
  started from Python passes every setting itself, so it launches with an empty conf folder of this
  module's (:func:`launch_environment`). ``spark-submit``, and a user who sets ``SPARK_CONF_DIR``, read a
  conf folder: their JVMs start without the archive.
- The archive is bound to the JDK and to the class path it was written with. So it lives in the
  environment's pyspark folder, named by a digest of the JDK and the jars (:func:`archive_path`): a new JDK or
  jar set looks for another file and starts without one until set-up writes it. A JVM that cannot use an
  archive starts as it would without one, and its CDS log lines are switched off (:data:`QUIET`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from lakehouse.install import spark_home
from lakehouse.install.jars import local_jars

QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"  # a missing or mismatched archive prints nothing
BUILD_TIMEOUT_S = 600


def archive_dir() -> Path:
    """Where this environment's archive and the empty conf folder of its sessions live."""
    return spark_home() / "lakehouse-class-archive"


def session_conf_dir() -> Path:
    """The conf folder sessions launch with: empty, so that the class path holds no non-empty folder."""
    return archive_dir() / "conf"


def _java() -> Path:
    # The java Spark's launcher runs: $JAVA_HOME/bin/java, else the one on PATH.
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"]) / "bin" / "java"
    return Path(shutil.which("java") or "java")


def archive_path(jars: list[str]) -> Path:
    """The archive for this JDK, pyspark's jars and ``jars`` (``spark.jars``): a digest of them names it."""
    digest = hashlib.sha1()
    java = _java().resolve()
    parts = [java] + sorted((spark_home() / "jars").glob("*.jar")) + [Path(jar) for jar in jars]
    for part in parts:
        stat = part.stat() if part.exists() else None
        digest.update(f"{part}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    return archive_dir() / f"spark-{digest.hexdigest()[:16]}.jsa"


def archive_for_sessions() -> Path | None:
    """The archive a session started from Python maps, or None: none written yet for this JDK and these jars,
    or ``SPARK_CONF_DIR`` set by the user (a conf folder on the class path rules the archive out)."""
    if os.environ.get("SPARK_CONF_DIR"):
        return None
    path = archive_path(local_jars())
    return path if path.is_file() else None


def java_options(archive: Path) -> str:
    """The JVM options that map ``archive``."""
    return f"-XX:SharedArchiveFile={archive} {QUIET}"


@contextmanager
def launch_environment():
    """While a session's JVM starts: ``SPARK_CONF_DIR`` names the empty conf folder (see the module's doc)."""
    conf_dir = session_conf_dir()
    conf_dir.mkdir(parents=True, exist_ok=True)
    os.environ["SPARK_CONF_DIR"] = str(conf_dir)
    try:
        yield
    finally:
        del os.environ["SPARK_CONF_DIR"]


def build_archive(force: bool = False) -> tuple[Path | None, str]:
    """Write this environment's archive unless it exists; returns where it is (None when it could not be
    written) and what happened. A JVM runs a small Delta workload and writes the archive as it exits; the
    file appears under its final name only once complete, and archives of other JDKs or jar sets go."""
    jars = local_jars()
    target = archive_path(jars)
    if target.is_file() and not force:
        return target, "up to date"
    archive_dir().mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lakehouse-class-archive-") as scratch:
        env = {**os.environ, "SPARK_CONF_DIR": str(session_conf_dir())}
        session_conf_dir().mkdir(exist_ok=True)
        try:
            child = subprocess.run(
                [sys.executable, "-m", "lakehouse.services.class_archive", str(partial), scratch],
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
            )
            failure = None if child.returncode == 0 else (child.stderr or child.stdout).strip().splitlines()[-5:]
        except subprocess.TimeoutExpired:
            failure = [f"its JVM ran past {BUILD_TIMEOUT_S} s"]
    if failure is not None or not partial.is_file():
        partial.unlink(missing_ok=True)
        return None, "not written (sessions start without it): " + " | ".join(failure or ["no file"])
    os.replace(partial, target)
    for other in archive_dir().glob("spark-*"):  # other JDKs' or jar sets', and a killed build's (set-up's lock)
        if other != target:
            other.unlink(missing_ok=True)
    return target, f"written in {time.monotonic() - started:.0f} s"


def _run_workload_and_exit(archive: str, scratch: str) -> None:
    """The child of :func:`build_archive`: a session with the project's JVM settings runs what a pipeline
    step does (a streamed file landing, Delta writes, MERGE, reads, SQL), and its JVM writes ``archive``."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from lakehouse.services.spark_conf import JIT_OPTIONS, jvm_settings

    builder = SparkSession.builder.master("local[2]").appName("lakehouse-class-archive")
    settings = {
        **jvm_settings(local_jars()),
        "spark.driver.defaultJavaOptions": f"{JIT_OPTIONS} -XX:ArchiveClassesAtExit={archive} {QUIET}",
        "spark.sql.warehouse.dir": f"{scratch}/warehouse",
        "spark.ui.enabled": "false",
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    table = f"{scratch}/table"
    landing = Path(scratch, "landing")
    landing.mkdir()
    (landing / "part.json").write_text('{"id": 1, "kind": "a"}\n{"id": 2, "kind": "b"}\n')
    stream = spark.readStream.schema("id bigint, kind string").json(str(landing))
    query = stream.writeStream.format("delta").option("checkpointLocation", f"{scratch}/checkpoint")
    query.trigger(availableNow=True).start(table).awaitTermination()
    spark.range(1000).selectExpr("id", "cast(id % 7 as string) AS kind").write.format("delta").mode("append").save(
        table
    )
    spark.sql(
        f"MERGE INTO delta.`{table}` t USING (SELECT 1L AS id, 'c' AS kind) s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    rows = spark.read.format("delta").load(table)
    rows.groupBy("kind").count().join(rows, "kind").orderBy("id").limit(5).collect()
    spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()
    spark.read.format("delta").option("versionAsOf", 0).load(table).count()
    jvm = SparkContext._gateway.proc
    spark.stop()
    # The JVM writes the archive as it exits, which it does when its stdin closes: wait for it here, so that
    # the parent finds the file complete.
    jvm.stdin.close()
    sys.exit(jvm.wait())


if __name__ == "__main__":
    _run_workload_and_exit(sys.argv[1], sys.argv[2])
