"""Serving assistants on LangGraph Server: ``langgraph.json``, ``assistant_graph.studio``, and
``langgraph dev`` driven end to end with ``langgraph_sdk``, offline.

One test starts ``langgraph dev`` on the repository's ``langgraph.json`` with no API key.
The other end-to-end tests share one ``langgraph dev`` (started once for the module) whose
models are a scripted OpenAI server and whose assistants folder the test writes: ``boss``
delegates to ``helper``, which may ask the person (``ask_user``). The same server serves
the example team's ``proxy`` (``proxy`` -> ``researcher`` -> ``calculator``, then
``writer``), whose events a client reads on the ``custom`` stream. Each server runs on a
free loopback port in a temporary working directory, in its own process group, stopped in
a ``finally``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph_cli.config import validate_config_file
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

from assistant_graph import (
    AssistantConfigError,
    MissingConfigError,
    astream_events,
    build_assistant_graph,
    load_assistants,
    studio,
)
from assistant_graph._thread_guard import GuardedGraph
from assistant_graph.events import (
    AssistantEvent,
    FinalEvent,
    InputRequestEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from assistant_graph.studio import THREAD_LOCKS_ENV, build_studio_graph
from assistant_graph.testing import (
    ChatRequest,
    ScriptedOpenAIServer,
    ScriptedReply,
    ScriptedToolCall,
    reply,
    route_by_system_prompt,
    tool_call,
)
from tests.conftest import EXAMPLE_ASSISTANTS, REPO, AssistantFolder
from tests.loopback import free_port, stop_group

LANGGRAPH_JSON = REPO / "langgraph.json"
GENERIC_GRAPH = "assistant"
IMAGE_TEAM_GRAPH = "image_team"
FAKE_KEY = "sk-test-not-a-real-key"
SERVER_LOG = "server.log"
STARTUP_SECONDS = 90.0
OFFLINE_ENVIRONMENT = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",  # the CLI's usage analytics
    "LANGGRAPH_NO_VERSION_CHECK": "true",  # the server's look-up of its newest version
    "LANGSMITH_TRACING": "false",
    "NO_PROXY": "127.0.0.1,localhost",
}
"""What keeps ``langgraph dev`` from reaching the network (with ``--no-browser``)."""
SCRIPT_ROUTES = {"You are boss": "boss", "You are helper": "helper"}
EXAMPLE_ROOT = "proxy"
"""The example team's root, served by the shared ``langgraph dev`` beside ``boss``."""
EXAMPLE_TEAM_MODULE = """from assistant_graph.studio import graph_factory

proxy = graph_factory("proxy", folder={folder!r})
"""


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
    chosen_by_run: RunnableConfig = {"configurable": {"model": "openai:from-configuration"}}
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


def test_thread_locks_from_the_environment_guard_the_served_graphs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    unguarded = build_studio_graph("proxy")
    url = "postgresql://agtest:s3cret-pw@127.0.0.1:5432/assistants"
    monkeypatch.setenv(THREAD_LOCKS_ENV, url)

    guarded = build_studio_graph("proxy")
    served = guarded.copy(update={"checkpointer": InMemorySaver(), "store": None})

    assert not isinstance(unguarded, GuardedGraph)
    assert isinstance(served, GuardedGraph) and served.thread_guard.locks_url == url
    assert served.thread_guard.if_busy == "reject"
    monkeypatch.setenv(THREAD_LOCKS_ENV, url.replace("postgresql:", "postgresql+asyncpg:"))
    with pytest.raises(ValueError, match=f"{THREAD_LOCKS_ENV} must be a PostgreSQL URL") as bad:
        build_studio_graph("proxy")
    assert "s3cret-pw" not in str(bad.value) and "'postgresql+asyncpg'" in str(bad.value)


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


Responder = Callable[[ChatRequest], ScriptedReply | str]


def _sub(assistant: str, message: str) -> ScriptedToolCall:
    return tool_call(f"sub_assistant__{assistant}", message_to_assistant=message)


def _step_by_tool_results(*steps: ScriptedReply | str) -> Responder:
    """Answers with ``steps[n]`` once ``n`` tool results came back in this turn."""

    def respond(request: ChatRequest) -> ScriptedReply | str:
        turn = _since_last_user_message(request)
        tool_results = sum(1 for message in turn if message["role"] == "tool")
        return steps[tool_results]

    return respond


EXAMPLE_SCRIPTS: dict[str, Responder] = {
    "proxy": _step_by_tool_results(
        reply(tool_calls=[_sub("researcher", "Diameter of Mars?")]),
        reply(tool_calls=[_sub("writer", "Say that Mars is 6779 km wide.")]),
        "Mars is 6779 km wide.",
    ),
    "researcher": _step_by_tool_results(
        reply(tool_calls=[tool_call("lookup_fact", topic="mars")]),
        reply(tool_calls=[_sub("calculator", "2*3389.5")]),
        "6779 km",
    ),
    "calculator": _step_by_tool_results(
        reply(tool_calls=[tool_call("calculate", expression="2*3389.5")]), "6779"
    ),
    "writer": _step_by_tool_results(
        reply(tool_calls=[tool_call("word_count", text="Mars is 6779 km wide.")]),
        "Mars is 6779 km wide.",
    ),
}
"""The example team on "How wide is Mars?": proxy -> researcher -> calculator, then proxy
-> writer; every assistant calls a tool, whatever the run's tool call ids."""


