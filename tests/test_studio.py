"""Serving assistants on LangGraph Server: ``langgraph.json``, ``assistant_graph.studio``, and
``langgraph dev`` driven end to end with ``langgraph_sdk``, offline.

One test starts ``langgraph dev`` on the repository's ``langgraph.json`` with no API key.
The other end-to-end tests share one ``langgraph dev`` (started once for the module) whose
models are a scripted OpenAI server and whose assistants folder the test writes: ``boss``
delegates to ``helper``, which may ask the person (``ask_user``). Each server runs on a free
loopback port in a temporary working directory, in its own process group, stopped in a
``finally``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage
from langgraph.graph.state import CompiledStateGraph
from langgraph_cli.config import validate_config_file
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient

from assistant_graph import AssistantConfigError, MissingConfigError, load_assistants
from assistant_graph.studio import build_studio_graph
from assistant_graph.testing import (
    ChatRequest,
    ScriptedOpenAIServer,
    ScriptedReply,
    reply,
    route_by_system_prompt,
    tool_call,
)
from tests.conftest import EXAMPLE_ASSISTANTS, REPO, AssistantFolder

LANGGRAPH_JSON = REPO / "langgraph.json"
GENERIC_GRAPH = "assistant"
IMAGE_TEAM_GRAPH = "image_team"
FAKE_KEY = "sk-test-not-a-real-key"
STARTUP_SECONDS = 90.0
STOP_SECONDS = 10.0
OFFLINE_ENVIRONMENT = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",  # the CLI's usage analytics
    "LANGGRAPH_NO_VERSION_CHECK": "true",  # the server's look-up of its newest version
    "LANGSMITH_TRACING": "false",
    "NO_PROXY": "127.0.0.1,localhost",
}
"""What keeps ``langgraph dev`` from reaching the network (with ``--no-browser``)."""
SCRIPT_ROUTES = {"You are boss": "boss", "You are helper": "helper"}


# -- langgraph.json and the graph factories, in-process --------------------------------------


def test_langgraph_json_is_valid_and_serves_every_example_assistant() -> None:
    config = validate_config_file(LANGGRAPH_JSON)
    names = set(load_assistants(EXAMPLE_ASSISTANTS))

    assert set(config["graphs"]) == {*names, GENERIC_GRAPH, IMAGE_TEAM_GRAPH}


@pytest.mark.parametrize("graph_id", sorted(json.loads(LANGGRAPH_JSON.read_text())["graphs"]))
def test_every_graph_of_langgraph_json_compiles_without_a_checkpointer(
    graph_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    factory = _import(_graph_path(graph_id))

    graph = asyncio.run(factory({"configurable": {}}))

    assert isinstance(graph, CompiledStateGraph)
    assert graph.checkpointer is None  # the server supplies persistence
    expected = {GENERIC_GRAPH: "proxy", IMAGE_TEAM_GRAPH: "user_proxy"}.get(graph_id, graph_id)
    assert graph.name == expected


def test_the_generic_graph_runs_the_assistant_named_in_the_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)

    graph = build_studio_graph(config={"configurable": {"assistant_name": "writer"}})

    assert graph.name == "writer"
    with pytest.raises(MissingConfigError, match="known: calculator, proxy"):
        build_studio_graph(config={"configurable": {"assistant_name": "nobody"}})


def test_without_an_api_key_building_fails_with_a_message_naming_it(
    folder: AssistantFolder,
) -> None:
    folder.add("solo")

    with pytest.raises(AssistantConfigError, match="OPENAI_API_KEY"):
        build_studio_graph("solo", folder=folder.path)


def test_the_model_comes_from_the_environment_or_the_run_configuration(
    folder: AssistantFolder,
    scripted_openai_server: ScriptedOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder.add("solo", model="openai:gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", scripted_openai_server.url)
    monkeypatch.setenv("ASSISTANT_GRAPH_MODEL", "openai:from-environment")
    scripted_openai_server.script("from-environment", "one")
    scripted_openai_server.script("from-configuration", "two")
    chosen_by_run = {"configurable": {"model": "openai:from-configuration"}}
    question = {"messages": [HumanMessage("hi")]}

    build_studio_graph("solo", folder=folder.path).invoke(question)
    build_studio_graph("solo", chosen_by_run, folder=folder.path).invoke(question)

    assert [request.model for request in scripted_openai_server.requests] == [
        "from-environment",
        "from-configuration",
    ]


def test_an_edited_assistant_is_compiled_again(
    folder: AssistantFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    folder.add("solo")
    first = build_studio_graph("solo", folder=folder.path)
    assert build_studio_graph("solo", folder=folder.path) is first

    folder.add("solo", instructions="You are solo, and brief.")

    assert build_studio_graph("solo", folder=folder.path) is not first


# -- langgraph dev, end to end ---------------------------------------------------------------


@dataclass(frozen=True)
class DevServer:
    """A running ``langgraph dev`` and the scripted model server behind it."""

    url: str
    models: ScriptedOpenAIServer


def _since_last_user_message(request: ChatRequest) -> list[dict[str, Any]]:
    starts = [i for i, message in enumerate(request.messages) if message["role"] == "user"]
    return request.messages[starts[-1] :]


def _boss(request: ChatRequest) -> ScriptedReply:
    """Delegates the user's message to the helper, then relays the helper's answer."""
    turn = _since_last_user_message(request)
    if len(turn) > 1:
        return reply("boss relays: " + str(turn[-1]["content"]).split("\n\n")[0])
    message = request.last_user_message
    return reply(tool_calls=[tool_call("sub_assistant__helper", message_to_assistant=message)])


def _helper(request: ChatRequest) -> ScriptedReply:
    """Asks the person when told to ask; repeats the answer or what it heard."""
    turn = _since_last_user_message(request)
    if len(turn) > 1:
        return reply(f"the person said {turn[-1]['content']}")
    if "ask" in request.last_user_message:
        return reply(tool_calls=[tool_call("ask_user", question="Which planet?")])
    return reply(f"helper heard: {request.last_user_message}")


def _write_team(folder: Path) -> None:
    team = [
        {"name": "boss", "sub_assistants": ["helper"]},
        {"name": "helper", "callable": True, "ask_user": True},
    ]
    for fields in team:
        name = fields["name"]
        data = {"description": f"The {name}.", "instructions": f"You are {name}.", **fields}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(**variables: str) -> dict[str, str]:
    """This process's environment without model or tracing settings, made offline."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_", "ASSISTANT_GRAPH_"))
    }
    return {**inherited, **OFFLINE_ENVIRONMENT, **variables}


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"langgraph dev was not ready after {STARTUP_SECONDS} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group: politely, then for good."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def langgraph_dev(config: Path, workdir: Path, environment: dict[str, str]) -> Iterator[str]:
    """Run ``langgraph dev`` on a free loopback port in ``workdir``; yield its URL."""
    port, log = _free_port(), workdir / "server.log"
    command = [str(Path(sys.executable).with_name("langgraph")), "dev", "--config", str(config)]
    command += ["--port", str(port), "--host", "127.0.0.1", "--no-browser", "--no-reload"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=workdir,  # where the in-memory runtime keeps its .langgraph_api folder
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, url, log)
        yield url
    finally:
        _stop(process)


