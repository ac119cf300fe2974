"""Fail points for crash tests: make a real job process stop at a chosen point so a test can SIGKILL it.

``LAKEHOUSE_PAUSE_AFTER_COMMIT=<table>`` makes the process, right after its first commit to
``<table>``, touch the file named by ``LAKEHOUSE_PAUSE_MARKER`` and sleep until it is killed. Unset (as
always outside tests), this does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AFTER_COMMIT = "LAKEHOUSE_PAUSE_AFTER_COMMIT"
PAUSE_MARKER = "LAKEHOUSE_PAUSE_MARKER"


def after_commit(table_name: str) -> None:
    """Called by the writer after each commit; pauses forever at the configured table."""
    if os.environ.get(PAUSE_AFTER_COMMIT) != table_name:
        return
    marker = os.environ.get(PAUSE_MARKER)
    if marker:
        Path(marker).write_text(f"paused after a commit to {table_name}\n")
    while True:  # until SIGKILL
        time.sleep(1)
