"""Tools the tests start whose pins clash with ours (Apache Airflow, Label Studio), each installed once into a
virtual environment of its own under .cache/, with its whole environment pinned by ``tool_pins/NAME-VERSION.txt``.

Their own requirements are open-ended, so without the pins a new release of a dependency breaks a test
overnight (sentry-sdk 3.0 broke Label Studio 1.23.2). Regenerate a pin file with ``pip freeze`` in a working
environment of the tool.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from lakehouse.paths import CACHE_DIR

PINS = Path(__file__).with_name("tool_pins")


class ToolUnavailable(RuntimeError):
    """The tool could not be installed here (the message says why)."""


def pinned_venv(package: str, version: str) -> Path:
    """The virtual environment ``.cache/PACKAGE-VERSION`` with ``package==version`` installed under its pins; made
    the first time, and again whenever the pin file changes."""
    venv = CACHE_DIR / f"{package}-{version}"
    pins = PINS / f"{package}-{version}.txt"
    marker = venv / ".installed"
    pins_hash = hashlib.sha256(pins.read_bytes()).hexdigest()
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
