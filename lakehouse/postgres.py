"""A real PostgreSQL server the project starts itself, on 127.0.0.1 only: the application database.

``initdb`` once into a data folder, then ``pg_ctl start``/``stop``. PostgreSQL refuses to run as
root, so when this process is root the server runs as the ``postgres`` system user (the data folder
is handed to it). Clients (psql, pg_dump, Spark's JDBC reader) connect over TCP on 127.0.0.1 as the
``lakehouse`` role, trusted on the loopback interface only; a password, when one is needed, comes from
``LAKEHOUSE_PG_PASSWORD``, never from a committed file.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"  # the system account the server runs as when we are root


class PostgresError(RuntimeError):
    """The server could not be set up, started or queried."""


def _bin_dir() -> Path:
    """Folder of the server programs (initdb, pg_ctl): Debian keeps them out of PATH."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if not candidates:
        raise PostgresError("PostgreSQL server programs not found: apt-get install postgresql")
    return candidates[0].parent


def _client(program: str) -> str:
    found = shutil.which(program) or str(_bin_dir() / program)
    if not Path(found).exists():
        raise PostgresError(f"{program} not found: apt-get install postgresql-client")
    return found


@dataclass(frozen=True)
class PostgresServer:
    """Where a server listens and, when the project manages it, where it keeps its data."""

    data_dir: Path | None
    port: int
    host: str = "127.0.0.1"
    user: str = "lakehouse"

    @classmethod
    def from_config(cls, config) -> "PostgresServer":
        """The server a :class:`~lakehouse.config.LakehouseConfig` points at."""
        pg = config.postgres
        return cls(reachable_data_dir(Path(pg.data_dir)) if pg.data_dir else None, pg.port, pg.host, pg.user)

    def managed_data_dir(self) -> Path:
        if self.data_dir is None:
            raise PostgresError(
                f"the server at {self.host}:{self.port} is not managed by the project (no postgres.data_dir "
                "in the configuration): start and stop it where it runs"
            )
        return self.data_dir

    def jdbc_url(self, database: str) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{database}"

    def client_env(self) -> dict[str, str]:
        env = dict(os.environ, PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user)
        if os.environ.get("LAKEHOUSE_PG_PASSWORD"):
            env["PGPASSWORD"] = os.environ["LAKEHOUSE_PG_PASSWORD"]
        return env

    @property
    def log_file(self) -> Path:
        return self.managed_data_dir() / "server.log"


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _run(command: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip()
        raise PostgresError(f"{what} failed: {detail}") from exc


def _hand_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(path, account.pw_uid, account.pw_gid)


def _server_user_can_enter(folder: Path) -> bool:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # folders still to be made get the default mode, which lets it through
    return subprocess.run(_as_server_user(["test", "-x", str(folder)]), capture_output=True).returncode == 0


def reachable_data_dir(data_dir: Path) -> Path:
    """``data_dir``, or, when we are root and the ``postgres`` account cannot reach it (a clone under a
    private home folder), a stand-in under /var/tmp named after it (the same one every time)."""
    if os.geteuid() != 0 or _server_user_can_enter(data_dir.parent):
        return data_dir
    tag = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"lakehouse-postgres-{tag}" / data_dir.name


def _check_reachable(data_dir: Path) -> None:
    """As root, the server runs as ``postgres``: every folder above the data folder must let it through."""
    if os.geteuid() != 0:
        return
    probe = subprocess.run(_as_server_user(["test", "-x", str(data_dir.parent)]), capture_output=True)
    if probe.returncode != 0:
        raise PostgresError(
            f"the '{SERVER_USER}' account cannot reach {data_dir} (a parent folder is private): "
            "set LAKEHOUSE_PG_DATA_DIR (or postgres.data_dir) to a folder under a readable path such as /var/tmp"
        )


def is_running(server: PostgresServer) -> bool:
    """True when a server answers on the server's host and port."""
    result = subprocess.run(
        [_client("pg_isready"), "-h", server.host, "-p", str(server.port), "-q"], capture_output=True
    )
    return result.returncode == 0


def start(server: PostgresServer) -> PostgresServer:
    """Create the cluster on first use, then start it (no-op when it already runs); return ``server``."""
    data_dir = server.managed_data_dir()
    if is_running(server):
        return server
    if not (data_dir / "PG_VERSION").is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        _check_reachable(data_dir)
        data_dir.chmod(0o700)
        _hand_to_server_user(data_dir)
        _run(
            _as_server_user([
                str(_bin_dir() / "initdb"), "-D", str(data_dir), "-U", server.user, "--auth=trust",
                "-E", "UTF8", "--locale=C",
            ]),
            f"initdb {data_dir}",
        )
        with open(data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# written by lakehouse.postgres: loopback only, sockets in the data folder\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{data_dir}'\n"
                "timezone = 'UTC'\n"
                "fsync = off\n"  # a local, rebuildable source database: durability is not its job
            )
    log_file = server.log_file
    log_file.touch(exist_ok=True)
    _hand_to_server_user(log_file)
    _run(
        _as_server_user([
            str(_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-l", str(log_file), "-w", "-t", "60",
            "-o", f"-p {server.port}", "start",
        ]),
        f"starting PostgreSQL on {server.host}:{server.port} (log: {log_file})",
    )
    return server


def stop(server: PostgresServer) -> bool:
    """Stop the server (fast shutdown); False when it was not running."""
    data_dir = server.managed_data_dir()
    if not (data_dir / "postmaster.pid").is_file():
        return False
    _run(
        _as_server_user([str(_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"]),
        f"stopping PostgreSQL in {data_dir}",
    )
    return True


def psql(server: PostgresServer, database: str, sql: str | None = None, file: Path | None = None,
         stdin: str | None = None) -> str:
    """Run SQL (a string or a file) with psql, stopping at the first error; return its output."""
    command = [_client("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-At"]
    if sql is not None:
        command += ["-c", sql]
    if file is not None:
        command += ["-f", str(file)]
    return _run(command, f"psql on {database}", env=server.client_env(), input=stdin).stdout


def create_database(server: PostgresServer, database: str, drop_existing: bool = False) -> None:
    """Create ``database`` (recreate it when ``drop_existing``)."""
    if drop_existing:
        psql(server, "postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    exists = psql(server, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{database}'").strip()
    if not exists:
        psql(server, "postgres", f'CREATE DATABASE "{database}"')


def pg_dump(server: PostgresServer, database: str, target: Path, tables: list[str] | None = None) -> Path:
    """Write a plain-format SQL dump of ``database`` (its ``COPY ... FROM stdin`` blocks hold the rows)."""
    command = [_client("pg_dump"), "--format=plain", "--no-owner", "-d", database, "-f", str(target)]
    for table in tables or []:
        command += ["-t", table]
    _run(command, f"pg_dump of {database}", env=server.client_env())
    return target
