"""Assistants use tools of real MCP servers: the toolbox over stdio and over streamable
HTTP on 127.0.0.1, called by scripted models and by ChatOpenAI through the scripted
OpenAI-compatible server. No test leaves a process behind (``no_stray_processes``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command
from pydantic import SecretStr
from typer.testing import CliRunner

from assistant_graph import (
    AssistantConfigError,
    astream_events,
    build_assistant_graph,
    stream_events,
)
from assistant_graph.cli._app import app
from assistant_graph.events import (
    AssistantEvent,
    FinalEvent,
    InputRequestEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from assistant_graph.testing import (
    ChatRequest,
    ModelCall,
    ScriptedModels,
    ScriptedOpenAIServer,
    ai,
    call_sub_assistant,
    call_tool,
    reply,
    tool_call,
)

from .conftest import AssistantFolder
from .mcp_support import (
    TOOLBOX_TOOLS,
    HttpToolbox,
    children,
    http_toolbox,
    no_stray_processes,
    stdio_toolbox,
    write_mcp_json,
)

__all__ = ["http_toolbox", "no_stray_processes"]  # fixtures used by this module

CONFIG: Any = {"configurable": {"thread_id": "mcp"}}
SECRET = "tok-9f8e7d6c5b4a39281706"


def run(graph: Any, message: Any, config: Any = CONFIG) -> list[AssistantEvent]:
    return list(stream_events(graph, message, config))


def results(events: list[AssistantEvent]) -> dict[str, ToolResultEvent]:
    return {e.name: e for e in events if isinstance(e, ToolResultEvent)}


def final(events: list[AssistantEvent]) -> FinalEvent:
    last = events[-1]
    assert isinstance(last, FinalEvent)
    return last


def tool_messages(call: ModelCall) -> list[ToolMessage]:
    return [m for m in call.messages if isinstance(m, ToolMessage)]


@pytest.fixture
def toolbox_team(folder: AssistantFolder) -> AssistantFolder:
    """``helper`` uses every toolbox tool (stdio, 2 s tool timeout); ``boss`` delegates to
    helper and uses ``count`` itself."""
    write_mcp_json(folder, box=stdio_toolbox(toolTimeout=2))
    folder.add("helper", tools=["mcp:box"], callable=True)
    folder.add("boss", tools=["mcp:box/count"], sub_assistants=["helper"])
    return folder


def build(folder: AssistantFolder, name: str, models: ScriptedModels, **kwargs: Any) -> Any:
    return build_assistant_graph(
        name, folder.load(), model=models, checkpointer=kwargs.pop("saver", InMemorySaver())
    )


class TestResults:
    def test_text_and_structured_results_reach_the_model_and_the_events(
        self, toolbox_team: AssistantFolder
    ) -> None:
        models = ScriptedModels(
            {
                "helper": [
                    ai(tool_calls=[call_tool("add", a=2, b=3), call_tool("echo", text="hi")]),
                    "2 + 3 = 5",
                ]
            }
        )
        events = run(build(toolbox_team, "helper", models), "Add 2 and 3, and say hi.")

        assert [(m.name, m.text, m.status) for m in tool_messages(models.calls("helper")[1])] == [
            ("add", "5", "success"),
            ("echo", "hi", "success"),
        ]
        assert {e.name for e in events if isinstance(e, ToolCallEvent)} == {"add", "echo"}
        assert (results(events)["add"].content, results(events)["add"].path) == ("5", ("helper",))
        assert final(events).status == "completed"

    def test_an_image_result_reaches_the_model_in_a_user_message(
        self, toolbox_team: AssistantFolder
    ) -> None:
        models = ScriptedModels({"helper": [ai(tool_calls=[call_tool("picture", id="p1")]), "ok"]})
        run(build(toolbox_team, "helper", models), "Show me the picture.")

        *_, result, images = models.calls("helper")[1].messages
        assert isinstance(result, ToolMessage) and isinstance(images, HumanMessage)
        assert result.content == (
            "a one-pixel picture\n[1 image(s) returned by this call follow in the next user "
            "message]"
        )
        assert isinstance(images.content, list)
        header, image = images.content
        assert header == {"type": "text", "text": "Images returned by tool call p1 (picture):"}
        assert isinstance(image, dict) and image["type"] == "image"
        assert (image["mime_type"], image["base64"][:8]) == ("image/png", "iVBORw0K")

    def test_the_thread_keeps_the_image_in_the_tool_message(
        self, toolbox_team: AssistantFolder
    ) -> None:
        models = ScriptedModels({"helper": [ai(tool_calls=[call_tool("picture")]), "ok"]})
        graph = build(toolbox_team, "helper", models)
        run(graph, "Show me the picture.")

        [message] = [m for m in graph.get_state(CONFIG).values["messages"] if m.type == "tool"]
        assert [block["type"] for block in message.content] == ["text", "image"]


class TestFailures:
    def test_a_tool_error_becomes_an_error_tool_message_and_the_run_goes_on(
        self, toolbox_team: AssistantFolder
    ) -> None:
        models = ScriptedModels(
            {"helper": [ai(tool_calls=[call_tool("fail", message="no such planet")]), "Sorry."]}
        )
        events = run(build(toolbox_team, "helper", models), "Fail, please.")

        [message] = tool_messages(models.calls("helper")[1])
        assert (message.status, message.text) == (
            "error",
            "Error executing tool fail: no such planet",
        )
        assert results(events)["fail"].status == "error"
        assert final(events).content == "Sorry."

    def test_a_crashed_server_is_an_error_result_and_the_next_call_starts_it_again(
        self, toolbox_team: AssistantFolder
    ) -> None:
        models = ScriptedModels(
            {
                "helper": [
                    ai(tool_calls=[call_tool("process_id")]),
                    ai(tool_calls=[call_tool("crash")]),
                    ai(tool_calls=[call_tool("process_id")]),
                    "done",
                ]
            }
        )
        run(build(toolbox_team, "helper", models), "Crash the server.")

        first, crashed, second = tool_messages(models.calls("helper")[3])
        assert crashed.status == "error"
        assert crashed.text.startswith(
            "Error: the MCP server 'box' failed during this call (Connection closed)"
        )
        assert "The next call of its tools connects again." in crashed.text
        assert second.status == "success" and second.text != first.text

    def test_a_server_that_died_between_calls_is_started_again_for_the_next_one(
        self, toolbox_team: AssistantFolder
    ) -> None:
        def kill_server_then_count(call: ModelCall) -> Any:
            server = psutil.Process(int(tool_messages(call)[-1].text))
            server.kill()
            server.wait(timeout=10)
            return ai(tool_calls=[call_tool("count")])

        models = ScriptedModels(
            {
                "helper": [
                    ai(tool_calls=[call_tool("process_id")]),
                    kill_server_then_count,
                    "done",
                ]
            }
        )
        events = run(build(toolbox_team, "helper", models), "Count.")

        assert (results(events)["count"].status, results(events)["count"].content) == (
            "success",
            "1",
        )

    def test_a_hung_tool_is_cut_by_the_tool_timeout_and_the_session_goes_on(
        self, toolbox_team: AssistantFolder
    ) -> None:
        models = ScriptedModels(
            {
                "helper": [
                    ai(tool_calls=[call_tool("count")]),
                    ai(tool_calls=[call_tool("sleep", seconds=60)]),
                    ai(tool_calls=[call_tool("count")]),
                    "done",
                ]
            }
        )
        started = time.monotonic()
        run(build(toolbox_team, "helper", models), "Sleep a minute.")

        assert time.monotonic() - started < 30
        first, slept, again = tool_messages(models.calls("helper")[3])
        assert slept.status == "error"
        assert slept.text.startswith(
            "Error: the MCP tool 'sleep' of server 'box' did not answer within 2 s (toolTimeout"
        )
        assert (first.text, again.text) == ("1", "2")  # the same server process

    def test_a_failed_run_leaves_no_server_behind(self, toolbox_team: AssistantFolder) -> None:
        models = ScriptedModels({"helper": [ai(tool_calls=[call_tool("count")])]})  # then none

        events = run(build(toolbox_team, "helper", models), "Count, then fail.")

        assert results(events)["count"].content == "1"
        assert final(events).status == "error"  # the script ran out: a failed run
        # no_stray_processes checks that the server was stopped with the run


class TestSessions:
    def test_the_assistants_of_a_run_share_one_session_closed_after_the_run(
        self, toolbox_team: AssistantFolder
    ) -> None:
        models = ScriptedModels(
            {
                "boss": [
                    ai(tool_calls=[call_tool("count")]),
                    ai(tool_calls=[call_sub_assistant("helper", "Count too.")]),
                    "boss done",
                    ai(tool_calls=[call_tool("count")]),
                    "boss done again",
                ],
                "helper": [ai(tool_calls=[call_tool("count")]), "helper counted"],
            }
        )
        graph = build(toolbox_team, "boss", models)

        first = run(graph, "Count twice.")
        assert children() == []  # the run's server is gone with the run
        second = run(graph, "Count again.")

        counts = [(e.path, e.content) for e in first + second if isinstance(e, ToolResultEvent)]
        assert [(path, content) for path, content in counts if content.isdigit()] == [
            (("boss",), "1"),
            (("boss", "helper"), "2"),  # the same server process as the boss's call
            (("boss",), "1"),  # a new run: a new session, a new server process
        ]

    async def test_async_runs_call_the_same_tools(self, toolbox_team: AssistantFolder) -> None:
        models = ScriptedModels({"helper": [ai(tool_calls=[call_tool("add", a=20, b=22)]), "42"]})
        graph = build(toolbox_team, "helper", models)

        events = [event async for event in astream_events(graph, "Add.", CONFIG)]

        assert results(events)["add"].content == "42"
        await asyncio.sleep(0)
        assert children() == []

    def test_an_approval_pauses_the_call_and_the_answer_runs_it(
        self, folder: AssistantFolder
    ) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        folder.add("helper", tools=["mcp:box"], require_approval=["mcp:box/add"])
        models = ScriptedModels(
            {"helper": [ai(tool_calls=[call_tool("add", a=1, b=2), call_tool("count")]), "3"]}
        )
        graph = build(folder, "helper", models)

        waiting = run(graph, "Add, please.")
        [request] = [e for e in waiting if isinstance(e, InputRequestEvent)]
        assert (request.kind, request.tool, request.args) == ("approval", "add", {"a": 1, "b": 2})
        assert children() == []  # nothing runs while the thread waits for the person
        done = run(graph, Command(resume={request.id: "yes"}))

        assert results(waiting)["count"].content == "1"
        assert results(done)["add"].content == "3"
        assert final(done).status == "completed"


class TestBuilding:
    def test_a_server_that_cannot_start_is_named_with_the_assistant(
        self, folder: AssistantFolder
    ) -> None:
        write_mcp_json(folder, box={"command": "/no/such/program"})
        folder.add("helper", tools=["mcp:box"])

        with pytest.raises(AssistantConfigError) as error:
            build(folder, "helper", ScriptedModels({}))

        [problem] = error.value.problems
        assert (Path(problem.file).name, problem.field) == ("helper.yaml", "tools[0]")
        assert (
            problem.message.startswith("assistant 'helper': MCP server 'box' (")
            and "could not be started or reached" in problem.message
        )

    def test_a_server_that_does_not_answer_in_time_is_stopped(
        self, folder: AssistantFolder
    ) -> None:
        hang = "import time; time.sleep(60)"
        write_mcp_json(folder, box={"command": "python", "args": ["-c", hang], "startupTimeout": 1})
        folder.add("helper", tools=["mcp:box"])

        started = time.monotonic()
        with pytest.raises(
            AssistantConfigError, match=r"did not start and list its tools within 1 s"
        ):
            build(folder, "helper", ScriptedModels({}))
        assert time.monotonic() - started < 15

    def test_a_tool_the_server_does_not_have_is_named(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        folder.add("helper", tools=["mcp:box/add", "mcp:box/divide"])

        with pytest.raises(AssistantConfigError) as error:
            build(folder, "helper", ScriptedModels({}))

        [problem] = error.value.problems
        assert problem.field == "tools[1]"
        assert problem.message == (
            "assistant 'helper': MCP server 'box' has no tool 'divide' (it has: "
            + ", ".join(TOOLBOX_TOOLS)
            + ")"
        )

    def test_an_approval_of_a_tool_the_server_does_not_have_is_named(
        self, folder: AssistantFolder
    ) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        folder.add("helper", tools=["mcp:box"], require_approval=["mcp:box/divide"])

        with pytest.raises(AssistantConfigError) as error:
            build(folder, "helper", ScriptedModels({}))

        assert [p.field for p in error.value.problems] == ["require_approval[0]"]

    def test_two_tools_of_one_name_are_refused(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box=stdio_toolbox(), copy=stdio_toolbox())
        folder.add("helper", tools=["mcp:box/add", "mcp:copy/add"])

        with pytest.raises(AssistantConfigError, match=r"two tools named 'add' \(from mcp:box/add"):
            build(folder, "helper", ScriptedModels({}))

    def test_only_the_tools_named_are_bound_to_the_model(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        folder.add("helper", tools=["mcp:box/add", "mcp:box/echo"])
        models = ScriptedModels({"helper": ["hi"]})

        run(build(folder, "helper", models), "Hi")

        assert models.calls("helper")[0].tools == ["add", "echo"]

    def test_validate_connect_reports_what_building_would(self, folder: AssistantFolder) -> None:
        write_mcp_json(folder, box=stdio_toolbox(), broken={"command": "/no/such/program"})
        folder.add("helper", tools=["mcp:box/divide"])
        folder.add("other", tools=["mcp:broken"])

        failed = CliRunner().invoke(app, ["validate", "--connect", "-a", str(folder.path)])

        assert failed.exit_code == 2
        assert "helper.yaml: tools[0]: assistant 'helper': MCP server 'box' has no tool" in (
            failed.output
        )
        assert "other.yaml: tools[0]: assistant 'other': MCP server 'broken'" in failed.output

    def test_validate_connect_lists_the_servers_that_answered(
        self, folder: AssistantFolder
    ) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        folder.add("helper", tools=["mcp:box/add"])

        result = CliRunner().invoke(app, ["validate", "--connect", "-a", str(folder.path)])

        assert result.exit_code == 0, result.output
        assert result.output.splitlines() == ["1 assistants OK", "MCP server box: 8 tool(s)"]


class TestStreamableHttp:
    def test_a_secret_header_is_sent_but_never_stored_or_streamed(
        self, folder: AssistantFolder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        server = HttpToolbox(token_env="BOX_TOKEN", env={"BOX_TOKEN": SECRET})
        server.start()
        try:
            monkeypatch.setenv("BOX_TOKEN", SECRET)
            headers = {"Authorization": "Bearer ${BOX_TOKEN}"}
            write_mcp_json(folder, web={"url": server.url, "headers": headers})
            folder.add("helper", tools=["mcp:web"])
            models = ScriptedModels({"helper": [ai(tool_calls=[call_tool("add", a=1, b=1)]), "2"]})
            database = tmp_path / "threads.sqlite"
            with sqlite3.connect(database, check_same_thread=False) as connection:
                saver = SqliteSaver(connection)
                graph = build(folder, "helper", models, saver=saver)
                events = run(graph, "Add.")
        finally:
            server.kill()

        assert results(events)["add"].content == "2"  # the server accepted the token
        streamed = json.dumps([event.to_dict() for event in events])
        assert SECRET not in streamed
        assert SECRET.encode() not in database.read_bytes()

    def test_a_wrong_token_fails_the_build_without_showing_it(
        self, folder: AssistantFolder, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        server = HttpToolbox(token_env="BOX_TOKEN", env={"BOX_TOKEN": SECRET})
        server.start()
        try:
            monkeypatch.setenv("WRONG_TOKEN", "wrong-" + SECRET)
            write_mcp_json(
                folder, web={"url": server.url + "?key=${WRONG_TOKEN}", "startupTimeout": 10}
            )
            folder.add("helper", tools=["mcp:web"])
            with pytest.raises(AssistantConfigError) as error:
                build(folder, "helper", ScriptedModels({}))
        finally:
            server.kill()

        assert "401 Unauthorized" in str(error.value)
        assert SECRET not in str(error.value)
        assert "key=[redacted]" in str(error.value)

    def test_a_server_that_dies_mid_run_is_an_error_and_the_next_call_reconnects(
        self, folder: AssistantFolder, http_toolbox: HttpToolbox
    ) -> None:
        write_mcp_json(folder, web={"url": http_toolbox.url, "toolTimeout": 30})
        folder.add("helper", tools=["mcp:web"])

        def kill_server(call: ModelCall) -> Any:
            http_toolbox.kill()
            return ai(tool_calls=[call_tool("count")])

        def restart_server(call: ModelCall) -> Any:
            http_toolbox.start()
            return ai(tool_calls=[call_tool("count")])

        models = ScriptedModels(
            {
                "helper": [
                    ai(tool_calls=[call_tool("count")]),
                    kill_server,
                    restart_server,
                    "done",
                ]
            }
        )
        started = time.monotonic()
        run(build(folder, "helper", models), "Count.")

        first, failed, again = tool_messages(models.calls("helper")[3])
        assert time.monotonic() - started < 25  # the failure is seen at once, not timed out
        assert first.text == "1"
        assert failed.status == "error" and "MCP server 'web'" in failed.text
        assert again.text == "1"  # a new server process, a new session


class TestChatOpenAI:
    def test_chat_openai_calls_mcp_tools_through_the_scripted_server(
        self, toolbox_team: AssistantFolder, scripted_openai_server: ScriptedOpenAIServer
    ) -> None:
        scripted_openai_server.script(
            "helper",
            reply(tool_calls=[tool_call("add", a=40, b=2), tool_call("picture")]),
            "The answer is 42.",
        )
        model = ChatOpenAI(
            model="helper",
            base_url=scripted_openai_server.url,
            api_key=SecretStr("sk-test"),
            max_retries=0,
        )
        graph = build_assistant_graph(
            "helper", toolbox_team.load(), model=model, checkpointer=InMemorySaver()
        )

        events = run(graph, "What is 40 + 2?")

        assert scripted_openai_server.errors == []
        assert final(events).content == "The answer is 42."
        request: ChatRequest = scripted_openai_server.requests[-1]
        tools = [m for m in request.messages if m["role"] == "tool"]
        assert [m["content"] for m in tools] == [
            [{"type": "text", "text": "42"}],
            "a one-pixel picture\n[1 image(s) returned by this call follow in the next user "
            "message]",
        ]  # text only: the Chat Completions API takes images in user messages only
        user = request.messages[-1]
        assert user["role"] == "user"
        assert [part["type"] for part in user["content"]] == ["text", "image_url"]
        assert user["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


class TestCtrlC:
    def test_ctrl_c_during_a_long_call_stops_the_run_and_its_server(
        self, folder: AssistantFolder, scripted_openai_server: ScriptedOpenAIServer
    ) -> None:
        write_mcp_json(folder, box=stdio_toolbox())
        folder.add("helper", tools=["mcp:box"], model="openai:helper")
        scripted_openai_server.script(
            "helper", reply(tool_calls=[tool_call("sleep", seconds=60)]), "done"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(folder.path),
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": scripted_openai_server.url,
        }
        command = [sys.executable, "-m", "assistant_graph.cli", "run", "helper", "Sleep."]
        cli = subprocess.Popen(
            [*command, "-a", str(folder.path), "--db", ":memory:"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        server = _wait_for_sleeping_server(cli, scripted_openai_server)

        cli.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        _, stderr = cli.communicate(timeout=60)

        assert cli.returncode == 130, stderr
        assert time.monotonic() - stopped < 15  # not the 60 s the call would have taken
        assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE


def _wait_for_sleeping_server(
    cli: subprocess.Popen[bytes], scripted: ScriptedOpenAIServer
) -> psutil.Process:
    """The CLI's MCP server, once the model has asked for the long call (and a moment)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert cli.poll() is None, cli.communicate()
        servers = psutil.Process(cli.pid).children(recursive=True)
        if servers and len(scripted.requests) >= 1:
            time.sleep(1.0)  # the call is on its way to the server
            return servers[0]
        time.sleep(0.1)
    raise AssertionError("the CLI never started its MCP server")
