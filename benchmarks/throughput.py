"""6. Throughput: many threads at once, each a two-level delegation with parallel calls.

Every thread runs one turn: the ``proxy`` calls the ``researcher`` and the ``writer`` in
parallel; the researcher calls the ``calculator`` and answers; the proxy answers once both
results are in (six model calls, three sub-assistant runs). All threads start together on
one event loop (``ainvoke`` under ``asyncio.gather``), on ``InMemorySaver`` and on
``AsyncSqliteSaver``. The scripted models take no time and answer by rule from what they
receive (the thread's marker, ``thread-17``, travels in every message), so calls of
different threads may interleave freely; a thread counts as completed when its final
answer names its own marker.

Reported: threads per second over the whole batch, runs completed, and the latency of a
thread inside the batch. With zero-latency models the batch is CPU-bound: threads per
second is what one process's event loop can push through, not a measure of waiting.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from assistant_graph import AssistantCatalog, build_assistant_graph, store_messages_once
from assistant_graph.testing import call_sub_assistant
from benchmarks.harness import Mode, SectionResult, Target, median, ratio
from benchmarks.policies import scripted

__all__ = ["run", "team_catalog"]

THREADS = {"quick": 20, "full": 200}
REPEATS = {"quick": 1, "full": 3}
WARMUP_THREADS = 5
SEQUENTIAL = {"quick": 5, "full": 50}
"""Threads run one after another on the same saver, for the throughput without overlap."""
ONCE = " + store_messages_once"
SAVERS = ("InMemorySaver", "AsyncSqliteSaver", "InMemorySaver" + ONCE, "AsyncSqliteSaver" + ONCE)
"""The LangGraph savers as they are, and wrapped as ``open_checkpointer`` opens them."""
MODEL_CALLS_PER_THREAD = 6
SUB_RUNS_PER_THREAD = 3
_MARKER = re.compile(r"thread-\d+")


def team_catalog() -> AssistantCatalog:
    """proxy -> (researcher -> calculator, writer)."""

    def schema(name: str, subs: Sequence[str] = (), callable_: bool = True) -> dict[str, Any]:
        return {
            "name": name,
            "description": f"The {name}.",
            "instructions": f"You are the {name}.",
            "sub_assistants": list(subs),
            "callable": callable_,
        }

    return AssistantCatalog.from_schemas(
        [
            schema("proxy", ["researcher", "writer"], callable_=False),
            schema("researcher", ["calculator"]),
            schema("writer"),
            schema("calculator"),
        ]
    )


def _marker(messages: Sequence[BaseMessage]) -> str:
    """The thread's marker: the first one in the conversation."""
    for message in messages:
        found = _MARKER.search(str(message.content))
        if found:
            return found.group()
    raise ValueError("no thread marker in the conversation")


class _Rule:
    """One assistant's policy: a reply computed from the conversation, no state kept."""

    def __init__(self, name: str) -> None:
        self.name = name

    def next_reply(self, messages: Sequence[BaseMessage], tools: Sequence[str]) -> AIMessage:
        marker = _marker(messages)
        answered = isinstance(messages[-1], ToolMessage)
        if self.name == "proxy" and not answered:
            calls = [
                call_sub_assistant("researcher", f"facts for {marker}"),
                call_sub_assistant("writer", f"text for {marker}"),
            ]
            return AIMessage(content="", tool_calls=calls)
        if self.name == "researcher" and not answered:
            calls = [call_sub_assistant("calculator", f"sum for {marker}")]
            return AIMessage(content="", tool_calls=calls)
        verb = {"proxy": "done", "researcher": "researched", "writer": "wrote"}
        return AIMessage(content=f"{verb.get(self.name, 'computed')} {marker}")


def _graph(saver: BaseCheckpointSaver[Any]) -> Any:
    names = ("proxy", "researcher", "writer", "calculator")
    models = {name: scripted(_Rule(name)) for name in names}  # type: ignore[arg-type]
    return build_assistant_graph(
        "proxy", team_catalog(), model=lambda schema: models[schema.name], checkpointer=saver
    )


