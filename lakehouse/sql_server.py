"""The SQL endpoint: Spark's Thrift JDBC/ODBC server (the HiveServer2 protocol) on 127.0.0.1.

It is one long-running Spark driver over the shared catalog (:mod:`lakehouse.metastore`), so it sees
every table a job registers, without a restart. Any HiveServer2 client reaches it: ``beeline``
(shipped with pyspark), PyHive, JDBC tools (``jdbc:hive2://127.0.0.1:10000/default``).

The pyspark wheel has no ``sbin/start-thriftserver.sh``: the server is started the way that script
does it, ``spark-submit --class ...HiveThriftServer2 spark-internal``, detached, with its pid and log
kept beside the warehouse.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from lakehouse import daemons
from lakehouse.config import LakehouseConfig
from lakehouse.paths import CACHE_DIR

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
DEFAULT_PORT = 10000
HOST = "127.0.0.1"


class SqlServerError(RuntimeError):
    """The SQL server could not be started or stopped."""


@dataclass(frozen=True)
class SqlServer:
    """Where one environment's SQL server listens and keeps its pid and log."""

    state_dir: Path
    port: int
    host: str = HOST

    @property
    def daemon(self) -> daemons.Daemon:
        return daemons.Daemon(self.state_dir, "server", THRIFT_SERVER_CLASS)

    @property
    def port_file(self) -> Path:
        return self.state_dir / "server.port"

    @property
    def log_file(self) -> Path:
        return self.daemon.log_file

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:hive2://{self.host}:{self.port}/default"


def sql_server(config: LakehouseConfig, port: int | None = None) -> SqlServer:
    """The SQL server of ``config``'s environment: on ``port``, or the one it was started on."""
    warehouse = config.warehouse.removeprefix("file:")
    if "://" in warehouse:  # object storage: keep pid and log on this machine
        state_dir = CACHE_DIR / "sql-server" / hashlib.sha1(warehouse.encode()).hexdigest()[:10]
    else:
        state_dir = Path(warehouse) / "_sql_server"
    if port is None:
        port_file = state_dir / "server.port"
        port = int(port_file.read_text()) if port_file.is_file() else DEFAULT_PORT
    return SqlServer(state_dir, port)


def server_command(config: LakehouseConfig, server: SqlServer, driver_memory: str | None = None) -> list[str]:
    """The ``spark-submit`` command line that runs the Thrift server with this environment's settings."""
    from lakehouse.install import spark_home
    from lakehouse.session import spark_settings

    settings = spark_settings(config)
    # Client sessions are opened on threads whose class loader does not see spark.jars' class loader
    # (ClassNotFoundException: DeltaCatalog): Delta's own jars go on the server's class path too. Only
    # those: their dependencies (an older Jackson) would shadow Spark's own there.
    on_class_path = [
        jar for jar in settings["spark.jars"].split(",")
        if Path(jar).name.startswith(("io.delta_delta-spark", "io.delta_delta-storage", "org.postgresql"))
    ]
    settings["spark.driver.extraClassPath"] = os.pathsep.join(on_class_path)
    memory = driver_memory or settings.pop("spark.driver.memory", "2g")
    settings.pop("spark.driver.memory", None)
    command = [
        str(spark_home() / "bin" / "spark-submit"),
        "--class", THRIFT_SERVER_CLASS,
        "--name", f"lakehouse-sql-server-{config.environment}",
        "--master", config.spark_master or "local[*]",
        "--driver-memory", memory,
    ]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    return command + [
        "spark-internal",
        "--hiveconf", f"hive.server2.thrift.bind.host={server.host}",
        "--hiveconf", f"hive.server2.thrift.port={server.port}",
    ]


def running_pid(server: SqlServer) -> int | None:
    """The pid of the server started from ``server.state_dir`` when it is still alive."""
    return daemons.running_pid(server.daemon)


def start(config: LakehouseConfig, port: int = DEFAULT_PORT, driver_memory: str | None = None,
          timeout_s: float = 300) -> SqlServer:
    """Start the server detached and wait until it accepts connections; no-op when it already runs."""
    already = sql_server(config)  # the port it was started on, if it runs
    if running_pid(already) is not None:
        return already
    server = sql_server(config, port)
    if daemons.port_open(server.host, server.port):
        raise SqlServerError(f"port {server.port} on {server.host} is taken by another program: pass --port")
    process = daemons.spawn(server.daemon, server_command(config, server, driver_memory),
                            env=dict(os.environ, PYSPARK_PYTHON=sys.executable))
    server.port_file.write_text(str(server.port))
    try:
        daemons.wait_until(lambda: daemons.port_open(server.host, server.port), server.daemon, process, timeout_s,
                           "the SQL server")
    except daemons.DaemonError as exc:
        raise SqlServerError(str(exc)) from None
    return server


def stop(config: LakehouseConfig, timeout_s: float = 60) -> bool:
    """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout_s``); False when none ran."""
    return daemons.stop(sql_server(config).daemon, timeout_s)
