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
  (declarative leaf, ``CompiledSubAgent`` deep agents in between).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool

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
FRAMEWORKS = (THIS, LANGCHAIN, DEEPAGENTS)
DEPTHS = (0, 1, 3)
REQUEST = "Please get the work done."
ROUNDS = {"quick": 3, "full": 150}
WARMUP = {"quick": 1, "full": 5}
DEEPAGENTS_MISSING = (
    "deepagents is not installed (pip install 'assistant-graph[bench]'); its column is skipped."
)

Invoke = Callable[[], Any]


def _leaf_or_delegate(depth: int, level: int, make_call: Callable[[int], Any]) -> DelegateOnce:
    if level >= depth:
        return DelegateOnce()
    return DelegateOnce(calls=lambda messages: [make_call(level + 1)])


def build_this_library(depth: int, *, latency: float = 0.0) -> Runnable[Any, Any]:
    """The chain as one assistant graph (no checkpointer)."""

    def model(schema: Any) -> Any:
        level = int(schema.name.removeprefix("level"))
        policy = _leaf_or_delegate(depth, level, lambda nxt: sub_assistant_call(level_name(nxt)))
        return scripted(policy, latency=latency)

    return build_assistant_graph(level_name(0), chain_catalog(depth), model=model)


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


def build_langchain_tool(depth: int, *, latency: float = 0.0) -> Runnable[Any, Any]:
    """The chain as ``create_agent`` agents, each wrapped in a ``@tool`` for its caller."""
    agent: Runnable[Any, Any] = create_agent(
        scripted(DelegateOnce(), latency=latency), tools=[], system_prompt="You are the leaf."
    )
    for level in reversed(range(depth)):
        tool = agent_as_tool(agent, f"ask_{level_name(level + 1)}")
        policy = DelegateOnce(calls=lambda messages, name=tool.name: [langchain_tool_call(name)])
        agent = create_agent(
            scripted(policy, latency=latency), tools=[tool], system_prompt=f"Level {level}."
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


def _measure(frameworks: list[str], rounds: int, warmup: int) -> dict[str, dict[int, list[float]]]:
    """Seconds per run, by framework and depth, frameworks interleaved round by round."""
    runners: dict[tuple[str, int], Invoke] = {}
    for framework in frameworks:
        for depth in DEPTHS:
            graph = build_chain(framework, depth)
            runners[framework, depth] = lambda g=graph: g.invoke(
                {"messages": [HumanMessage(REQUEST)]}
            )
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


def run(mode: Mode) -> SectionResult:
    """Measure the three frameworks and compare them with this library."""
    frameworks = [THIS, LANGCHAIN] + ([DEEPAGENTS] if deepagents_available() else [])
    times = _measure(frameworks, ROUNDS[mode], WARMUP[mode])
    result = SectionResult(
        name="hop_overhead",
        title="1. Overhead per delegation hop (zero-latency scripted model)",
        params={"depths": list(DEPTHS), "rounds": ROUNDS[mode], "warmup_runs": WARMUP[mode]},
    )
    hops = {f: {d: _per_hop_ms(times[f], d) for d in DEPTHS if d} for f in frameworks}
    for framework in FRAMEWORKS:
        if framework not in frameworks:
            result.rows.append({"framework": framework, "skipped": DEEPAGENTS_MISSING})
            continue
        row: dict[str, Any] = {"framework": framework}
        for depth in DEPTHS:
            row[f"run_depth{depth}_ms"] = round(1000 * median(times[framework][depth]), 3)
        for depth in DEPTHS[1:]:
            row[f"per_hop_depth{depth}_ms"] = round(hops[framework][depth], 3)
            row[f"vs_this_depth{depth}"] = ratio(hops[framework][depth], hops[THIS][depth])
        result.rows.append(row)
    _add_ratios_and_targets(result, hops)
    return result


def _add_ratios_and_targets(result: SectionResult, hops: dict[str, dict[int, float]]) -> None:
    ours = hops[THIS]
    for depth in DEPTHS[1:]:
        result.ratios[f"langchain_tool_over_this_depth{depth}"] = ratio(
            hops[LANGCHAIN][depth], ours[depth]
        )
        result.ratios[f"deepagents_task_over_this_depth{depth}"] = ratio(
            hops.get(DEEPAGENTS, {}).get(depth), ours[depth]
        )
    for depth in DEPTHS[1:]:
        result.targets.append(
            Target(
                f"per hop, this library / LangChain @tool (depth {depth})",
                ratio(ours[depth], hops[LANGCHAIN][depth]),
                1.1,
                "<=",
            )
        )
        result.targets.append(
            Target(
                f"per hop, this library / deepagents task (depth {depth})",
                ratio(ours[depth], hops.get(DEEPAGENTS, {}).get(depth)),
                1.0,
                "<",
            )
        )
    if DEEPAGENTS not in hops:
        result.notes.append(DEEPAGENTS_MISSING)
