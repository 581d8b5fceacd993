"""1. Overhead per delegation hop, against the patterns users already know.

A chain ``level0 -> level1 -> ... -> level<d>``: every level but the last delegates once
and answers when the result is in; the last answers at once. The model is scripted with
zero latency, so what is timed is everything a framework adds around the model calls.
Each framework runs the same chain at depth 0 (no delegation), 1 and 3; the time per hop
is the paired difference ``(T(d) - T(0)) / d``, median over many rounds, in which the
frameworks take turns so that drift of the machine hits them alike.

Frameworks:

- ``assistant_graph``: this library, ``sub_assistant__<name>`` tools, recursive subgraphs;
- ``langchain_tool``: the pattern LangChain documents: a ``create_agent`` sub-agent
  wrapped in a ``@tool`` that invokes it and returns its last message, called from
  another ``create_agent``;
- ``deepagents_task``: ``create_deep_agent`` with sub-agents behind its ``task`` tool
  (declarative leaf, ``CompiledSubAgent`` deep agents in between). This measures
  deepagents' default middleware stack (todo list, file system, summarization, prompt
  caching, patching of dangling tool calls) around every agent, not its ``task`` tool
  alone.
- ``assistant_graph+saver`` and ``langchain_tool+saver``: the first two with a
  checkpointer (``InMemorySaver``, a new thread per run): like for like, as both
  libraries are used when threads are kept. This library's own per-run work (the
  ``begin`` step, the thread guard) shows in the fixed cost at depth 0, reported as
  a ratio too.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph import build_assistant_graph
from benchmarks.harness import Mode, SectionResult, Target, median, ratio, time_call
from benchmarks.policies import (
    DelegateOnce,
    chain_catalog,
    deepagents_task_call,
    langchain_tool_call,
    level_name,
    scripted,
    sub_assistant_call,
)

__all__ = ["FRAMEWORKS", "agent_as_tool", "build_chain", "deepagents_available", "run"]

THIS = "assistant_graph"
LANGCHAIN = "langchain_tool"
DEEPAGENTS = "deepagents_task"
THIS_SAVED = "assistant_graph+saver"
LANGCHAIN_SAVED = "langchain_tool+saver"
FRAMEWORKS = (THIS, LANGCHAIN, DEEPAGENTS, THIS_SAVED, LANGCHAIN_SAVED)
PAIRS = ((THIS, LANGCHAIN), (THIS_SAVED, LANGCHAIN_SAVED))
"""This library and its like-for-like LangChain pattern: without, then with a saver."""
DEPTHS = (0, 1, 3)
REQUEST = "Please get the work done."
ROUNDS = {"quick": 3, "full": 150}
WARMUP = {"quick": 1, "full": 5}
DEEPAGENTS_MISSING = (
    "deepagents is not installed (pip install 'assistant-graph[bench]'); its column is skipped."
)

DEEPAGENTS_STACK = (
    "deepagents_task measures deepagents' default middleware stack around every agent "
    "(todo list, file system, summarization, prompt caching, dangling tool calls), not its "
    "task tool alone."
)

Invoke = Callable[[], Any]


def _leaf_or_delegate(depth: int, level: int, make_call: Callable[[int], Any]) -> DelegateOnce:
    if level >= depth:
        return DelegateOnce()
    return DelegateOnce(calls=lambda messages: [make_call(level + 1)])


def build_this_library(
    depth: int, *, latency: float = 0.0, checkpointer: Any = None
) -> Runnable[Any, Any]:
    """The chain as one assistant graph (no checkpointer unless given)."""

    def model(schema: Any) -> Any:
        level = int(schema.name.removeprefix("level"))
        policy = _leaf_or_delegate(depth, level, lambda nxt: sub_assistant_call(level_name(nxt)))
        return scripted(policy, latency=latency)

    return build_assistant_graph(
        level_name(0), chain_catalog(depth), model=model, checkpointer=checkpointer
    )


def agent_as_tool(agent: Runnable[Any, Any], name: str) -> BaseTool:
    """LangChain's documented sub-agent-as-a-tool wrapper (sync and async)."""

    def ask(request: str) -> str:
        result = agent.invoke({"messages": [{"role": "user", "content": request}]})
        return str(result["messages"][-1].content)

    async def aask(request: str) -> str:
        result = await agent.ainvoke({"messages": [{"role": "user", "content": request}]})
        return str(result["messages"][-1].content)

    return StructuredTool.from_function(
        func=ask, coroutine=aask, name=name, description=f"Ask {name} to do its part."
    )