def _routes() -> dict[str, str]:
    """Script keys by system prompt marker: boss and helper, and the example team by its
    instructions."""
    team = load_assistants(EXAMPLE_ASSISTANTS)
    return {**SCRIPT_ROUTES, **{team[name].instructions.strip(): name for name in team}}


MARS = "How wide is Mars?"
SUB_ASSISTANT_PATHS = [
    ("proxy", "researcher"),
    ("proxy", "researcher", "calculator"),
    ("proxy", "writer"),
]
_P, _R, _C, _W = ("proxy",), *SUB_ASSISTANT_PATHS
MARS_EVENTS = [
    ("tool_call", _P),
    ("sub_assistant_start", _R),
    ("tool_call", _R),
    ("tool_result", _R),
    ("tool_call", _R),
    ("sub_assistant_start", _C),
    ("tool_call", _C),
    ("tool_result", _C),
    ("agent_message", _C),
    ("sub_assistant_end", _C),
    ("tool_result", _R),
    ("agent_message", _R),
    ("sub_assistant_end", _R),
    ("tool_result", _P),
    ("tool_call", _P),
    ("sub_assistant_start", _W),
    ("tool_call", _W),
    ("tool_result", _W),
    ("agent_message", _W),
    ("sub_assistant_end", _W),
    ("tool_result", _P),
    ("agent_message", _P),
]
"""The events of the example team's run on ``MARS``, in order, by type and path."""


def _write_team(folder: Path) -> None:
    team: list[dict[str, Any]] = [
        {"name": "boss", "sub_assistants": ["helper"]},
        {"name": "helper", "callable": True, "ask_user": True},
    ]
    for fields in team:
        name = fields["name"]
        data = {"description": f"The {name}.", "instructions": f"You are {name}.", **fields}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


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


@contextmanager
def langgraph_dev(config: Path, workdir: Path, environment: dict[str, str]) -> Iterator[str]:
    """Run ``langgraph dev`` on a free loopback port in ``workdir``; yield its URL."""
    port, log = free_port(), workdir / SERVER_LOG
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
        stop_group(process)


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
    example_team = root / "example_team.py"
    example_team.write_text(EXAMPLE_TEAM_MODULE.format(folder=str(EXAMPLE_ASSISTANTS)))
    graphs = {
        GENERIC_GRAPH: "assistant_graph.studio:make_graph",
        "boss": "assistant_graph.studio:boss",
        EXAMPLE_ROOT: f"./{example_team.name}:{EXAMPLE_ROOT}",
    }
    config = root / "langgraph.json"
    config.write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
    with ScriptedOpenAIServer(router=route_by_system_prompt(_routes())) as models:
        models.script("boss", _boss)
        models.script("helper", _helper)
        for name, script in EXAMPLE_SCRIPTS.items():
            models.script(name, script)
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

    assert {assistant["graph_id"] for assistant in assistants} == {
        GENERIC_GRAPH,
        "boss",
        EXAMPLE_ROOT,
    }


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
    # The root's run starts at ``begin``; the helper's was started by its caller's call.
    started = [part.data["begin"]["assistant_path"] for part in parts if "begin" in part.data]
    assert started == [["boss"]]


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


async def test_a_run_streamed_on_the_custom_stream_brings_every_sub_assistants_events(
    client: LangGraphClient,
) -> None:
    thread = await client.threads.create()

    events = await _custom_events(client, thread["thread_id"], EXAMPLE_ROOT, input=_user(MARS))

    for path in SUB_ASSISTANT_PATHS:
        caller, tool = path[:-1], f"sub_assistant__{path[-1]}"
        [call] = _positions(events, ToolCallEvent, caller, tool)
        [start] = _positions(events, SubAssistantStartEvent, path)
        [end] = _positions(events, SubAssistantEndEvent, path)
        [result] = _positions(events, ToolResultEvent, caller, tool)
        assert call < start < end < result, path
        opened_by = _tool_call_ids(events, ToolCallEvent, caller, tool)
        assert {e.parent_tool_call_id for e in events if e.path == path} == opened_by
    for path in [(EXAMPLE_ROOT,), *SUB_ASSISTANT_PATHS]:
        called = _tool_call_ids(events, ToolCallEvent, path)
        assert called and called == _tool_call_ids(events, ToolResultEvent, path), path
    assert {e.parent_tool_call_id for e in events if e.path == (EXAMPLE_ROOT,)} == {None}