def test_langgraph_dev_starts_offline_on_the_repository_config_without_an_api_key(
    tmp_path: Path,
) -> None:
    expected = set(json.loads(LANGGRAPH_JSON.read_text())["graphs"])

    with (
        langgraph_dev(LANGGRAPH_JSON, tmp_path, _environment()) as url,
        get_sync_client(url=url) as client,
    ):
        graph_ids = {assistant["graph_id"] for assistant in client.assistants.search()}

    assert graph_ids == expected


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """``langgraph dev`` serving the boss-and-helper team, its models scripted."""
    root = tmp_path_factory.mktemp("studio")
    assistants = root / "assistants"
    assistants.mkdir()
    _write_team(assistants)
    graphs = {
        GENERIC_GRAPH: "assistant_graph.studio:make_graph",
        "boss": "assistant_graph.studio:boss",
    }
    config = root / "langgraph.json"
    config.write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
    with ScriptedOpenAIServer(router=route_by_system_prompt(SCRIPT_ROUTES)) as models:
        models.script("boss", _boss)
        models.script("helper", _helper)
        environment = _environment(
            OPENAI_API_KEY=FAKE_KEY,
            OPENAI_BASE_URL=models.url,
            ASSISTANT_GRAPH_ASSISTANTS=str(assistants),
        )
        with langgraph_dev(config, root, environment) as url:
            yield DevServer(url, models)
        assert models.errors == []


