"""A real PostgreSQL server the project starts itself, on 127.0.0.1 only: the application database.

``initdb`` once into a data folder, then ``pg_ctl start``/``stop``. PostgreSQL refuses to run as
root, so when this process is root the server runs as the ``postgres`` system user (the data folder
is handed to it). Clients (psql, pg_dump, Spark's JDBC reader, the Hive metastore) connect over TCP on
127.0.0.1 as the ``lakehouse`` role.

Every connection authenticates with scram-sha-256 (``initdb --auth=scram-sha-256``; no ``trust`` line,
not even for the local socket). The role's password is generated once into ``postgres.password_file``
(default ``.cache/secrets/postgres.password``, mode 0600, git-ignored) and read back by
:func:`server_password`; a server someone else runs takes ``LAKEHOUSE_PG_PASSWORD`` (or a password file)
instead. psql, pg_dump and pg_isready get it through a passfile of mode 0600 (``PGPASSFILE``) written for
the call and removed after it: never ``PGPASSWORD`` in their environment, never a password on a command
line. A data folder made by an older version with ``--auth=trust`` is migrated when the server starts
(the password is set as a SCRAM verifier computed here, pg_hba.conf is switched to scram-sha-256, the
server reloads); one that asks for a password this project no longer has is refused with what to do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lakehouse.services import daemons

SERVER_USER = "postgres"  # the system account the server runs as when we are root
PASSWORD_VARIABLE = "LAKEHOUSE_PG_PASSWORD"  # the password of a server the project does not manage
DEFAULT_PASSWORD_FILE = daemons.SECRETS_DIR / "postgres.password"  # of a managed server built without a config
AUTH_METHOD = "scram-sha-256"


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
    # Where the role's password is kept (mode 0600). A managed server always has one (default
    # DEFAULT_PASSWORD_FILE); for another server None means LAKEHOUSE_PG_PASSWORD (or no password).
    password_file: Path | None = None

    def __post_init__(self):
        if self.password_file is None and self.data_dir is not None:
            object.__setattr__(self, "password_file", DEFAULT_PASSWORD_FILE)
        elif self.password_file is not None:
            object.__setattr__(self, "password_file", Path(self.password_file))

    @classmethod
    def from_config(cls, config) -> "PostgresServer":
        """The server a :class:`~lakehouse.project.config.LakehouseConfig` points at."""
        pg = config.postgres
        password_file = getattr(pg, "password_file", None)
        return cls(
            reachable_data_dir(Path(pg.data_dir)) if pg.data_dir else None,
            pg.port,
            pg.host,
            pg.user,
            Path(password_file) if password_file else None,
        )

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
        """The environment of a client program (psql, pg_dump): where to connect, and no secret at all
        (:func:`client_environment` adds the passfile)."""
        return daemons.child_environment(PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user)

    @property
    def log_file(self) -> Path:
        return self.managed_data_dir() / "server.log"


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _run(command: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", daemons.child_environment())  # the server and initdb need no secret variable
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


# ---------------------------------------------------------------- passwords


def server_password(server_or_config) -> str | None:
    """The password of the configured role on this server: the password file's line when the file exists
    (a managed server's is generated when it is first initialised), else ``LAKEHOUSE_PG_PASSWORD``, else None.

    Takes a :class:`PostgresServer` or a :class:`~lakehouse.project.config.LakehouseConfig`. What Spark's JDBC
    reads and the metastore connect with; psql and friends get it through :func:`client_environment`."""
    server = (
        server_or_config
        if isinstance(server_or_config, PostgresServer)
        else PostgresServer.from_config(server_or_config)
    )
    if server.password_file is not None and server.password_file.is_file():
        return daemons.read_secret(server.password_file)
    return os.environ.get(PASSWORD_VARIABLE) or None


def _generated_password(server: PostgresServer) -> str:
    """The managed server's password, generated into its password file the first time."""
    return daemons.create_secret(server.password_file)


def _passfile_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


@contextmanager
def client_environment(server: PostgresServer) -> Iterator[dict[str, str]]:
    """The environment for one run of psql/pg_dump/pg_isready: ``PGHOST``/``PGPORT``/``PGUSER`` and, when
    the server has a password, ``PGPASSFILE`` naming a file of mode 0600 that exists only for the call."""
    env = server.client_env()
    password = server_password(server)
    if password is None:
        yield env
        return
    fd, name = tempfile.mkstemp(prefix="lakehouse-pgpass-")  # mode 0600, as libpq requires of a passfile
    try:
        with os.fdopen(fd, "w") as handle:
            fields = [server.host, str(server.port), "*", server.user, password]
            handle.write(":".join(_passfile_field(field) for field in fields) + "\n")
        env["PGPASSFILE"] = name
        yield env
    finally:
        os.unlink(name)


def scram_verifier(password: str, iterations: int = 4096, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for a scram-sha-256 password (RFC 5803 format): setting the role's password
    to this never sends the password itself to the server (nor into its logs)."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"


_HBA_TRUST = re.compile(r"^(\s*(?:local|host\w*)\s.*?)\btrust\b", re.MULTILINE)


def _trusted_lines(data_dir: Path) -> bool:
    """True when pg_hba.conf lets some connection in without a password (``trust``)."""
    hba = data_dir / "pg_hba.conf"
    return hba.is_file() and _HBA_TRUST.search(hba.read_text()) is not None


def _require_passwords(server: PostgresServer) -> None:
    """Make a running managed server ask every client for a password: migrate a trust set-up, refuse one
    whose password this project lost."""
    data_dir = server.managed_data_dir()
    if not (data_dir / "PG_VERSION").is_file():
        return  # what answers on the port is not this data folder's server: not ours to change
    if _trusted_lines(data_dir):
        password = _generated_password(server)
        # Connected through the trust line itself; the verifier, not the password, goes to the server.
        psql(server, "postgres", stdin=f"ALTER ROLE \"{server.user}\" WITH PASSWORD '{scram_verifier(password)}';\n")
        hba = data_dir / "pg_hba.conf"
        hba.write_text(_HBA_TRUST.sub(lambda m: m.group(1) + AUTH_METHOD, hba.read_text()))  # keeps its owner
        _run(_as_server_user([str(_bin_dir() / "pg_ctl"), "-D", str(data_dir), "reload"]), f"reloading {data_dir}")
        print(
            f"PostgreSQL in {data_dir} trusted every local connection: switched to {AUTH_METHOD}, "
            f"the role {server.user}'s password is in {server.password_file}",
            file=sys.stderr,
        )
        return
    if server_password(server) is None:
        raise PostgresError(
            f"PostgreSQL in {data_dir} asks for a password, and {server.password_file} (where this project keeps "
            f"it) is missing: restore that file (mode 0600), or set {PASSWORD_VARIABLE}, or stop the server and "
            f"remove {data_dir} to start afresh (`lakehouse db load` reloads its databases)"
        )


# ---------------------------------------------------------------- lifecycle


def is_running(server: PostgresServer) -> bool:
    """True when a server answers on the server's host and port (pg_isready: no password needed)."""
    result = subprocess.run(
        [_client("pg_isready"), "-h", server.host, "-p", str(server.port), "-q"],
        capture_output=True,
        env=server.client_env(),
    )
    return result.returncode == 0


def _initdb(server: PostgresServer, data_dir: Path) -> None:
    """Create the cluster with scram-sha-256 everywhere and the role's (generated) password."""
    password = _generated_password(server)
    with tempfile.TemporaryDirectory(prefix="lakehouse-initdb-") as private:  # mode 0700
        pwfile = Path(private) / "pwfile"
        daemons.write_private(pwfile, password + "\n")
        _hand_to_server_user(Path(private))  # as root, initdb runs as postgres: it must read the file
        _hand_to_server_user(pwfile)
        _run(
            _as_server_user(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    server.user,
                    f"--auth={AUTH_METHOD}",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            f"initdb {data_dir}",
        )


def start(server: PostgresServer) -> PostgresServer:
    """Create the cluster on first use, then start it (no-op when it already runs); return ``server``.
    Either way the server then asks every client for a password (see the module's docstring)."""
    data_dir = server.managed_data_dir()
    if is_running(server):
        _require_passwords(server)
        return server
    if not (data_dir / "PG_VERSION").is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        _check_reachable(data_dir)
        data_dir.chmod(0o700)
        _hand_to_server_user(data_dir)
        _initdb(server, data_dir)
        with open(data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# written by lakehouse.services.postgres: loopback only, sockets in the data folder\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{data_dir}'\n"
                "timezone = 'UTC'\n"
                "fsync = off\n"  # a local, rebuildable source database: durability is not its job
            )
    log_file = server.log_file
    log_file.touch(exist_ok=True)
    _hand_to_server_user(log_file)
    _run(
        _as_server_user(
            [
                str(_bin_dir() / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log_file),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {server.port}",
                "start",
            ]
        ),
        f"starting PostgreSQL on {server.host}:{server.port} (log: {log_file})",
    )
    _require_passwords(server)
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


def psql(
    server: PostgresServer, database: str, sql: str | None = None, file: Path | None = None, stdin: str | None = None
) -> str:
    """Run SQL (a string or a file) with psql, stopping at the first error; return its output."""
    command = [_client("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-At"]
    if sql is not None:
        command += ["-c", sql]
    if file is not None:
        command += ["-f", str(file)]
    with client_environment(server) as env:
        return _run(command, f"psql on {database}", env=env, input=stdin).stdout


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
    with client_environment(server) as env:
        _run(command, f"pg_dump of {database}", env=env)
    return target
