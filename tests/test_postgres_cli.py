"""The command line on PostgreSQL: a question asked by a sub-assistant in one process is
answered with ``--resume`` in another, and the thread goes on from the database."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot

from assistant_graph import build_assistant_graph, load_assistants, open_checkpointer
from assistant_graph.testing import (
    ScriptedModels,
    ScriptedOpenAIServer,
    reply,
    route_by_system_prompt,
    tool_call,
)

from .test_cli import Cli, hitl_team, sub
from .test_cli import server as server  # fixture

pytestmark = pytest.mark.postgres


@pytest.fixture
def folder(tmp_path: Path, server: ScriptedOpenAIServer) -> Path:
    """proxy -> researcher, who may ask the person (``hitl_team`` of test_cli)."""
    server.router = route_by_system_prompt(
        {f"You are the {name}.": name for name in ("proxy", "researcher", "calculator")}
    )
    return hitl_team(tmp_path / "team")


@pytest.fixture
def thread(postgres_url: str) -> Iterator[str]:
    """A thread of its own: the PostgreSQL database is shared by the tests."""
    thread_id = f"cli-ask-{uuid.uuid4().hex[:12]}"
    yield thread_id
    with open_checkpointer(postgres_url) as saver:
        saver.delete_thread(thread_id)


def stored(postgres_url: str, folder: Path, thread: str) -> tuple[StateSnapshot, int]:
    """The thread's state and how many checkpoints it has, read from PostgreSQL."""
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    with open_checkpointer(postgres_url) as saver:
        graph = build_assistant_graph(
            "proxy", load_assistants(folder), model=ScriptedModels({}), checkpointer=saver
        )
        return graph.get_state(config), len(list(saver.list(config)))


def test_a_question_asked_in_one_process_is_answered_with_resume_in_another(
    tmp_path: Path, server: ScriptedOpenAIServer, folder: Path, thread: str, postgres_url: str
) -> None:
    server.script("proxy", reply(tool_calls=[sub("researcher", "Which planet?")]), "Mars it is.")
    server.script(
        "researcher",
        reply(tool_calls=[tool_call("ask_user", question="Which planet do you mean?")]),
        lambda request: f"The person said {request.tool_results[-1]}.",
    )
    cli = Cli(tmp_path, server)
    options = ["--thread", thread, "--assistants", str(folder), "--db", postgres_url]

    waiting = cli("run", "proxy", "Tell me about a planet.", *options)
    between, _ = stored(postgres_url, folder, thread)
    answered = cli("run", "proxy", "--resume", "Mars", *options)

    assert waiting.code == 3, waiting.stderr
    assert re.fullmatch(
        r"  \[\w{32}\] proxy > researcher asks: Which planet do you mean\?",
        waiting.stdout.splitlines()[1],
    )
    [question] = between.interrupts  # kept in PostgreSQL, not compacted away
    assert question.value["question"] == "Which planet do you mean?"
    assert (answered.code, answered.stdout) == (0, "Mars it is.\n"), answered.stderr
    # The second process continued the researcher's run: one more call of the proxy and
    # of the researcher, which got the answer as the result of its ask_user call.
    assert [len(server.requests_for(name)) for name in ("proxy", "researcher")] == [2, 2]
    assert server.requests_for("researcher")[1].tool_results == ["Mars"]
    after, checkpoints = stored(postgres_url, folder, thread)
    assert not after.next and not after.interrupts
    messages = after.values["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[2].content.startswith("The person said Mars.")
    assert messages[3].content == "Mars it is."
    [researcher] = after.values["sub_assistant_states"].values()
    assert [m.type for m in researcher["messages"]] == ["human", "ai", "tool", "ai"]
    assert researcher["messages"][2].content == "Mars"
    assert checkpoints == 1  # the finished thread was compacted, on PostgreSQL
    assert not list(tmp_path.rglob("*.sqlite"))  # no SQLite store was made instead
