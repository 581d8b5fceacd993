"""2. Parallel fan-out: K sub-assistant calls in one turn should cost one model latency.

A ``boss`` answers a request with K tool calls to a ``worker``; each worker answers at
once; the boss answers once all results are in. Every model call takes ``latency``
seconds, so the ideal turn takes three latencies whatever K is, and the reported ratio,
wall time at K over wall time at K = 1, is ideally 1.0.

Runs:

- ``async`` (``ainvoke``, the scripted model sleeps with ``asyncio.sleep``), for this
  library and the two alternatives of :mod:`benchmarks.hop_overhead`;
- ``http`` (``ainvoke``, real ``ChatOpenAI`` clients against the scripted OpenAI server on
  127.0.0.1, which delays each answer);
- ``sync`` (``invoke``, the model sleeps with ``time.sleep``), as compiled (the library
  sets ``max_concurrency`` to ``MAX_CONCURRENCY`` = 64) and with ``max_concurrency=K``
  passed in the run config.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI

from assistant_graph import build_assistant_graph
from assistant_graph._graph import MAX_CONCURRENCY
from assistant_graph.testing import ChatRequest, ScriptedOpenAIServer, ScriptedReply, reply
from assistant_graph.testing import tool_call as http_tool_call
from benchmarks.harness import Mode, SectionResult, Target, median, ratio, time_call
from benchmarks.hop_overhead import DEEPAGENTS_MISSING, agent_as_tool, deepagents_available
from benchmarks.policies import (
    ANSWER,
    TASK,
    DelegateOnce,
    deepagents_task_call,
    fan_out_catalog,
    langchain_tool_call,
    scripted,
    sub_assistant_call,
)

__all__ = ["run"]

SIZES = {"quick": (1, 4), "full": (1, 4, 8, 16)}
LATENCY = {"quick": 0.05, "full": 0.2}
REPEATS = {"quick": 1, "full": 2}
TARGET_K = 8
TARGET_LIMIT = 1.15
API_KEY = "sk-benchmark-not-a-real-key"
SYNC_NOTE = (
    f"sync invoke runs parallel tool calls on a thread pool; the library compiles its graphs "
    f"with max_concurrency={MAX_CONCURRENCY}, so K up to {MAX_CONCURRENCY} runs at once "
    "(LangGraph's default pool would be min(32, CPUs + 4) workers, 6 on 2 CPUs)."
)


@dataclass(frozen=True)
class FanOutRun:
    """One way of running the fan-out turn."""

    name: str
    """Row label, e.g. ``"assistant_graph / async"``."""
    build: Callable[[int, float], Runnable[Any, Any]]
    """Builds the graph for K calls and a model latency."""
    sync: bool = False
    """``invoke`` instead of ``ainvoke``."""
    config: Callable[[int], dict[str, Any]] | None = None
    """Extra run config for K (e.g. ``max_concurrency``)."""


def _this_library(k: int, latency: float) -> Runnable[Any, Any]:
    def model(schema: Any) -> Any:
        if schema.name == "boss":
            calls = DelegateOnce(calls=lambda m: [sub_assistant_call("worker") for _ in range(k)])
            return scripted(calls, latency=latency)
        return scripted(DelegateOnce(), latency=latency)

    return build_assistant_graph("boss", fan_out_catalog(), model=model)


def _langchain_tool(k: int, latency: float) -> Runnable[Any, Any]:
    worker = create_agent(scripted(DelegateOnce(), latency=latency), tools=[])
    tool = agent_as_tool(worker, "ask_worker")
    boss = DelegateOnce(calls=lambda m: [langchain_tool_call("ask_worker") for _ in range(k)])
    return create_agent(scripted(boss, latency=latency), tools=[tool])


def _deepagents_task(k: int, latency: float) -> Runnable[Any, Any]:
    from deepagents import create_deep_agent

    worker = {
        "name": "worker",
        "description": "Does one piece of the work.",
        "system_prompt": "You do one piece of the work.",
        "model": scripted(DelegateOnce(), latency=latency),
        "tools": [],
    }
    boss = DelegateOnce(calls=lambda m: [deepagents_task_call("worker") for _ in range(k)])
    return create_deep_agent(model=scripted(boss, latency=latency), tools=[], subagents=[worker])


def _boss_over_http(k: int, latency: float) -> Callable[[ChatRequest], ScriptedReply]:
    def respond(request: ChatRequest) -> ScriptedReply:
        if request.messages and request.messages[-1].get("role") == "tool":
            return reply(ANSWER, delay=latency)
        call = http_tool_call("sub_assistant__worker", message_to_assistant=TASK)
        return reply(tool_calls=[call] * k, delay=latency)

    return respond


def _over_http(server: ScriptedOpenAIServer) -> Callable[[int, float], Runnable[Any, Any]]:
    def build(k: int, latency: float) -> Runnable[Any, Any]:
        server.script("boss", _boss_over_http(k, latency))
        server.script("worker", lambda request: reply(ANSWER, delay=latency))

        def model(schema: Any) -> ChatOpenAI:
            return ChatOpenAI(
                model=schema.name, base_url=server.url, api_key=API_KEY, max_retries=0
            )

        return build_assistant_graph("boss", fan_out_catalog(), model=model)

    return build


def _runs(server: ScriptedOpenAIServer) -> list[FanOutRun]:
    runs = [
        FanOutRun("assistant_graph / async", _this_library),
        FanOutRun("assistant_graph / http", _over_http(server)),
        FanOutRun("assistant_graph / sync", _this_library, sync=True),
        FanOutRun(
            "assistant_graph / sync, max_concurrency=K",
            _this_library,
            sync=True,
            config=lambda k: {"max_concurrency": k},
        ),
        FanOutRun("langchain_tool / async", _langchain_tool),
    ]
    if deepagents_available():
        runs.append(FanOutRun("deepagents_task / async", _deepagents_task))
    return runs


def _wall_times(
    run: FanOutRun, sizes: tuple[int, ...], latency: float, repeats: int
) -> dict[int, float]:
    """Median wall time of the turn for every K (one event loop for all async runs)."""
    payload = {"messages": [HumanMessage("Split the work.")]}
    if run.sync:
        walls: dict[int, float] = {}
        for k in sizes:
            graph, config = run.build(k, latency), run.config(k) if run.config else {}
            graph.invoke(payload, config)  # warm-up
            walls[k] = median(
                [time_call(lambda g=graph, c=config: g.invoke(payload, c)) for _ in range(repeats)]
            )
        return walls

    async def measure() -> dict[int, float]:
        walls: dict[int, float] = {}
        for k in sizes:
            graph, config = run.build(k, latency), run.config(k) if run.config else {}
            times = []
            await graph.ainvoke(payload, config)  # warm-up: clients, connections, caches
            for _ in range(repeats):
                start = time.perf_counter()
                await graph.ainvoke(payload, config)
                times.append(time.perf_counter() - start)
            walls[k] = median(times)
        return walls

    return asyncio.run(measure())


def run(mode: Mode) -> SectionResult:
    """Measure wall time against K for every way of running the turn."""
    sizes, latency, repeats = SIZES[mode], LATENCY[mode], REPEATS[mode]
    result = SectionResult(
        name="fan_out",
        title=f"2. Parallel fan-out (every model call takes {latency * 1000:.0f} ms)",
        params={"k": list(sizes), "latency_s": latency, "repeats": repeats},
    )
    with ScriptedOpenAIServer() as server:
        for fan_run in _runs(server):
            walls = _wall_times(fan_run, sizes, latency, repeats)
            row: dict[str, Any] = {"run": fan_run.name}
            row |= {f"k{k}_s": round(walls[k], 3) for k in sizes}
            row |= {f"k{k}_vs_k1": ratio(walls[k], walls[1]) for k in sizes if k > 1}
            row["k1_vs_3_latencies"] = ratio(walls[1], 3 * latency)
            result.rows.append(row)
            result.ratios[fan_run.name] = {
                f"k{k}_vs_k1": ratio(walls[k], walls[1]) for k in sizes if k > 1
            }
        if server.errors:
            result.notes.append(f"scripted server problems: {server.errors[:3]}")
    if not deepagents_available():
        result.notes.append(DEEPAGENTS_MISSING)
    result.notes.append(SYNC_NOTE)
    target_k = TARGET_K if TARGET_K in sizes else sizes[-1]
    for name in ("assistant_graph / async", "assistant_graph / http", "assistant_graph / sync"):
        value = result.ratios[name].get(f"k{target_k}_vs_k1")
        result.targets.append(
            Target(f"fan-out K={target_k} / K=1, {name}", value, TARGET_LIMIT, "<=")
        )
    return result