def build_langchain_tool(
    depth: int, *, latency: float = 0.0, checkpointer: Any = None
) -> Runnable[Any, Any]:
    """The chain as ``create_agent`` agents, each wrapped in a ``@tool`` for its caller
    (the root with ``checkpointer`` if given; the sub-agents run under it)."""
    agent: Runnable[Any, Any] = create_agent(
        scripted(DelegateOnce(), latency=latency), tools=[], system_prompt="You are the leaf."
    )
    for level in reversed(range(depth)):
        tool = agent_as_tool(agent, f"ask_{level_name(level + 1)}")
        policy = DelegateOnce(calls=lambda messages, name=tool.name: [langchain_tool_call(name)])
        agent = create_agent(
            scripted(policy, latency=latency),
            tools=[tool],
            system_prompt=f"Level {level}.",
            checkpointer=checkpointer if level == 0 else None,
        )
    if depth == 0 and checkpointer is not None:
        return create_agent(
            scripted(DelegateOnce(), latency=latency),
            tools=[],
            system_prompt="You are the leaf.",
            checkpointer=checkpointer,
        )
    return agent


def build_deepagents_task(depth: int, *, latency: float = 0.0) -> Runnable[Any, Any]:
    """The chain as deep agents calling each other through ``task``."""
    from deepagents import CompiledSubAgent, create_deep_agent

    spec: Any = None
    for level in reversed(range(1, depth + 1)):
        policy = _leaf_or_delegate(depth, level, lambda nxt: deepagents_task_call(level_name(nxt)))
        model = scripted(policy, latency=latency)
        description = f"Handles level {level} of the work."
        if spec is None:
            spec = {
                "name": level_name(level),
                "description": description,
                "system_prompt": f"Level {level}.",
                "model": model,
                "tools": [],
            }
        else:
            runnable = create_deep_agent(
                model=model, tools=[], system_prompt=f"Level {level}.", subagents=[spec]
            )
            spec = CompiledSubAgent(
                name=level_name(level), description=description, runnable=runnable
            )
    root_policy = _leaf_or_delegate(depth, 0, lambda nxt: deepagents_task_call(level_name(nxt)))
    return create_deep_agent(
        model=scripted(root_policy, latency=latency),
        tools=[],
        system_prompt="Level 0.",
        subagents=[spec] if spec is not None else None,
    )


BUILDERS: Mapping[str, Callable[..., Runnable[Any, Any]]] = {
    THIS: build_this_library,
    LANGCHAIN: build_langchain_tool,
    DEEPAGENTS: build_deepagents_task,
    THIS_SAVED: partial(build_this_library, checkpointer=InMemorySaver()),
    LANGCHAIN_SAVED: partial(build_langchain_tool, checkpointer=InMemorySaver()),
}


def build_chain(framework: str, depth: int, *, latency: float = 0.0) -> Runnable[Any, Any]:
    """The delegation chain of ``depth`` hops in ``framework``."""
    return BUILDERS[framework](depth, latency=latency)


def deepagents_available() -> bool:
    """Whether deepagents can be imported."""
    try:
        import deepagents  # noqa: F401
    except ImportError:
        return False
    return True


def _runner(framework: str, depth: int) -> Invoke:
    """One run of the chain; with a saver, each run on a thread of its own."""
    graph = build_chain(framework, depth)
    request = {"messages": [HumanMessage(REQUEST)]}
    if framework not in (THIS_SAVED, LANGCHAIN_SAVED):
        return lambda: graph.invoke(request)
    return lambda: graph.invoke(request, {"configurable": {"thread_id": uuid.uuid4().hex}})


