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
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
    def pid_file(self) -> Path:
        return self.state_dir / "server.pid"

    @property
    def port_file(self) -> Path:
        return self.state_dir / "server.port"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

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
    if not server.pid_file.is_file():
        return None
    pid = int(server.pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.is_file() and THRIFT_SERVER_CLASS.encode() not in cmdline.read_bytes():
        return None  # the pid was reused by another program (or the server is a zombie)
    return pid


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _log_tail(server: SqlServer, lines: int = 40) -> str:
    if not server.log_file.is_file():
        return ""
    return "\n".join(server.log_file.read_text(errors="replace").splitlines()[-lines:])


def start(config: LakehouseConfig, port: int = DEFAULT_PORT, driver_memory: str | None = None,
          timeout_s: float = 300) -> SqlServer:
    """Start the server detached and wait until it accepts connections; no-op when it already runs."""
    already = sql_server(config)  # the port it was started on, if it runs
    if running_pid(already) is not None:
        return already
    server = sql_server(config, port)
    if _port_open(server.host, server.port):
        raise SqlServerError(f"port {server.port} on {server.host} is taken by another program: pass --port")
    server.state_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    with open(server.log_file, "w") as log:
        process = subprocess.Popen(
            server_command(config, server, driver_memory),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # outlives this command; stopped as a group
        )
    server.pid_file.write_text(str(process.pid))
    server.port_file.write_text(str(server.port))
    deadline = time.monotonic() + timeout_s
    while not _port_open(server.host, server.port):
        if process.poll() is not None:
            server.pid_file.unlink(missing_ok=True)
            raise SqlServerError(
                f"the SQL server exited with code {process.returncode} (log: {server.log_file}):\n{_log_tail(server)}"
            )
        if time.monotonic() > deadline:
            stop(config)
            raise SqlServerError(f"the SQL server did not listen within {timeout_s:.0f} s (log: {server.log_file})")
        time.sleep(1)
    return server


def stop(config: LakehouseConfig, timeout_s: float = 60) -> bool:
    """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout_s``); False when none ran."""
    server = sql_server(config)
    pid = running_pid(server)
    if pid is None:
        server.pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while running_pid(server) is not None and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.5)
    if running_pid(server) is not None:
        os.killpg(pid, signal.SIGKILL)
        time.sleep(1)
        _reap(pid)
    server.pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the server is this process's child (else it lingers as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
