"""Tools the tests start whose pins clash with ours (Apache Airflow, Label Studio), each installed once into a
virtual environment of its own, with its whole environment pinned by ``tool_pins/NAME-VERSION.txt``.

The environments are kept in the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``, under ``lakehouse-tools/``),
named by the pins' hash, as pre-commit keeps its hook environments: a fresh clone on a machine that already
installed the same pins reuses them (an install costs minutes: Label Studio alone is about 150 packages).

Their own requirements are open-ended, so without the pins a new release of a dependency breaks a test
overnight (sentry-sdk 3.0 broke Label Studio 1.23.2). Regenerate a pin file with ``pip freeze`` in a working
environment of the tool.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

PINS = Path(__file__).with_name("tool_pins")
TOOLS_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakehouse-tools"


class ToolUnavailable(RuntimeError):
    """The tool could not be installed here (the message says why)."""


def pinned_venv(package: str, version: str) -> Path:
    """A virtual environment with ``package==version`` installed under its pins, made the first time these pins
    are asked for with this Python (one process at a time installs it; the others wait and reuse it)."""
    pins = PINS / f"{package}-{version}.txt"
    pins_hash = hashlib.sha256(pins.read_bytes()).hexdigest()
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    venv = TOOLS_CACHE / f"{package}-{version}-{python}-{pins_hash[:12]}"
    TOOLS_CACHE.mkdir(parents=True, exist_ok=True)
    with open(TOOLS_CACHE / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install(package, version, pins, pins_hash, venv)


def _install(package: str, version: str, pins: Path, pins_hash: str, venv: Path) -> Path:
    marker = venv / ".installed"  # written last: a half-made environment is made again
    if marker.is_file() and marker.read_text() == pins_hash:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(pins), f"{package}=={version}"],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if done.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise ToolUnavailable(f"{package} {version} is not installable here: {done.stderr.strip()[-400:]}")
    marker.write_text(pins_hash)
    return venv
