"""A real Label Studio for the tests: installed once into a pinned virtual environment of its own (tool_venvs.py),
two annotators with API tokens, started on 127.0.0.1 and reached over its HTTP API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tool_venvs import pinned_venv

VERSION = "1.23.2"
ANNOTATORS = {"ann@example.org": "ann-token-lakehouse-1", "bob@example.org": "bob-token-lakehouse-2"}


@dataclass
class LabelStudio:
    """A running server and its annotators' tokens (the first is the organisation's owner)."""

    url: str
    tokens: dict[str, str]
    process: subprocess.Popen

    def call(self, method: str, path: str, annotator: str, body=None, raw: bool = False):
        """An API call as ``annotator``: the JSON answer (``raw``: the bytes)."""
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Token {self.tokens[annotator]}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                content = response.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: HTTP {error.code} {error.read()[:500]!r}") from error
        return content if raw else (json.loads(content) if content else None)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def start(data_dir: Path, port: int, local_files_root: Path) -> LabelStudio:
    """Initialise a server in ``data_dir`` with the two annotators (legacy API tokens on) and start it,
    serving local files under ``local_files_root``."""
    program = pinned_venv("label-studio", VERSION) / "bin" / "label-studio"
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(local_files_root),
    }
    common = ["--data-dir", str(data_dir)]
    for index, (annotator, token) in enumerate(ANNOTATORS.items()):
        password = ["--password", f"lakehouse-test-{index}"]
        legacy = ["--enable-legacy-api-token"] if index == 0 else []  # the organisation is made with the first
        done = subprocess.run(
            [str(program), "init", *common, "--username", annotator, *password, "--user-token", token, *legacy],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"label-studio init for {annotator} failed ({done.returncode}): {done.stderr[-3000:]}")
    log = open(data_dir / "server.log", "wb")
    process = subprocess.Popen(
        [str(program), "start", *common, "--host", "127.0.0.1", "--port", str(port), "--no-browser"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = LabelStudio(f"http://127.0.0.1:{port}", dict(ANNOTATORS), process)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Label Studio exited: {(data_dir / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=5) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(1)
    server.stop()
    raise RuntimeError(f"Label Studio did not answer on {server.url} within 300 s")
