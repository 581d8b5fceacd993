"""What the MCP tests share: the toolbox server (stdio or HTTP on 127.0.0.1), folders that
use it, and the check that no process outlives a test.

Import the fixtures into a test module to use them (``from tests.mcp_support import ...``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import AssistantFolder
from tests.loopback import free_port

TOOLBOX = Path(__file__).with_name("mcp_toolbox_server.py")
"""The MCP server the tests start (FastMCP; see its docstring for its tools)."""
TOOLBOX_TOOLS = ["add", "echo", "fail", "picture", "crash", "sleep", "process_id", "count"]
STARTUP_SECONDS = 20.0
GRACE_SECONDS = 10.0


def stdio_toolbox(**settings: Any) -> dict[str, Any]:
    """An ``mcpServers`` entry that starts the toolbox over stdio."""
    return {"command": "python", "args": [str(TOOLBOX)], **settings}


def write_mcp_json(folder: AssistantFolder, **servers: dict[str, Any]) -> Path:
    """Write ``mcp.json`` with these servers into the folder."""
    return folder.write("mcp.json", json.dumps({"mcpServers": servers}))


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    """Return once something listens on ``port``; fail if ``process`` dies first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {STARTUP_SECONDS} s")


@dataclass
class HttpToolbox:
    """The toolbox over streamable HTTP on 127.0.0.1, in a process of its own."""

    port: int = field(default_factory=free_port)
    token_env: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        command = [sys.executable, str(TOOLBOX), "--http", str(self.port)]
        if self.token_env:
            command += ["--token-env", self.token_env]
        self.process = subprocess.Popen(
            command, env={**os.environ, **self.env}, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=GRACE_SECONDS)


_EARLIER: set[int] = set()
"""Processes that were running before the current test started (e.g. a forkserver another
test module left for the session): not this test's."""


def _live_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def children() -> list[psutil.Process]:
    """The live processes the current test started (and theirs), zombies excepted."""
    return [child for child in _live_children() if child.pid not in _EARLIER]


@pytest.fixture(autouse=True)
def no_stray_processes() -> Iterator[None]:
    """Fail the test if it leaves a process behind (servers of runs included). Autouse in
    every module that imports it; set up first, so checked after the other fixtures end."""
    _EARLIER.clear()
    _EARLIER.update(child.pid for child in _live_children())
    yield
    deadline = time.monotonic() + GRACE_SECONDS
    while True:
        left = children()
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    assert [" ".join(child.cmdline()) for child in left] == [], "processes left behind"


@pytest.fixture
def http_toolbox() -> Iterator[HttpToolbox]:
    """The toolbox over streamable HTTP, stopped after the test."""
    server = HttpToolbox()
    server.start()
    try:
        yield server
    finally:
        server.kill()
