"""Real log files written by others, for testing the file formats on what servers really write.

Debian's ``fail2ban`` package ships the log samples its filters are tested on, collected from real
servers over the years (``fail2ban/tests/files/logs/``): sshd and postfix logs in the RFC 3164,
RFC 3339 (rsyslog) and RFC 5424 forms, FreeBSD syslogd ``-v`` lines, Nginx, Apache and Traefik access
logs, and lines with bytes that are not UTF-8. They are fetched from the package registry into
the downloads cache (never committed) by :func:`lakehouse.install.datasets._debian_package`.

The samples also hold fail2ban's own annotations (``# failJSON: {...}`` comment lines) and blank
lines between groups: lines no log format parses, which a reader must rescue rather than drop.
"""

from __future__ import annotations

from pathlib import Path

from lakehouse.install.datasets import DatasetUnavailable, _debian_package

FAIL2BAN_FILES = "usr/lib/python3/dist-packages/fail2ban/tests/files"


def fail2ban_sample(name: str) -> Path:
    """A log sample shipped by Debian's ``fail2ban``: ``logs/<name>`` (``sshd``, ``postfix``,
    ``traefik-auth``, ``bsd/syslog-v.txt``...) or a file beside that folder (``testcase-wrong-char.log``)."""
    root = _debian_package("fail2ban") / FAIL2BAN_FILES
    path = root / "logs" / name
    if not path.is_file():
        path = root / name
    if not path.is_file():
        raise DatasetUnavailable(f"the fail2ban package holds no sample {name!r} under {root}")
    return path


def annotation_lines(path: Path) -> int:
    """How many lines of a fail2ban sample are its own annotations (``#`` comments) or blank."""
    lines = path.read_bytes().splitlines()
    return sum(1 for line in lines if not line.strip() or line.lstrip().startswith(b"#"))