async def test_the_client_gets_the_events_stream_events_yields_in_process(
    client: LangGraphClient, dev_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", dev_server.models.url)
    graph = build_assistant_graph(EXAMPLE_ROOT, load_assistants(EXAMPLE_ASSISTANTS))
    thread = await client.threads.create()

    served = await _custom_events(client, thread["thread_id"], EXAMPLE_ROOT, input=_user(MARS))
    in_process = [
        event
        async for event in astream_events(graph, MARS)
        if not isinstance(event, TokenEvent | FinalEvent)  # made by the stream, not at source
    ]

    assert _who_did_what(served) == _who_did_what(in_process) == MARS_EVENTS


async def test_a_question_inside_a_sub_assistant_reaches_the_client_as_an_input_request(
    client: LangGraphClient,
) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    asked = await _custom_events(client, thread_id, "boss", input=_user("please ask me"))

    [opening] = [e for e in asked if isinstance(e, ToolCallEvent) and e.path == ("boss",)]
    assert opening.name == "sub_assistant__helper"
    [request] = [event for event in asked if isinstance(event, InputRequestEvent)]
    assert (request.path, request.parent_tool_call_id) == (("boss", "helper"), opening.id)
    assert (request.kind, request.question) == ("question", "Which planet?")
    waiting = await client.threads.get_state(thread_id)
    [interrupt] = [item for task in waiting["tasks"] for item in task["interrupts"]]
    assert request.id == interrupt["id"]

    answered = await _custom_events(
        client, thread_id, "boss", command={"resume": {request.id: "Mars"}}
    )

    boss, helper = ("boss",), ("boss", "helper")
    assert _who_did_what(answered) == [
        ("sub_assistant_start", helper),  # the helper's tool call runs again, resumed
        ("tool_result", helper),
        ("agent_message", helper),
        ("sub_assistant_end", helper),
        ("tool_result", boss),
        ("agent_message", boss),
    ]
    [answer] = [e for e in answered if isinstance(e, ToolResultEvent) and e.path == helper]
    assert (answer.name, answer.content) == ("ask_user", "Mars")
    assert {e.parent_tool_call_id for e in answered if e.path == helper} == {opening.id}
    done = await client.threads.get_state(thread_id)
    assert done["next"] == []
    values: Any = done["values"]
    assert values["messages"][-1]["content"] == "boss relays: the person said Mars"


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


async def _custom_events(
    client: LangGraphClient, thread_id: str, assistant_id: str, **run: Any
) -> list[AssistantEvent]:
    """Stream a run on the ``custom`` stream with subgraphs; our events in it, as any
    client rebuilds them: the chunks marked ``"source": "assistant_graph"``, read with
    ``AssistantEvent.from_dict``."""
    stream = client.runs.stream(
        thread_id, assistant_id, stream_mode="custom", stream_subgraphs=True, **run
    )
    parts: list[StreamPart] = [part async for part in stream]
    custom = [part.data for part in parts if part.event.split("|")[0] == "custom"]
    ours = [data for data in custom if data.get("source") == "assistant_graph"]
    return [AssistantEvent.from_dict(data) for data in ours]


def _positions(
    events: list[AssistantEvent],
    kind: type[AssistantEvent],
    path: tuple[str, ...],
    tool: str | None = None,
) -> list[int]:
    """Where events of ``kind`` at ``path`` (about ``tool``, if given) are."""
    return [
        i
        for i, event in enumerate(events)
        if isinstance(event, kind)
        and event.path == path
        and (tool is None or getattr(event, "name", None) == tool)
    ]


def _tool_call_ids(
    events: list[AssistantEvent],
    kind: type[ToolCallEvent | ToolResultEvent],
    path: tuple[str, ...],
    tool: str | None = None,
) -> set[str | None]:
    """The tool call ids of the tool calls or results at ``path`` (of ``tool``, if given)."""
    return {getattr(events[i], "id", None) for i in _positions(events, kind, path, tool)}


def _who_did_what(events: list[AssistantEvent]) -> list[tuple[str, tuple[str, ...]]]:
    """Each event's type and path: what stays the same from run to run (ids do not)."""
    return [(event.type, event.path) for event in events]


def _graph_path(graph_id: str) -> str:
    entry = json.loads(LANGGRAPH_JSON.read_text())["graphs"][graph_id]
    return str(entry["path"] if isinstance(entry, dict) else entry)


def _import(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def test_warming_up_compiles_the_generic_graph_before_its_first_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    assert studio.warm_up()
    hits = studio._compiled.cache_info().hits

    build_studio_graph()  # what the server's first load of the generic graph does

    assert studio._compiled.cache_info().hits == hits + 1


def test_the_first_load_of_the_generic_graph_is_not_logged_as_slow(tmp_path: Path) -> None:
    environment = _environment(OPENAI_API_KEY=FAKE_KEY, OPENAI_BASE_URL="http://127.0.0.1:9/v1")

    with (
        langgraph_dev(LANGGRAPH_JSON, tmp_path, environment) as url,
        get_sync_client(url=url) as client,
    ):
        client.assistants.get_graph(GENERIC_GRAPH)  # compiles it, as a run's first load does

    log = (tmp_path / SERVER_LOG).read_text(errors="replace")
    slow = [line for line in log.splitlines() if "Slow graph load" in line]
    assert not [line for line in slow if f"'{GENERIC_GRAPH}'" in line], slow
