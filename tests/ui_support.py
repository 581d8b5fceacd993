"""A real server for the web page's tests: uvicorn on a free loopback port, and reading its
event streams."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

START_TIMEOUT = 20.0
SETTLE_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread of this process; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Page:
    """What the page does over HTTP: its CSRF token, JSON calls, the event stream."""

    client: httpx.Client
    csrf: str = ""
    messages: list[tuple[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, client: httpx.Client) -> Page:
        html = client.get("/").text
        token = html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        return cls(client, token)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.client.post(path, json=body, headers={"x-csrf-token": self.csrf})

    def start(self, message: str, assistant: str = "proxy") -> str:
        response = self.post("/api/threads", {"assistant": assistant, "message": message})
        assert response.status_code == 202, response.text
        thread_id: str = response.json()["thread_id"]
        return thread_id

    def settle(self, thread_id: str) -> dict[str, Any]:
        """Watch the thread's stream until a run is over; its last snapshot.

        Every message is kept in ``messages``.
        """
        deadline = time.monotonic() + SETTLE_TIMEOUT
        with self.client.stream(
            "GET", f"/api/threads/{thread_id}/stream", timeout=SETTLE_TIMEOUT
        ) as response:
            assert response.status_code == 200, response.read()
            for kind, data in server_sent(response.iter_lines()):
                self.messages.append((kind, data))
                if kind == "snapshot" and data["status"] != "running":
                    view: dict[str, Any] = data
                    return view
                if time.monotonic() > deadline:
                    break
        raise AssertionError(f"thread {thread_id} did not settle: {self.messages[-3:]}")


def server_sent(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """``(event, data)`` of a server-sent event stream (comments skipped)."""
    kind, data = "message", ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data += line[len("data: ") :]
        elif line == "" and data:
            yield kind, json.loads(data)
            kind, data = "message", ""


def events(view: dict[str, Any], turn: int = -1) -> list[dict[str, Any]]:
    """The events of one turn of a thread view (the last by default)."""
    return [record["event"] for record in view["turns"][turn]["records"]]


def kinds(view: dict[str, Any], turn: int = -1) -> list[tuple[str, str]]:
    """``(type, path)`` of each event of a turn, tokens left out."""
    return [
        (event["type"], ">".join(event["path"]))
        for event in events(view, turn)
        if event["type"] != "token"
    ]
