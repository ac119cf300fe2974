"""Where a secret shows on this machine: the command lines and environments of running processes
(``/proc/<pid>/cmdline`` is readable by every local user; ``environ`` by the same user and root)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and parentheses


def descendants(*roots: int) -> list[int]:
    """``roots`` and every process below them, alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo += children.get(pid, [])
    return found


def exposures(secret_values: Iterable[str], pids: Iterable[int]) -> list[str]:
    """``"<pid> <program>: <where>"`` for each process whose command line or environment holds one of
    ``secret_values`` (empty when none does)."""
    values = [value.encode() for value in secret_values if value]
    found = []
    for pid in pids:
        for where in ("cmdline", "environ"):
            try:
                text = Path(f"/proc/{pid}/{where}").read_bytes()
                program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue  # gone meanwhile
            for value in values:
                if value in text:
                    found.append(f"{pid} {program}: {where}")
    return found
