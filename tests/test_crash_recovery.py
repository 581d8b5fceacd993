"""A process killed in the middle of a run loses nothing: the thread continues later,
finished work is reused and the interrupted sub-assistant resumes."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from assistant_graph import build_assistant_graph, load_assistants, open_checkpointer
from assistant_graph._message_store import MessageStoreSaver
from assistant_graph.testing import ScriptedModels, ScriptedOpenAIServer, reply, tool_call

from .test_cli import EXAMPLE_ASSISTANTS, Cli, example, finish, sub
from .test_cli import cli as cli  # fixture
from .test_cli import server as server  # fixture

DEADLINE = 30.0
THINKING = 4.0
"""Seconds the calculator's first request takes: the process is killed meanwhile."""


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The thread store of the killed process and of the next: a SQLite file, or the test
    PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "threads.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def thread(db: str) -> Iterator[str]:
    """A thread of its own: the PostgreSQL database is shared by the tests."""
    thread_id = f"crash-{uuid.uuid4().hex[:12]}"
    yield thread_id
    with open_checkpointer(db) as saver:
        saver.delete_thread(thread_id)


def test_a_killed_run_continues_reusing_finished_sub_assistants(
    cli: Cli, server: ScriptedOpenAIServer, db: str, thread: str
) -> None:
    server.script(
        "proxy",
        reply(
            tool_calls=[
                sub("researcher", "Diameter of Mars?"),
                sub("writer", "Write a title."),
                sub("writer", "Write a subtitle."),
            ]
        ),
        "All done.",
    )
    server.script("writer", "A title", "A subtitle")
    server.script("researcher", reply(tool_calls=[sub("calculator", "2*3389.5")]), "6779 km")
    # The calculator (depth 2) is still thinking when the process is killed.
    server.script(
        "calculator",
        reply(tool_calls=[tool_call("calculate", expression="2*3389.5")], delay=THINKING),
        reply(tool_calls=[tool_call("calculate", expression="2*3389.5")]),
        "6779",
    )
    args = example("run", "proxy", "--thread", thread, "--db", db, "--json")

    process = cli.start(*args, "Tell me about Mars.")
    wait_for(lambda: len(server.requests_for("calculator")) == 1, "the calculator's request")
    wait_for(lambda: finished_calls(db, thread) == 2, "both writers' results in the database")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=DEADLINE)
    assert process.returncode == -signal.SIGKILL

    outcome = finish(cli.start(*args))  # no message: continue the interrupted run

    assert outcome.code == 0, outcome.stderr
    assert outcome.events()[-1]["content"] == "All done."
    counts = {
        key: len(server.requests_for(key))
        for key in ("proxy", "researcher", "writer", "calculator")
    }
    assert counts == {"proxy": 2, "researcher": 2, "writer": 2, "calculator": 3}

    messages, sub_conversations = stored_thread(db, thread)
    with open_checkpointer(db) as saver:  # the thread was kept with each message stored once
        assert isinstance(saver, MessageStoreSaver)
        assert len(saver.rows.stored_digests(thread)) >= len(messages)
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert isinstance(messages[1], AIMessage)
    asked = [call["id"] for call in messages[1].tool_calls]
    answered = [m.tool_call_id for m in messages if isinstance(m, ToolMessage)]
    # key=str: a ToolCall's id is typed str | None; a None would still fail the comparison.
    assert sorted(asked, key=str) == sorted(answered) and len(set(answered)) == 3
    assert len({m.id for m in messages}) == len(messages)
    researcher = next(c for c in sub_conversations.values() if c["assistant"] == "researcher")
    [calculator] = researcher["sub_assistant_states"].values()
    assert [type(m).__name__ for m in calculator["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]


def finished_calls(db: str, thread: str) -> int:
    """How many of the root's tool calls have their result stored, pending the others."""
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph(
            "proxy",
            load_assistants(EXAMPLE_ASSISTANTS),
            model=ScriptedModels({}),
            checkpointer=saver,
        )
        state = graph.get_state({"configurable": {"thread_id": thread}})
    return sum(task.result is not None for task in state.tasks)


def stored_thread(db: str, thread: str) -> tuple[list[BaseMessage], dict[str, dict[str, Any]]]:
    """The root messages and sub-conversations of ``thread``, read from the database."""
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph(
            "proxy",
            load_assistants(EXAMPLE_ASSISTANTS),
            model=ScriptedModels({}),
            checkpointer=saver,
        )
        values = graph.get_state({"configurable": {"thread_id": thread}}).values
    return values["messages"], values["sub_assistant_states"]