def _measure(frameworks: list[str], rounds: int, warmup: int) -> dict[str, dict[int, list[float]]]:
    """Seconds per run, by framework and depth, frameworks interleaved round by round."""
    runners = {(f, depth): _runner(f, depth) for f in frameworks for depth in DEPTHS}
    for run_once in runners.values():
        for _ in range(warmup):
            run_once()
    times: dict[str, dict[int, list[float]]] = {f: {d: [] for d in DEPTHS} for f in frameworks}
    for _ in range(rounds):
        gc.collect()
        for (framework, depth), run_once in runners.items():
            times[framework][depth].append(time_call(run_once))
    return times


def _per_hop_ms(times: dict[int, list[float]], depth: int) -> float:
    """Median over rounds of the paired difference (T(depth) - T(0)) / depth, in ms."""
    pairs = zip(times[depth], times[0], strict=True)
    return 1000 * median([(deep - flat) / depth for deep, flat in pairs])


def _ours(framework: str) -> str:
    """The column of this library that ``framework`` is compared with."""
    return THIS_SAVED if framework in (THIS_SAVED, LANGCHAIN_SAVED) else THIS


def run(mode: Mode) -> SectionResult:
    """Measure the frameworks and compare them with this library."""
    frameworks = [f for f in FRAMEWORKS if f != DEEPAGENTS or deepagents_available()]
    times = _measure(frameworks, ROUNDS[mode], WARMUP[mode])
    result = SectionResult(
        name="hop_overhead",
        title="1. Overhead per delegation hop (zero-latency scripted model)",
        params={"depths": list(DEPTHS), "rounds": ROUNDS[mode], "warmup_runs": WARMUP[mode]},
    )
    hops = {f: {d: _per_hop_ms(times[f], d) for d in DEPTHS if d} for f in frameworks}
    runs = {f: 1000 * median(times[f][0]) for f in frameworks}
    for framework in FRAMEWORKS:
        if framework not in frameworks:
            result.rows.append({"framework": framework, "skipped": DEEPAGENTS_MISSING})
            continue
        ours = _ours(framework)
        row: dict[str, Any] = {"framework": framework}
        for depth in DEPTHS:
            row[f"run_depth{depth}_ms"] = round(1000 * median(times[framework][depth]), 3)
        row["run_depth0_vs_this"] = ratio(runs[framework], runs[ours])
        for depth in DEPTHS[1:]:
            row[f"per_hop_depth{depth}_ms"] = round(hops[framework][depth], 3)
            row[f"vs_this_depth{depth}"] = ratio(hops[framework][depth], hops[ours][depth])
        result.rows.append(row)
    _add_ratios_and_targets(result, hops, runs)
    result.notes.append(DEEPAGENTS_STACK)
    return result


def _add_ratios_and_targets(
    result: SectionResult, hops: dict[str, dict[int, float]], runs: dict[str, float]
) -> None:
    for ours, theirs in PAIRS:
        result.ratios[f"{ours}_over_{theirs}_run_depth0"] = ratio(runs[ours], runs[theirs])
        for depth in DEPTHS[1:]:
            result.ratios[f"{ours}_over_{theirs}_per_hop_depth{depth}"] = ratio(
                hops[ours][depth], hops[theirs][depth]
            )
            result.targets.append(
                Target(
                    f"per hop, {ours} / {theirs} (depth {depth})",
                    ratio(hops[ours][depth], hops[theirs][depth]),
                    1.1,
                    "<=",
                )
            )
    for depth in DEPTHS[1:]:
        result.ratios[f"deepagents_task_over_this_depth{depth}"] = ratio(
            hops.get(DEEPAGENTS, {}).get(depth), hops[THIS][depth]
        )
        result.targets.append(
            Target(
                f"per hop, this library / deepagents task (default middleware, depth {depth})",
                ratio(hops[THIS][depth], hops.get(DEEPAGENTS, {}).get(depth)),
                1.0,
                "<",
            )
        )
    if DEEPAGENTS not in hops:
        result.notes.append(DEEPAGENTS_MISSING)
