"""Servers the tests start as processes on loopback: a free port, and stopping them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

STOP_SECONDS = 10.0
"""How long a stopped process group gets to exit after each signal."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, asked of the kernel."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes], timeout: float = STOP_SECONDS) -> None:
    """Stop a process's whole group (started with ``start_new_session=True``): SIGTERM,
    then SIGKILL if it is still running after ``timeout`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            process.wait()
            return
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
