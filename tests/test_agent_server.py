"""The graphs of ``aegra.json`` (the factories ``langgraph.json`` names) served by a real
open-source LangGraph Agent Server: Aegra, two worker processes on loopback sharing one
PostgreSQL database and one Redis, driven with ``langgraph_sdk``.

The models are a scripted OpenAI server in this process, reached by real ``ChatOpenAI``
HTTP calls from the workers. The team is the example team (``proxy`` -> ``researcher`` ->
``calculator``, and ``writer``) with ``ask_user`` given to the researcher. Each model
answers by rule from what it received (the marker in the user's message and how many tool
results came back this turn), so runs on many threads at once never share a script.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

from assistant_graph.events import (
    AssistantEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from assistant_graph.studio import THREAD_LOCKS_ENV
from assistant_graph.testing import ScriptedOpenAIServer
from tests.agent_server_support import (
    AEGRA_CONFIG,
    LEASE_SECONDS,
    SERVER_APP,
    SERVER_SETTINGS,
    AgentServer,
    Team,
    agent_server,
    missing_component,
    pg_dump,
    write_team,
)
from tests.conftest import POSTGRES_URL_VARIABLE, REPO

pytestmark = pytest.mark.agent_server

API_KEY = f"sk-agent-server-{uuid.uuid4().hex}"
"""The models' API key in the workers' environment: it must never be stored."""
WORKERS = 2
DEADLINE = 60.0
LANGGRAPH_JSON = REPO / "langgraph.json"
README_SETTINGS = ("REDIS_BROKER_ENABLED", "WORKER_COUNT")
"""The server settings the README's recipe sets as the tests do (the others are the
tests' shorter leases and log level)."""


# -- the server ---------------------------------------------------------------------------


def _require_components() -> str:
    """The PostgreSQL URL, or skip (fail under CI=true) naming what is missing."""
    postgres_url = os.environ.get(POSTGRES_URL_VARIABLE)
    missing = missing_component(postgres_url)
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    assert postgres_url is not None
    return postgres_url


@dataclass
class Served:
    """The running server, its models and the team's rules."""

    server: AgentServer
    models: ScriptedOpenAIServer
    team: Team


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    postgres_url = _require_components()
    root = tmp_path_factory.mktemp("agent_server")
    assistants = root / "assistants"
    assistants.mkdir()
    write_team(assistants)
    team = Team()
    with ScriptedOpenAIServer() as models:
        team.serve(models, assistants)
        variables = {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": models.url,
            "ASSISTANT_GRAPH_ASSISTANTS": str(assistants),
        }
        # Every scenario runs with our thread guard on, as the README's recipe has it.
        with agent_server(postgres_url, root, WORKERS, variables, thread_locks=True) as server:
            yield Served(server, models, team)
            assert models.errors == [], server.logs()


@pytest.fixture
async def clients(served: Served) -> AsyncIterator[list[LangGraphClient]]:
    """One SDK client per running instance (any instance's API serves any thread)."""
    urls = [i.url for i in served.server.instances if i.process.poll() is None]
    async with get_client(url=urls[0]) as first, get_client(url=urls[-1]) as last:
        yield [first, last]


@pytest.fixture
def client(clients: list[LangGraphClient]) -> LangGraphClient:
    return clients[0]


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def _new_thread(client: LangGraphClient) -> str:
    return str((await client.threads.create())["thread_id"])


async def _held_at_the_researcher(
    client: LangGraphClient, served: Served, message: str
) -> tuple[str, dict[str, Any]]:
    """A new thread whose run (``message``, starting with ``slow``) is under way and held
    at the slow researcher until ``served.team.gate`` is set: the thread id and the run."""
    thread_id = await _new_thread(client)
    served.team.waiting.clear()
    served.team.gate.clear()
    try:
        run = await client.runs.create(thread_id, "proxy", input=_user(message))
        await _until(served.team.waiting.is_set, "the run to reach the slow researcher")
    except BaseException:
        served.team.gate.set()  # let a run that got under way finish
        raise
    return thread_id, dict(run)