@pytest.fixture
async def client(dev_server: DevServer) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=dev_server.url) as client:
        yield client


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_the_server_offers_the_generic_graph_and_a_graph_per_assistant(
    client: LangGraphClient,
) -> None:
    assistants = await client.assistants.search()

    assert {assistant["graph_id"] for assistant in assistants} == {GENERIC_GRAPH, "boss"}


async def test_a_run_streamed_with_subgraphs_carries_the_sub_assistants_events(
    client: LangGraphClient,
) -> None:
    thread = await client.threads.create()

    parts = [
        part
        async for part in client.runs.stream(
            thread["thread_id"],
            "boss",
            input=_user("hello there"),
            stream_mode="updates",
            stream_subgraphs=True,
        )
    ]

    namespaced = [part for part in parts if part.event.startswith("updates|tools:")]
    helper_messages = [
        message["content"]
        for part in namespaced
        for message in part.data.get("agent", {}).get("messages", [])
    ]
    assert helper_messages == ["helper heard: hello there"]
    root_paths = [part.data["begin"]["assistant_path"] for part in parts if "begin" in part.data]
    assert root_paths == [["boss"], ["boss", "helper"]]


async def test_the_thread_state_holds_the_sub_conversations(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "boss", input=_user("hello there"))

    state = await client.threads.get_state(thread["thread_id"])

    values: Any = state["values"]
    assert values["messages"][-1]["content"] == "boss relays: helper heard: hello there"
    [conversation] = values["sub_assistant_states"].values()
    assert conversation["assistant"] == "helper"
    assert [(m["type"], m["content"]) for m in conversation["messages"]] == [
        ("human", "hello there"),
        ("ai", "helper heard: hello there"),
    ]


async def test_a_question_inside_a_sub_assistant_is_answered_with_a_resume_command(
    client: LangGraphClient,
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "boss", input=_user("please ask me"))

    waiting = await client.threads.get_state(thread_id)
    [interrupt] = [item for task in waiting["tasks"] for item in task["interrupts"]]
    assert interrupt["value"]["question"] == "Which planet?"
    assert interrupt["value"]["path"] == ["boss", "helper"]

    result: Any = await client.runs.wait(thread_id, "boss", command={"resume": "Mars"})

    assert result["messages"][-1]["content"] == "boss relays: the person said Mars"
    [conversation] = result["sub_assistant_states"].values()
    assert conversation["messages"][-1]["content"] == "the person said Mars"


async def test_an_assistant_of_the_generic_graph_runs_the_assistant_its_config_names(
    client: LangGraphClient,
) -> None:
    assistant = await client.assistants.create(
        graph_id=GENERIC_GRAPH,
        config={"configurable": {"assistant_name": "helper"}},
        name="helper, chosen by configuration",
    )
    thread = await client.threads.create()

    result: Any = await client.runs.wait(
        thread["thread_id"], assistant["assistant_id"], input=_user("hi")
    )

    assert result["messages"][-1]["content"] == "helper heard: hi"


def _graph_path(graph_id: str) -> str:
    entry = json.loads(LANGGRAPH_JSON.read_text())["graphs"][graph_id]
    return str(entry["path"] if isinstance(entry, dict) else entry)


def _import(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
