"""``assistant-graph mcp``: assistants served as MCP tools, driven by the official ``mcp``
client over streamable HTTP on 127.0.0.1 and over stdio. The served assistants' models are
scripted by the OpenAI-compatible server of this test process (``openai:<name>``).

One HTTP server process serves the whole module (its tests each open a client session);
the stdio tests start their own processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from assistant_graph.testing import ChatRequest, ScriptedOpenAIServer, reply, tool_call
from tests.loopback import free_port

from .conftest import AssistantFolder
from .mcp_support import no_stray_processes, wait_for_port

__all__ = ["no_stray_processes"]  # fixtures used by this module

TOKEN = "served-token-0123456789"
TOOLS_PY = """
from langchain_core.tools import tool


@tool
def launch(target: str) -> str:
    \"\"\"Launch a probe to the target.\"\"\"
    return f"probe launched to {target}"
"""


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedOpenAIServer]:
    """The served assistants' models (scripts are set per test)."""
    with ScriptedOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> AssistantFolder:
    """``helper`` (callable, may ask the person), ``boss`` (callable, delegates to
    helper), ``careful`` (callable, its tool needs approval), ``brief`` (callable, one
    model call per run), ``private`` (not callable); each on its own scripted model."""
    folder = AssistantFolder(tmp_path_factory.mktemp("served") / "assistants")
    folder.path.mkdir()
    folder.write("tools.py", TOOLS_PY)
    assistants: dict[str, dict[str, Any]] = {
        "helper": {"callable": True, "ask_user": True},
        "boss": {"callable": True, "sub_assistants": ["helper"]},
        "careful": {"callable": True, "tools": ["launch"], "require_approval": ["launch"]},
        "brief": {"callable": True, "tools": ["launch"], "budget": {"max_steps": 1}},
        "private": {},
    }
    for name, extra in assistants.items():
        folder.add(name, model=f"openai:{name}", description=f"The {name}, described.", **extra)
    return folder


@pytest.fixture(scope="module")
def http_url(team: AssistantFolder, scripted: ScriptedOpenAIServer) -> Iterator[str]:
    """``assistant-graph mcp --transport streamable-http --auth-token ...`` for the module."""
    port = free_port()
    command = _command(
        team, "--transport", "streamable-http", "--port", str(port), "--auth-token", TOKEN
    )
    process = subprocess.Popen(command, env=_env(scripted, team.path.parent))
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _env(server: ScriptedOpenAIServer, home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": server.url,
    }


def _command(folder: AssistantFolder, *options: str) -> list[str]:
    database = str(folder.path.parent / "threads.sqlite")
    return [
        sys.executable,
        "-m",
        "assistant_graph.cli",
        "mcp",
        "-a",
        str(folder.path),
        "--db",
        database,
        *options,
    ]


@asynccontextmanager
async def stdio_session(
    folder: AssistantFolder, server: ScriptedOpenAIServer, *options: str
) -> AsyncIterator[ClientSession]:
    """A client session with ``assistant-graph mcp`` started over stdio."""
    command, *args = _command(folder, *options)
    parameters = StdioServerParameters(
        command=command, args=args, env=_env(server, folder.path.parent)
    )
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def text_of(result: CallToolResult) -> str:
    [content] = result.content
    assert isinstance(content, TextContent)
    return content.text


def reply_of(result: CallToolResult) -> dict[str, Any]:
    assert not result.isError, text_of(result)
    assert result.structuredContent is not None
    return result.structuredContent