async def _until(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _ours(parts: list[StreamPart]) -> list[AssistantEvent]:
    """Our events among the ``custom`` chunks, as any client rebuilds them."""
    custom = [part.data for part in parts if part.event.split("|")[0] == "custom"]
    return [AssistantEvent.from_dict(d) for d in custom if d.get("source") == "assistant_graph"]


def _messages(values: Any) -> list[tuple[str, str]]:
    return [(m["type"], str(m["content"])) for m in values["messages"]]


def _picked_up(served: Served) -> list[int]:
    """How many runs each instance's worker picked up, from the instances' logs."""
    return [
        i.log.read_text(errors="replace").count("Worker picked up run")
        for i in served.server.instances
    ]


# -- aegra.json ---------------------------------------------------------------------------


def test_aegra_json_serves_the_factories_langgraph_json_names() -> None:
    """Aegra loads graphs by file path, LangGraph Server by import string: the same
    factory, named twice."""
    served = json.loads(AEGRA_CONFIG.read_text("utf-8"))["graphs"]
    named = json.loads(LANGGRAPH_JSON.read_text("utf-8"))["graphs"]

    def target(entry: Any) -> str:
        return str(entry["path"] if isinstance(entry, dict) else entry)

    assert served.keys() == named.keys()
    for graph_id, entry in named.items():
        module, attribute = target(entry).split(":")
        expected = f"./src/{module.replace('.', '/')}.py:{attribute}"
        assert target(served[graph_id]) == expected, graph_id
        assert (REPO / expected.split(":")[0]).is_file()


def test_the_readme_recipe_is_the_one_the_tests_run() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    ci = (REPO / ".ci" / "run").read_text("utf-8")

    assert f"python -m uvicorn {SERVER_APP} --host 127.0.0.1" in readme
    for name, value in SERVER_SETTINGS.items():
        if name in README_SETTINGS:
            assert f"{name}={value}" in readme, name
    for name in ("DATABASE_URL", "REDIS_URL", "AEGRA_CONFIG", THREAD_LOCKS_ENV):
        assert f"export {name}=" in readme or f" {name}=" in readme, name
    assert "-e '.[agent-server]'" in readme and "-e '.[agent-server]'" in ci


# -- delegation, streamed -----------------------------------------------------------------


async def test_three_levels_with_parallel_sub_assistants_stream_namespaced_chunks_and_our_events(
    client: LangGraphClient,
) -> None:
    thread_id = await _new_thread(client)

    parts = [
        part
        async for part in client.runs.stream(
            thread_id,
            "proxy",
            input=_user("mars m3"),
            stream_mode=["updates", "custom"],
            stream_subgraphs=True,
        )
    ]

    namespaces = {
        part.event.partition("|")[2] for part in parts if part.event.startswith("updates")
    }
    depths = {namespace.count("tools:") for namespace in namespaces}
    assert depths == {0, 1, 2}, namespaces  # proxy; researcher and writer; calculator
    events = _ours(parts)
    started = [e.path for e in events if isinstance(e, SubAssistantStartEvent)]
    assert sorted(started) == [
        ("proxy", "researcher"),
        ("proxy", "researcher", "calculator"),
        ("proxy", "writer"),
    ]
    calls = [e for e in events if isinstance(e, ToolCallEvent) and e.path == ("proxy",)]
    assert {e.name for e in calls} == {"sub_assistant__researcher", "sub_assistant__writer"}
    proxy_results = [
        i for i, e in enumerate(events) if isinstance(e, ToolResultEvent) and e.path == ("proxy",)
    ]
    ends = [
        i for i, e in enumerate(events) if isinstance(e, SubAssistantEndEvent) and len(e.path) == 2
    ]
    assert len(proxy_results) == len(ends) == 2
    assert max(ends) < max(proxy_results)  # each result after its sub-assistant ended
    for event in events:  # every event names the tool call that opened its assistant
        if len(event.path) > 1:
            opener = [
                c
                for c in events
                if isinstance(c, ToolCallEvent) and c.id == event.parent_tool_call_id
            ]
            assert opener and opener[0].path == event.path[:-1], event
    state = await client.threads.get_state(thread_id)
    assert _messages(state["values"])[-1] == (
        "ai",
        "mars m3: Mars is 6779 km wide | writer wrote m3 (earlier turns: 0)",
    )


async def test_a_second_run_continues_the_thread_and_resumes_a_sub_conversation_by_uid(
    clients: list[LangGraphClient], served: Served
) -> None:
    first, second = clients
    thread_id = await _new_thread(first)
    await first.runs.wait(thread_id, "proxy", input=_user("load c1"))

    result: Any = await second.runs.wait(thread_id, "proxy", input=_user("continue c2"))

    assert _messages(result)[-1] == ("ai", "continue c2: writer wrote c2 (earlier turns: 1)")
    [conversation] = result["sub_assistant_states"].values()
    assert [(m["type"], m["content"]) for m in conversation["messages"]] == [
        ("human", "c1"),
        ("ai", "writer wrote c1 (earlier turns: 0)"),
        ("human", "c2"),
        ("ai", "writer wrote c2 (earlier turns: 1)"),
    ]
    resumed = [r for r in served.models.requests_for("writer") if r.last_user_message == "c2"]
    assert [m["content"] for m in resumed[0].messages if m["role"] == "user"] == ["c1", "c2"]


# -- a question inside a sub-assistant -------------------------------------------------------


async def test_ask_user_inside_a_sub_assistant_is_interrupted_and_resumed_with_a_command(
    clients: list[LangGraphClient],
) -> None:
    first, second = clients
    thread_id = await _new_thread(first)

    asked: Any = await first.runs.wait(thread_id, "proxy", input=_user("ask q1"))

    [interrupt] = asked["__interrupt__"]
    assert interrupt["value"]["question"] == "Which planet?"
    assert interrupt["value"]["path"] == ["proxy", "researcher"]
    waiting = await second.threads.get(thread_id)
    assert waiting["status"] == "interrupted"

    answered: Any = await second.runs.wait(thread_id, "proxy", command={"resume": "Mars"})

    assert _messages(answered)[-1] == ("ai", "ask q1: the person said Mars")
    assert [t for t, _ in _messages(answered)] == ["human", "ai", "tool", "ai"]
    assert (await first.threads.get(thread_id))["status"] == "idle"


# -- load ----------------------------------------------------------------------------------


THREADS = 50


async def test_fifty_threads_started_at_once_all_complete_none_lost_or_crossed(
    clients: list[LangGraphClient], served: Served
) -> None:
    before = _picked_up(served)
    thread_ids = await asyncio.gather(*(_new_thread(c) for c in clients * (THREADS // 2)))

    runs = await asyncio.gather(
        *(
            clients[i % 2].runs.create(thread_id, "proxy", input=_user(f"load n{i}"))
            for i, thread_id in enumerate(thread_ids)
        )
    )
    outputs = await asyncio.gather(
        *(
            clients[i % 2].runs.join(t, r["run_id"])
            for i, (t, r) in enumerate(zip(thread_ids, runs, strict=True))
        )
    )

    for i, output in enumerate(outputs):
        assert _messages(output) == [
            ("human", f"load n{i}"),
            ("ai", ""),
            ("tool", f"writer wrote n{i} (earlier turns: 0)\n\n" + _uid_note(output)),
            ("ai", f"load n{i}: writer wrote n{i} (earlier turns: 0)"),
        ], i
    statuses = [
        await clients[0].runs.get(t, r["run_id"]) for t, r in zip(thread_ids, runs, strict=True)
    ]
    assert {s["status"] for s in statuses} == {"success"}
    after = _picked_up(served)
    assert all(a > b for a, b in zip(after, before, strict=True)), after  # both workers took runs


def _uid_note(output: Any) -> str:
    """The uid note our tool result ends with (the uid differs per run)."""
    content = str(output["messages"][2]["content"])
    return content.split("\n\n", 1)[1]


@pytest.mark.xfail(
    strict=True,
    reason="Aegra 0.11 accepts multitask_strategy but applies none: a second run on a busy "
    "thread is started at once on another worker (aegra/aegra#253, PR #462 open); our own "
    "thread lock then ends it with error, which is neither the 409 of reject nor enqueue",
)
@pytest.mark.parametrize("strategy", ["reject", "enqueue"])
async def test_a_second_run_on_a_busy_thread_is_rejected_or_queued_by_the_server(
    clients: list[LangGraphClient], served: Served, strategy: str
) -> None:
    first, second = clients
    thread_id, busy = await _held_at_the_researcher(first, served, "slow b1")
    try:
        if strategy == "reject":
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await second.runs.create(
                    thread_id, "proxy", input=_user("load b2"), multitask_strategy="reject"
                )
            assert refused.value.response.status_code == 409
        else:
            queued = await second.runs.create(
                thread_id, "proxy", input=_user("load b2"), multitask_strategy="enqueue"
            )
            await asyncio.sleep(LEASE_SECONDS)  # time enough for the idle worker to take it
            assert (await second.runs.get(thread_id, queued["run_id"]))["status"] == "pending"
    finally:
        served.team.gate.set()
        await first.runs.join(thread_id, busy["run_id"])
        for run in await first.runs.list(thread_id):
            await first.runs.join(thread_id, run["run_id"])


async def test_with_thread_locks_a_second_run_on_a_busy_thread_ends_error_and_nothing_is_lost(
    clients: list[LangGraphClient], served: Served
) -> None:
    """``ASSISTANT_GRAPH_THREAD_LOCKS`` (set for this server): our thread guard's advisory
    lock, in the server's database, rejects a run on a busy thread before it touches the
    thread, whichever worker takes it."""
    first, second = clients
    thread_id, busy = await _held_at_the_researcher(first, served, "slow g1")
    rejected: list[Any] = []
    try:
        [holder] = served.server.picked_up(busy["run_id"])
        for attempt in range(REJECTION_ATTEMPTS):  # until the other worker has taken one
            run_id = (
                await second.runs.create(thread_id, "proxy", input=_user(f"load g2 {attempt}"))
            )["run_id"]
            rejected.append(
                await _until(functools.partial(_ended, second, thread_id, run_id), "end")
            )
            if holder not in served.server.picked_up(run_id):
                break
    finally:
        served.team.gate.set()
    await first.runs.join(thread_id, busy["run_id"])
    state = await first.threads.get_state(thread_id)
    history = json.dumps(await first.threads.get_history(thread_id, limit=100))
    later: Any = await second.runs.wait(thread_id, "proxy", input=_user("continue g3"))

    busy_error = f"a run is in progress on thread {thread_id!r}"
    assert [(r["status"], busy_error in str(r.get("error_message"))) for r in rejected] == [
        ("error", True)
    ] * len(rejected), rejected
    assert holder not in served.server.picked_up(rejected[-1]["run_id"])  # the other worker
    assert (await first.runs.get(thread_id, busy["run_id"]))["status"] == "success"
    turn = _messages(state["values"])
    assert [t for t, _ in turn] == ["human", "ai", "tool", "tool", "ai"]  # the first turn only
    assert turn[0] == ("human", "slow g1")
    assert turn[-1] == ("ai", "slow g1: Mars is 6779 km wide | writer wrote g1 (earlier turns: 0)")
    assert "g2" not in history  # no checkpoint of the thread holds the rejected runs' input
    assert not [r for r in served.models.requests if "g2" in r.last_user_message]
    assert _messages(later)[-1] == ("ai", "continue g3: writer wrote g3 (earlier turns: 1)")
    assert (await first.threads.get(thread_id))["status"] == "idle"


REJECTION_ATTEMPTS = 5


# -- secrets -------------------------------------------------------------------------------


async def test_the_api_key_is_neither_in_postgresql_nor_in_redis(
    client: LangGraphClient, served: Served
) -> None:
    thread_id, run = await _held_at_the_researcher(client, served, "slow secret-check")
    try:
        in_flight = _redis_dump(served.server.redis.url)  # the run's queue and stream buffer
    finally:
        served.team.gate.set()
    await client.runs.join(thread_id, run["run_id"])
    await client.runs.wait(thread_id, "proxy", input=_user("ask secret-ask"))  # interrupted
    stored = in_flight + _redis_dump(served.server.redis.url)
    dump = subprocess.run(
        [str(pg_dump()), "--data-only", served.server.database_url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    assert "secret-check" in dump and "secret-ask" in dump  # the dumps hold the runs
    assert run["run_id"] in in_flight and "secret-check" in in_flight
    assert API_KEY not in dump
    assert API_KEY not in stored
    assert API_KEY.removeprefix("sk-") not in dump + stored  # not even without its prefix


def _redis_dump(url: str) -> str:
    """Every key of the Redis database and its value, as text."""
    connection: Any = redis.Redis.from_url(url, decode_responses=True)
    readers: dict[str, Callable[[str], Any]] = {
        "string": connection.get,
        "list": lambda key: connection.lrange(key, 0, -1),
        "hash": connection.hgetall,
        "set": connection.smembers,
        "zset": lambda key: connection.zrange(key, 0, -1, withscores=True),
        "stream": connection.xrange,
    }
    try:
        return "\n".join(
            f"{key} {connection.type(key)} {readers[connection.type(key)](key)}"
            for key in connection.scan_iter()
        )
    finally:
        connection.close()


# -- a worker killed mid-run -----------------------------------------------------------------


async def test_a_killed_worker_s_run_is_finished_by_another_without_redoing_finished_work(
    clients: list[LangGraphClient], served: Served
) -> None:
    """Aegra's promise: the lease of a dead worker's run expires, the reaper of a live
    instance puts the run back in the queue, and a worker runs it again with the same run
    id, which LangGraph resumes from the thread's last checkpoint (its input is not added
    again)."""
    first, _ = clients
    thread_id, run = await _held_at_the_researcher(first, served, "slow k1")
    await _until(lambda: _writer_done(first, thread_id), "the writer's result to be saved")
    worker = await _until(lambda: served.server.worker_of(run["run_id"]), "the run's worker")
    survivor = next(i for i in served.server.instances if i is not worker)

    served.server.kill(worker)
    served.team.gate.set()
    async with get_client(url=survivor.url) as client:
        retried = await _until(lambda: _ended(client, thread_id, run["run_id"]), "the retried run")
        state = await client.threads.get_state(thread_id)
        later: Any = await client.runs.wait(thread_id, "proxy", input=_user("continue k2"))

    assert retried["status"] == "success"
    assert served.server.worker_of(run["run_id"]) is None  # released by the survivor
    assert served.server.retries_of(run["run_id"]) == 1
    assert _messages(state["values"])[-1] == (
        "ai",
        "slow k1: Mars is 6779 km wide | writer wrote k1 (earlier turns: 0)",
    )
    assert [t for t, _ in _messages(state["values"])] == ["human", "ai", "tool", "tool", "ai"]
    writer_calls = [r for r in served.models.requests_for("writer") if r.last_user_message == "k1"]
    assert len(writer_calls) == 1  # the finished sub-assistant was not run again
    assert _messages(later)[-1] == ("ai", "continue k2: writer wrote k2 (earlier turns: 1)")
    served.server.start_instance()  # back to two workers for any later test


async def _writer_done(client: LangGraphClient, thread_id: str) -> bool:
    """Whether the writer's tool call has its result saved as a pending write."""
    state = await client.threads.get_state(thread_id)
    return any(
        task.get("result") and "writer wrote" in json.dumps(task["result"])
        for task in state["tasks"]
    )


async def _ended(client: LangGraphClient, thread_id: str, run_id: str) -> Any:
    run = await client.runs.get(thread_id, run_id)
    return run if run["status"] in ("success", "error", "interrupted") else None