@asynccontextmanager
async def _saver(kind: str, folder: Path, label: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The saver ``kind`` names; ``+ store_messages_once``: wrapped as open_checkpointer does."""
    wrap = store_messages_once if kind.endswith(ONCE) else (lambda saver: saver)
    if kind.startswith("InMemorySaver"):
        yield wrap(InMemorySaver())
        return
    async with AsyncSqliteSaver.from_conn_string(str(folder / f"{label}.sqlite")) as saver:
        yield wrap(saver)


async def _one(graph: Any, index: int, prefix: str) -> tuple[bool, float]:
    """Run one thread's turn; whether it completed with its own answer, and its seconds."""
    start = time.perf_counter()
    config = {"configurable": {"thread_id": f"{prefix}-{index}"}}
    request = HumanMessage(f"Work for thread-{index}, please.")
    result = await graph.ainvoke({"messages": [request]}, config)
    final = result["messages"][-1]
    return final.content == f"done thread-{index}", time.perf_counter() - start


async def _batch(
    kind: str, threads: int, folder: Path, label: str, sequential: int
) -> dict[str, Any]:
    """Warm up, run ``sequential`` threads one by one, then ``threads`` at once."""
    async with _saver(kind, folder, label) as saver:
        graph = _graph(saver)
        await asyncio.gather(*(_one(graph, i, "warmup") for i in range(WARMUP_THREADS)))
        start = time.perf_counter()
        for index in range(sequential):
            await _one(graph, index, "sequential")
        one_by_one = (time.perf_counter() - start) / max(1, sequential)
        start = time.perf_counter()
        outcomes = await asyncio.gather(
            *(_one(graph, i, label) for i in range(threads)), return_exceptions=True
        )
        wall = time.perf_counter() - start
    done = [o for o in outcomes if isinstance(o, tuple)]
    latencies = sorted(seconds for _, seconds in done)
    return {
        "wall_s": wall,
        "sequential_s_per_thread": one_by_one,
        "completed": sum(ok for ok, _ in done),
        "failed": len(outcomes) - len(done),
        "latency_p50_s": median(latencies),
        "latency_p95_s": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
    }


def _measure(
    kind: str, threads: int, repeats: int, sequential: int, folder: Path
) -> dict[str, Any]:
    """The batch ``repeats`` times; the run of median wall time."""
    runs = [
        asyncio.run(_batch(kind, threads, folder, f"{kind}-{r}", sequential))
        for r in range(repeats)
    ]
    runs.sort(key=lambda run: run["wall_s"])
    chosen = runs[len(runs) // 2]
    chosen["completed_every_run"] = min(run["completed"] for run in runs)
    return chosen


def run(mode: Mode) -> SectionResult:
    """Run the batch on each saver; threads per second and runs completed."""
    threads, repeats = THREADS[mode], REPEATS[mode]
    result = SectionResult(
        name="throughput",
        title=f"6. Throughput: {threads} concurrent threads (proxy -> researcher -> calculator"
        " || writer), zero-latency models",
        params={
            "threads": threads,
            "repeats": repeats,
            "model_calls_per_thread": MODEL_CALLS_PER_THREAD,
            "sub_assistant_runs_per_thread": SUB_RUNS_PER_THREAD,
        },
    )
    measured: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="assistant-graph-bench-") as folder:
        for kind in SAVERS:
            measured[kind] = _measure(kind, threads, repeats, SEQUENTIAL[mode], Path(folder))
    for kind, m in measured.items():
        per_s = threads / m["wall_s"]
        result.rows.append(
            {
                "saver": kind,
                "threads": threads,
                "completed": m["completed_every_run"],
                "failed": m["failed"],
                "wall s": round(m["wall_s"], 2),
                "threads/s": round(per_s, 1),
                "model calls/s": round(per_s * MODEL_CALLS_PER_THREAD, 1),
                "sub-assistant runs/s": round(per_s * SUB_RUNS_PER_THREAD, 1),
                "ms/thread in the batch": round(1000 * m["wall_s"] / threads, 1),
                "ms/thread one at a time": round(1000 * m["sequential_s_per_thread"], 1),
                "latency p50 s": round(m["latency_p50_s"], 2),
                "latency p95 s": round(m["latency_p95_s"], 2),
            }
        )
        key = ("memory" if kind.startswith("InMemorySaver") else "sqlite") + (
            "_once" if kind.endswith(ONCE) else ""
        )
        result.ratios[f"threads_per_s_{key}"] = round(per_s, 2)
        result.ratios[f"completed_fraction_{key}"] = ratio(m["completed_every_run"], threads)
        result.ratios[f"batch_over_one_at_a_time_{key}"] = ratio(
            m["wall_s"] / threads, m["sequential_s_per_thread"]
        )
        result.targets.append(
            Target(
                f"threads completed / started, {kind}",
                result.ratios[f"completed_fraction_{key}"],
                1.0,
                ">=",
            )
        )
    result.ratios["sqlite_over_memory_wall"] = ratio(
        measured["AsyncSqliteSaver"]["wall_s"], measured["InMemorySaver"]["wall_s"]
    )
    for kind in ("InMemorySaver", "AsyncSqliteSaver"):
        key = "memory" if kind == "InMemorySaver" else "sqlite"
        result.ratios[f"{key}_once_over_plain_threads_per_s"] = ratio(
            measured[kind]["wall_s"], measured[kind + ONCE]["wall_s"]
        )
    return result
