"""The shared catalog: a Hive-compatible metastore kept in PostgreSQL, open to several processes at once.

Jobs, notebooks, ``spark-sql`` and the Thrift SQL server each run their own JVM. Spark's default
embedded Derby store admits one JVM at a time, so the default here keeps the metastore in a database
(``catalog.database``) of the project's PostgreSQL server (the one ``lakehouse db start`` runs, already
used for the application database): every process opens it through JDBC and sees the others' tables.
``catalog.metastore: in-memory`` keeps a per-process catalog instead (the test suite's shared session).

The Hive schema is created by DataNucleus on first use; :func:`lakehouse.engine.session.get_spark` makes the
first session create it under :func:`schema_creation_lock`, one process at a time.

The metastore connects with the PostgreSQL role's password (:func:`lakehouse.services.postgres.server_password`),
which never goes into a Spark setting passed on a command line (pyspark hands a new JVM every builder
setting as ``--conf``, readable in ``/proc/<pid>/cmdline``). It is written instead into a private
``hive-site.xml`` (mode 0600, in a 0700 folder of the secrets folder) holding only
``javax.jdo.option.ConnectionPassword``; ``HIVE_CONF_DIR`` (a path, not a secret) names its folder, and
Hive's configuration reads it from there in every JVM started with that variable: the sessions
:func:`prepare_metastore` prepares, ``lakehouse spark-sql``, the SQL server. A JVM already running when
the session is made (``spark-submit jobs/x.py``) gets it as a system property over the Py4J gateway,
which no other process can read.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from xml.sax.saxutils import escape

from lakehouse.project.config import LakehouseConfig

METASTORES = ("postgres", "in-memory")
PASSWORD_KEY = "javax.jdo.option.ConnectionPassword"


def uses_shared_metastore(config: LakehouseConfig) -> bool:
    return config.catalog.metastore == "postgres"


def metastore_settings(config: LakehouseConfig) -> dict[str, str]:
    """Spark settings that put a session's catalog in the configured metastore."""
    if not uses_shared_metastore(config):
        return {"spark.sql.catalogImplementation": "in-memory"}
    pg = config.postgres
    hive = {
        "javax.jdo.option.ConnectionURL": pg.jdbc_url(config.catalog.database),
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": pg.user,
        # No ConnectionPassword here: it comes from a private hive-site.xml (the module's docstring).
        # No Hive schema tool ships with pyspark: DataNucleus creates the tables on first use. Each is
        # created lazily, on a connection of its own, while another may hold a transaction on TBLS; a
        # foreign key added to TBLS would then wait on it for ever (PostgreSQL locks the referenced table),
        # so tables and columns are created but not constraints (autoCreateAll would create them too).
        "datanucleus.schema.autoCreateTables": "true",
        "datanucleus.schema.autoCreateColumns": "true",
        "datanucleus.schema.autoCreateConstraints": "false",
        "hive.metastore.schema.verification": "false",
        "hive.metastore.warehouse.dir": config.warehouse + "/_spark_sql",
    }
    settings = {"spark.sql.catalogImplementation": "hive"}
    settings.update({f"spark.hadoop.{key}": value for key, value in hive.items()})
    return settings


def _server(config: LakehouseConfig):
    from lakehouse.services.postgres import PostgresServer

    return PostgresServer.from_config(config)


def hive_conf_dir(config: LakehouseConfig) -> Path | None:
    """The folder of the private ``hive-site.xml`` that gives Hive the metastore's password (written, mode
    0600, when missing or stale); None when the catalog is in memory or the server wants no password.
    A JVM started with ``HIVE_CONF_DIR`` set to it connects to the metastore."""
    from lakehouse.services import daemons, postgres

    if not uses_shared_metastore(config):
        return None
    password = postgres.server_password(config)
    if password is None:
        return None
    # One folder per password (named by a hash of it): stable while JVMs using it run, shared by the
    # configurations that use the same server.
    folder = daemons.SECRETS_DIR / "hive" / hashlib.sha256(password.encode()).hexdigest()[:16]
    site = folder / "hive-site.xml"
    text = (
        '<?xml version="1.0"?>\n<!-- written by lakehouse: the metastore password, for this user only -->\n'
        f"<configuration>\n  <property><name>{PASSWORD_KEY}</name><value>{escape(password)}</value></property>\n"
        "</configuration>\n"
    )
    if not site.is_file() or site.read_text() != text:
        daemons.write_private(site, text)
    return folder


