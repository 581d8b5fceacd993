"""Compacting finished threads keeps only what continuing them needs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from assistant_graph import AssistantCatalog, build_assistant_graph, compact_thread, read_artifact
from assistant_graph.testing import (
    ModelCall,
    ScriptedModels,
    ScriptedOpenAIServer,
    ai,
    call_sub_assistant,
    call_tool,
)

from .test_cli import Cli, example
from .test_cli import cli as cli  # fixture
from .test_cli import server as server  # fixture

CONFIG = {"configurable": {"thread_id": "long"}}


def delegate_to_writer(call: ModelCall) -> Any:
    """Resume the writer's conversation if there is one, else open it."""
    results = [m for m in call.messages if isinstance(m, ToolMessage)]
    uid = read_artifact(results[-1])["subgraph_uid"] if results else None  # type: ignore[index]
    if call.messages[-1].type == "tool":
        return "ok"
    return ai(tool_calls=[call_sub_assistant("writer", "more", resume_conversation_uid=uid)])


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with sqlite3.connect(tmp_path / "threads.sqlite", check_same_thread=False) as connection:
        yield connection
    connection.close()


def rows(connection: sqlite3.Connection, table: str) -> int:
    return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_a_finished_thread_keeps_one_checkpoint_and_still_resumes_its_sub_conversations(
    team: AssistantCatalog, connection: sqlite3.Connection
) -> None:
    models = ScriptedModels(
        {"proxy": [delegate_to_writer] * 6, "writer": [lambda c: f"part {len(c.messages)}"] * 3}
    )
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=SqliteSaver(connection))
    for turn in range(2):
        graph.invoke({"messages": [("user", f"turn {turn}")]}, CONFIG)
    before = rows(connection, "checkpoints")

    assert compact_thread(graph, CONFIG) is True

    assert before > 10 and rows(connection, "checkpoints") == 1
    assert rows(connection, "writes") == 0
    result = graph.invoke({"messages": [("user", "turn 2")]}, CONFIG)
    third = models.calls("writer")[2]
    assert [m.content for m in third.messages[1:]] == ["more", "part 2", "more", "part 4", "more"]
    assert len(result["messages"]) == 12
    assert len(result["sub_assistant_states"]) == 1


def test_a_thread_waiting_for_input_is_left_alone(connection: sqlite3.Connection) -> None:
    team = AssistantCatalog.from_schemas(
        [{"name": "asker", "description": "d", "instructions": "i", "ask_user": True}]
    )
    models = ScriptedModels(
        {"asker": [ai(tool_calls=[call_tool("ask_user", question="Which?")]), "thanks"]}
    )
    graph = build_assistant_graph("asker", team, model=models, checkpointer=SqliteSaver(connection))
    graph.invoke({"messages": [("user", "go")]}, CONFIG)
    before = rows(connection, "checkpoints")

    assert compact_thread(graph, CONFIG) is False
    assert rows(connection, "checkpoints") == before
    assert graph.invoke(Command(resume="that one"), CONFIG)["messages"][-1].content == "thanks"


def test_other_checkpointers_are_not_compacted(team: AssistantCatalog) -> None:
    graph = build_assistant_graph(
        "writer", team, model=ScriptedModels({"writer": ["hi"]}), checkpointer=InMemorySaver()
    )
    graph.invoke({"messages": [("user", "go")]}, CONFIG)
    assert compact_thread(graph, CONFIG) is False


def test_the_cli_compacts_finished_threads_unless_asked_to_keep_history(
    cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    server.script("writer", "one", "two", "three", "four")
    for thread, flags in (("compact", ()), ("history", ("--keep-history",))):
        database = tmp_path / f"{thread}.sqlite"
        for text in ("hi", "again"):
            outcome = cli(
                *example("run", "writer", text, "--thread", thread, "--db", str(database), *flags)
            )
            assert outcome.code == 0, outcome.stderr
        with sqlite3.connect(database) as connection:
            count = rows(connection, "checkpoints")
        connection.close()
        assert (count == 1) is (thread == "compact"), (thread, count)


def test_a_caller_that_knows_the_run_finished_can_skip_the_check(
    team: AssistantCatalog, connection: sqlite3.Connection
) -> None:
    models = ScriptedModels({"writer": ["hi", "again"]})
    graph = build_assistant_graph(
        "writer", team, model=models, checkpointer=SqliteSaver(connection)
    )
    graph.invoke({"messages": [("user", "go")]}, CONFIG)
    latest = graph.get_state(CONFIG).config["configurable"]["checkpoint_id"]
    assert compact_thread(graph, CONFIG, finished=True) is True
    assert graph.get_state(CONFIG).config["configurable"]["checkpoint_id"] == latest
    assert rows(connection, "checkpoints") == 1
    result = graph.invoke({"messages": [("user", "more")]}, CONFIG)
    assert [m.content for m in result["messages"]] == ["go", "hi", "more", "again"]
