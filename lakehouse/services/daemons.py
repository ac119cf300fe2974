"""Long-running processes the project starts for the user (the SQL server, a Spark standalone cluster):
detached from the command that starts them, with a pid file and a log in a state folder, found again
by a later command and stopped as a process group.

Their secrets (passwords, shared keys) never go on a command line, where every local user reads them in
``/proc/<pid>/cmdline``, nor into the environment of a process that does not use them: they live in files
of mode 0600 in the git-ignored secrets folder (:data:`SECRETS_DIR`), created once by :func:`create_secret`,
and a process is given the file (a passfile, a private properties file, a private ``hive-site.xml``).
:func:`child_environment` is the environment a child gets: this one without the secret variables.
"""

from __future__ import annotations

import os
import secrets as _random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from lakehouse.install.paths import CACHE_DIR

SECRETS_DIR = CACHE_DIR / "secrets"  # beside the pseudonym key of conf/local.yaml; git-ignored (.cache/)

# Variables that hold a secret: a child process gets none of them unless it names the ones it uses.
SECRET_VARIABLES = (
    "LAKEHOUSE_PG_PASSWORD",
    "PGPASSWORD",
    "LAKEHOUSE_PSEUDONYM_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "_SPARK_AUTH_SECRET",
)
S3_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def child_environment(keep: Iterable[str] = (), base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) without the secret variables, except those in ``keep``
    (what the child really uses, e.g. :data:`S3_VARIABLES` for a JVM that reads s3a), plus ``extra``."""
    kept = set(keep)
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in SECRET_VARIABLES or k in kept}
    env.update(extra)
    return env


def _private_folder(folder: Path) -> None:
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def create_secret(path: Path, generate: Callable[[], str] = lambda: _random.token_hex(24)) -> str:
    """The secret kept in ``path``, generated there first (mode 0600) when the file does not exist.

    Written aside, then linked into place: of two processes creating it at once, the first link wins and
    both return that one complete value (never an empty or a second one)."""
    path = Path(path)
    if not path.is_file():
        _private_folder(path.parent)
        draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return read_secret(path)


def read_secret(path: Path) -> str:
    """The one-line secret in ``path``; refused when others may read the file."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}): chmod 600 {path}")
    return path.read_text().strip()


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 (replacing it atomically; never readable by others, even
    for a moment). For files that hand a secret to a process: properties files, passfiles, hive-site.xml."""
    path = Path(path)
    _private_folder(path.parent)
    draft = path.with_name(f".{path.name}.{os.getpid()}.draft")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(draft, path)
    return path


def spark_properties(settings: Mapping[str, str]) -> str:
    """``settings`` in the format of Spark's ``--properties-file`` (java.util.Properties, ``key=value``)."""

    def escape(text: str, key: bool = False) -> str:
        text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return text.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ") if key else text

    return "".join(f"{escape(key, True)}={escape(str(value))}\n" for key, value in settings.items())


class DaemonError(RuntimeError):
    """A daemon could not be started or did not come up; the message holds its log's tail."""


@dataclass(frozen=True)
class Daemon:
    """One detached process: ``<state_dir>/<name>.pid`` and ``<name>.log``; ``marker`` is a string of its
    command line that tells it from an unrelated process that reused the pid (e.g. its main class)."""

    state_dir: Path
    name: str
    marker: str

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"


def running_pid(daemon: Daemon) -> int | None:
    """The daemon's pid when it is alive (and is still the process that was started), else None."""
    if not daemon.pid_file.is_file():
        return None
    pid = int(daemon.pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.is_file() and daemon.marker.encode() not in cmdline.read_bytes():
        return None  # the pid was reused by another program (or the daemon is a zombie)
    return pid


def spawn(daemon: Daemon, command: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``command`` detached (its own session, so it outlives this process), logging to the log file."""
    daemon.state_dir.mkdir(parents=True, exist_ok=True)
    with open(daemon.log_file, "w") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    daemon.pid_file.write_text(str(process.pid))
    return process


def wait_until(
    ready: Callable[[], bool], daemon: Daemon, process: subprocess.Popen | None, timeout_s: float, what: str
) -> None:
    """Poll ``ready`` once a second; DaemonError with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        exited = process.poll() if process is not None else (None if running_pid(daemon) else 1)
        if exited is not None:
            daemon.pid_file.unlink(missing_ok=True)
            raise DaemonError(
                f"{what}: the process exited with code {exited} (log: {daemon.log_file}):\n{log_tail(daemon)}"
            )
        if time.monotonic() > deadline:
            stop(daemon)
            raise DaemonError(
                f"{what}: not ready within {timeout_s:.0f} s (log: {daemon.log_file}):\n{log_tail(daemon)}"
            )
        time.sleep(1)


def stop(daemon: Daemon, timeout_s: float = 60) -> bool:
    """SIGTERM to the daemon's process group, SIGKILL after ``timeout_s``; False when it was not running."""
    pid = running_pid(daemon)
    if pid is None:
        daemon.pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while running_pid(daemon) is not None and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.5)
    if running_pid(daemon) is not None:
        os.killpg(pid, signal.SIGKILL)
        time.sleep(1)
        _reap(pid)
    daemon.pid_file.unlink(missing_ok=True)
    return True


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def log_tail(daemon: Daemon, lines: int = 40) -> str:
    """The last ``lines`` lines of the daemon's log ("" when there is none)."""
    if not daemon.log_file.is_file():
        return ""
    return "\n".join(daemon.log_file.read_text(errors="replace").splitlines()[-lines:])


def _reap(pid: int) -> None:
    """Collect the exit status when the daemon is this process's child (else it lingers as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