def _give_password_to_this_process(config: LakehouseConfig) -> None:
    """Make the JVM this process's next session runs in find the metastore's password."""
    folder = hive_conf_dir(config)
    if folder is None:
        return
    os.environ["HIVE_CONF_DIR"] = str(folder)  # a JVM pyspark launches from now on reads hive-site.xml there
    from pyspark import SparkContext

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        # The JVM runs already (spark-submit started it, or an earlier session): its environment is fixed,
        # but Hive also reads its settings from system properties, set here over the private gateway.
        from lakehouse.services.postgres import server_password

        SparkContext._ensure_initialized()
        SparkContext._jvm.java.lang.System.setProperty(PASSWORD_KEY, server_password(config))


def metastore_ready(config: LakehouseConfig) -> bool:
    """True when the metastore database exists and holds Hive's schema."""
    from lakehouse.services import postgres

    server = _server(config)
    found = postgres.psql(server, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{config.catalog.database}'")
    if not found.strip():
        return False
    marker = postgres.psql(
        server, config.catalog.database, f"SELECT to_regclass('public.{_SCHEMA_MARKER}') IS NOT NULL"
    )
    return marker.strip() == "t"


def prepare_metastore(config: LakehouseConfig) -> bool:
    """Start the project's PostgreSQL when it manages one, and create the metastore database.

    Returns True when Hive's schema is already there; False when the first session still has to
    create it (hold :func:`schema_creation_lock` while it does).
    """
    from lakehouse.services import postgres

    server = _server(config)
    if server.data_dir is not None:
        postgres.start(server)
    with schema_creation_lock(config):  # two processes creating the database at once: one fails
        postgres.create_database(server, config.catalog.database)
    _give_password_to_this_process(config)
    return metastore_ready(config)


@contextmanager
def schema_creation_lock(config: LakehouseConfig) -> Iterator[None]:
    """An exclusive lock, across processes on this machine, for creating the metastore's schema."""
    pg = config.postgres
    lock_file = Path(tempfile.gettempdir()) / f"lakehouse-metastore-{pg.host}-{pg.port}-{config.catalog.database}.lock"
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Made once Hive's schema is complete (DataNucleus creates its tables one by one: their presence alone
# does not say the creation finished).
_SCHEMA_MARKER = "lakehouse_schema_created"


def create_schema(spark, config: LakehouseConfig) -> None:
    """Touch every part of Hive's schema a lakehouse uses (databases, tables, properties, views), so
    that DataNucleus creates all their tables now, in this process, rather than lazily in several;
    then mark the schema complete."""
    from lakehouse.services import postgres

    probe = "lakehouse_schema_probe"
    for statement in (
        f"CREATE DATABASE IF NOT EXISTS {probe}",
        f"CREATE TABLE IF NOT EXISTS {probe}.t (id INT) USING parquet",
        f"ALTER TABLE {probe}.t SET TBLPROPERTIES ('probe' = 'yes')",
        f"CREATE OR REPLACE VIEW {probe}.v AS SELECT id FROM {probe}.t",
        f"DROP DATABASE {probe} CASCADE",
    ):
        spark.sql(statement)
    postgres.psql(
        _server(config),
        config.catalog.database,
        f"CREATE TABLE IF NOT EXISTS {_SCHEMA_MARKER} (created_at timestamptz DEFAULT now())",
    )


# Loggers that warn on every normal metastore call: a Delta table is "not compatible with Hive", a path
# query (delta.`/path`) looks for a database named delta, Hive settings Spark does not use.
_CHATTY_LOGGERS = (
    "org.apache.hadoop.hive.metastore.ObjectStore",
    "org.apache.hadoop.hive.metastore.txn.TxnHandler",
    "org.apache.hadoop.hive.conf.HiveConf",
    "org.apache.hadoop.hive.ql.session.SessionState",
    "org.apache.spark.sql.hive.HiveExternalCatalog",
)


def quiet_metastore_warnings(spark) -> None:
    """Show only errors from the metastore's chattiest loggers (they would bury the jobs' own output)."""
    log4j = spark._jvm.org.apache.logging.log4j
    for name in _CHATTY_LOGGERS:
        log4j.core.config.Configurator.setLevel(name, log4j.Level.ERROR)
