"""A real server for the web page's tests: uvicorn on a free loopback port, reading its
event streams, and a small team whose costs and budgets the page must show."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from langchain_core.messages import AIMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

from assistant_graph import (
    AssistantCatalog,
    build_assistant_graph,
    open_checkpointer,
    stream_events,
)
from assistant_graph.testing import ScriptedModels, ai, call_sub_assistant, call_tool
from assistant_graph.ui._demo import demo_catalog, demo_models
from tests.conftest import AssistantFolder
from tests.loopback import free_port

START_TIMEOUT = 20.0
SETTLE_TIMEOUT = 30.0


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


# A thread the CLI left waiting --------------------------------------------------------

TRIP = "Help me plan a trip to another planet."
"""The demo's message whose researcher and writer each ask the person a question."""


def waiting_thread_run_elsewhere(db: Path, thread_id: str = "from-cli") -> str:
    """Run the demo's trip on thread ``thread_id`` in ``db`` as the CLI does, without the
    web app, so that it waits for its two questions; the thread id."""
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph(
            "proxy", demo_catalog(), model=demo_models(latency=0.0), checkpointer=saver
        )
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        final = list(stream_events(graph, TRIP, config))[-1]
    assert final.type == "final" and final.status == "interrupted"  # type: ignore[attr-defined]
    return thread_id


# A team with an unknown price and budgets that run out ----------------------------------

GPT_4O_MINI = (0.15, 0.60)
"""The list price of ``openai:gpt-4o-mini`` (USD per million input, output tokens), as the
price table has it."""


def cost(input_tokens: int, output_tokens: int, price: tuple[float, float] = GPT_4O_MINI) -> float:
    """What a call costs at ``price``, by hand."""
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


@tool
def jot(text: str) -> str:
    """Write a note down."""
    return f"noted: {text}"


def _spent(message: AIMessage, input_tokens: int, output_tokens: int) -> AIMessage:
    """``message`` reporting the tokens a real model call would."""
    total = input_tokens + output_tokens
    message.usage_metadata = UsageMetadata(
        input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=total
    )
    return message


def budget_team(folder: AssistantFolder) -> tuple[AssistantCatalog, ScriptedModels]:
    """boss (``openai:gpt-4o-mini``, at most 1,350 tokens) asks worker, on
    ``openai:house-model``, a model no price table knows; their scripted models.

    The boss's first call takes 1,100 tokens, so the worker may spend the 250 left; its two
    calls take 120 and 160: it stops with 280 of 250 tokens, before its second ``jot``.
    Back in the boss, 1,380 of its 1,350 tokens are spent: the run stops incomplete
    before the boss's second call. The scripted models are priced by the models the YAML
    files name.
    """
    folder.add("boss", sub_assistants=["worker"], budget={"max_tokens": 1350})
    folder.add("worker", callable=True, model="openai:house-model", tools=["tests.ui_support:jot"])
    models = ScriptedModels(
        {
            "boss": [
                _spent(ai(tool_calls=[call_sub_assistant("worker", "Note A, then B.")]), 1000, 100)
            ],
            "worker": [
                _spent(ai(tool_calls=[call_tool("jot", text="A")]), 100, 20),
                _spent(ai("Noted A.", tool_calls=[call_tool("jot", text="B")]), 150, 10),
            ],
        }
    )
    return folder.load(), models