@asynccontextmanager
async def http_session(url: str, token: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with (
        httpx.AsyncClient(headers=headers, timeout=30) as client,
        streamable_http_client(url, http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def new_requests(scripted: ScriptedOpenAIServer, since: int) -> list[ChatRequest]:
    found: list[ChatRequest] = scripted.requests[since:]
    return found


class TestOverStreamableHttp:
    async def test_callable_assistants_are_tools_described_by_their_descriptions(
        self, http_url: str
    ) -> None:
        async with http_session(http_url, TOKEN) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}

        assert set(tools) == {"boss", "brief", "careful", "helper"}  # not "private"
        helper = tools["helper"]
        assert helper.description == "The helper, described."
        assert helper.inputSchema["required"] == ["message"]
        assert set(helper.inputSchema["properties"]) == {"message", "conversation_id"}
        assert helper.outputSchema is not None
        assert set(helper.outputSchema["properties"]) == {
            "answer",
            "conversation_id",
            "status",
            "pending",
        }

    async def test_a_request_without_the_token_is_refused(self, http_url: str) -> None:
        async with httpx.AsyncClient() as client:
            wrong = await client.post(http_url, json={}, headers={"Authorization": "Bearer no"})
            missing = await client.post(http_url, json={})

        assert (wrong.status_code, missing.status_code) == (401, 401)

    async def test_a_second_call_continues_the_conversation_by_its_id(
        self, http_url: str, scripted: ScriptedOpenAIServer
    ) -> None:
        scripted.script("helper", "Mars is red.", "It is iron oxide.")
        since = len(scripted.requests)
        async with http_session(http_url, TOKEN) as session:
            first = await session.call_tool("helper", {"message": "What colour is Mars?"})
            conversation = reply_of(first)["conversation_id"]
            second = await session.call_tool(
                "helper", {"message": "Why?", "conversation_id": conversation}
            )

        assert reply_of(first) == {
            "answer": "Mars is red.",
            "conversation_id": conversation,
            "status": "completed",
            "pending": [],
        }
        assert text_of(first) == (
            f"Mars is red.\n\n[conversation_id: {conversation} (pass it as conversation_id "
            "to continue this conversation)]"
        )
        assert reply_of(second)["answer"] == "It is iron oxide."
        assert reply_of(second)["conversation_id"] == conversation
        contents = [m["content"] for m in new_requests(scripted, since)[1].messages]
        assert contents[1:] == ["What colour is Mars?", "Mars is red.", "Why?"]

    async def test_an_unknown_conversation_is_an_error_result(self, http_url: str) -> None:
        async with http_session(http_url, TOKEN) as session:
            other = await session.call_tool(
                "helper", {"message": "Hi", "conversation_id": "boss-000000000000"}
            )

        assert other.isError
        assert "no conversation 'boss-000000000000' with helper" in text_of(other)

    async def test_a_delegating_assistant_calls_its_sub_assistant(
        self, http_url: str, scripted: ScriptedOpenAIServer
    ) -> None:
        scripted.script(
            "boss",
            reply(tool_calls=[tool_call("sub_assistant__helper", message_to_assistant="Help.")]),
            "The helper helped.",
        )
        scripted.script("helper", "Helped.")
        since = len(scripted.requests)
        async with http_session(http_url, TOKEN) as session:
            result = await session.call_tool("boss", {"message": "Get help."})

        assert reply_of(result)["answer"] == "The helper helped."
        routes = [r.route_key for r in new_requests(scripted, since)]
        assert routes == ["boss", "helper", "boss"]

    async def test_an_assistant_that_asks_returns_the_question_then_takes_the_answer(
        self, http_url: str, scripted: ScriptedOpenAIServer
    ) -> None:
        scripted.script(
            "helper",
            reply(tool_calls=[tool_call("ask_user", question="Which planet?")]),
            "Mars it is.",
        )
        async with http_session(http_url, TOKEN) as session:
            waiting = await session.call_tool("helper", {"message": "Tell me about a planet."})
            conversation = reply_of(waiting)["conversation_id"]
            answered = await session.call_tool(
                "helper", {"message": "Mars", "conversation_id": conversation}
            )

        [pending] = reply_of(waiting)["pending"]
        assert reply_of(waiting)["status"] == "waiting_for_input"
        assert (pending["kind"], pending["question"], pending["path"]) == (
            "question",
            "Which planet?",
            ["helper"],
        )
        assert text_of(waiting).splitlines()[:2] == [
            "helper is waiting for your input before it can go on:",
            f"- [{pending['id']}] helper asks: Which planet?",
        ]
        assert f'call helper again with conversation_id "{conversation}"' in text_of(waiting)
        assert reply_of(answered)["answer"] == "Mars it is."
        assert scripted.requests[-1].messages[-1]["content"] == "Mars"

    async def test_a_call_that_needs_approval_runs_once_approved(
        self, http_url: str, scripted: ScriptedOpenAIServer
    ) -> None:
        scripted.script(
            "careful", reply(tool_calls=[tool_call("launch", target="Mars")]), "Launched."
        )
        async with http_session(http_url, TOKEN) as session:
            waiting = await session.call_tool("careful", {"message": "Launch to Mars."})
            conversation = reply_of(waiting)["conversation_id"]
            approved = await session.call_tool(
                "careful", {"message": "yes", "conversation_id": conversation}
            )

        [pending] = reply_of(waiting)["pending"]
        assert (pending["kind"], reply_of(waiting)["status"]) == ("approval", "waiting_for_input")
        assert "wants approval" in text_of(waiting)
        assert reply_of(approved)["answer"] == "Launched."
        assert scripted.requests[-1].messages[-1]["content"] == "probe launched to Mars"

    async def test_an_assistant_out_of_steps_says_so_and_can_be_continued(
        self, http_url: str, scripted: ScriptedOpenAIServer
    ) -> None:
        scripted.script(
            "brief",
            reply(tool_calls=[tool_call("launch", target="Venus")]),
            "Launched to Venus.",
        )
        async with http_session(http_url, TOKEN) as session:
            stopped = await session.call_tool("brief", {"message": "Launch to Venus."})
            conversation = reply_of(stopped)["conversation_id"]
            finished = await session.call_tool(
                "brief", {"message": "Go on.", "conversation_id": conversation}
            )

        assert reply_of(stopped)["status"] == "incomplete"
        assert f"[conversation_id: {conversation}" in text_of(stopped)
        assert (reply_of(finished)["status"], reply_of(finished)["answer"]) == (
            "completed",
            "Launched to Venus.",
        )


class TestOverStdio:
    async def test_the_same_tools_serve_over_stdio_and_conversations_outlive_a_process(
        self, team: AssistantFolder, scripted: ScriptedOpenAIServer, http_url: str
    ) -> None:
        scripted.script(
            "helper",
            "First.",
            "Second.",
            reply(tool_calls=[tool_call("ask_user", question="Which moon?")]),
            "Phobos.",
            "Helped.",
        )
        scripted.script(
            "boss",
            reply(tool_calls=[tool_call("sub_assistant__helper", message_to_assistant="Help.")]),
            "Boss done.",
        )
        async with http_session(http_url, TOKEN) as session:  # another process
            first = await session.call_tool("helper", {"message": "One"})
        conversation = reply_of(first)["conversation_id"]

        async with stdio_session(team, scripted) as session:
            tools = sorted(tool.name for tool in (await session.list_tools()).tools)
            second = await session.call_tool(
                "helper", {"message": "Two", "conversation_id": conversation}
            )
            contents = [m["content"] for m in scripted.requests[-1].messages]
            asked = await session.call_tool(
                "helper", {"message": "Three", "conversation_id": conversation}
            )
            answered = await session.call_tool(
                "helper", {"message": "Phobos", "conversation_id": conversation}
            )
            delegated = await session.call_tool("boss", {"message": "Get help."})

        assert tools == ["boss", "brief", "careful", "helper"]
        assert reply_of(second)["answer"] == "Second."
        assert contents[1:] == ["One", "First.", "Two"]
        assert reply_of(asked)["status"] == "waiting_for_input"
        assert reply_of(answered)["answer"] == "Phobos."
        assert reply_of(delegated)["answer"] == "Boss done."
        assert scripted.errors == []

    async def test_only_serves_the_named_assistants_callable_or_not(
        self, team: AssistantFolder, scripted: ScriptedOpenAIServer
    ) -> None:
        scripted.script("private", "Private answer.")
        async with stdio_session(team, scripted, "--only", "private") as session:
            tools = [tool.name for tool in (await session.list_tools()).tools]
            result = await session.call_tool("private", {"message": "Hi"})

        assert tools == ["private"]
        assert reply_of(result)["answer"] == "Private answer."


class TestExposure:
    def test_without_a_token_http_listens_on_loopback_only(
        self, team: AssistantFolder, scripted: ScriptedOpenAIServer
    ) -> None:
        command = _command(team, "--transport", "streamable-http", "--host", "0.0.0.0")
        outcome = subprocess.run(
            command,
            env=_env(scripted, team.path.parent),
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert outcome.returncode == 2
        assert "error: serving on 0.0.0.0 reaches beyond this machine: give an auth token" in (
            outcome.stderr
        )
