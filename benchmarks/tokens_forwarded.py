"""4. Tokens forwarded: what a sub-assistant receives, against forwarding the full history.

A 50-turn conversation: every turn the user asks a question, the ``proxy`` delegates it
to the ``researcher`` (a new sub-conversation each turn) and answers. This library
forwards what the call asks for: ``pass_num_previous_messages = 2`` and, as the chosen
context, the previous turn's research result (``pass_contexts``). The alternative is the
supervisor pattern's ``full_history``: the sub-agent gets the caller's whole conversation,
tool calls and tool results included.

Characters count message text plus tool-call arguments (JSON). Tokens are counted with
tiktoken when its encoding is available offline (it cannot be downloaded here), else
with langchain-core's ``count_tokens_approximately``; the JSON says which.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph import AssistantCatalog, build_assistant_graph
from assistant_graph._summary import tiktoken_encoding_is_cached
from benchmarks.harness import Mode, SectionResult, Target, loopback_only, median, ratio
from benchmarks.policies import scripted, sub_assistant_call

__all__ = ["run", "token_counter"]

TURNS = {"quick": 6, "full": 50}
TIKTOKEN_ENCODING = "o200k_base"
QUESTION = "Turn {turn}: what do we know about the moons of Mars, and how does it compare? " * 2
FINDINGS = (
    "Phobos orbits 6,000 km above the surface and will break up within 50 million years; "
    "Deimos is smaller and farther out. Both are likely captured asteroids or debris. "
) * 4
SUMMARY = (
    "In short: two small moons, Phobos doomed, Deimos drifting away. Ask for more detail. " * 3
)


@dataclass
class _Proxy:
    """Delegates every question, forwarding two messages and the previous result."""

    full_histories: list[list[BaseMessage]] = field(default_factory=list)

    def next_reply(self, messages: Sequence[BaseMessage], tools: Sequence[str]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content=SUMMARY)
        history = [m for m in messages if not isinstance(m, SystemMessage)]
        self.full_histories.append(history)
        previous = [m.tool_call_id for m in history if isinstance(m, ToolMessage)][-1:]
        call = sub_assistant_call(
            "researcher", pass_num_previous_messages=2, pass_contexts=previous
        )
        return AIMessage(content="", tool_calls=[call])


@dataclass
class _Researcher:
    """Answers with findings; records the input message it received."""

    inputs: list[HumanMessage] = field(default_factory=list)

    def next_reply(self, messages: Sequence[BaseMessage], tools: Sequence[str]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, HumanMessage):
            self.inputs.append(last)
        return AIMessage(content=FINDINGS)


def _catalog() -> AssistantCatalog:
    return AssistantCatalog.from_schemas(
        [
            {
                "name": "proxy",
                "description": "Talks with the user.",
                "instructions": "You are the user's proxy.",
                "sub_assistants": ["researcher"],
            },
            {
                "name": "researcher",
                "description": "Finds facts.",
                "instructions": "You find facts.",
                "callable": True,
            },
        ]
    )


def message_chars(message: BaseMessage) -> int:
    """Characters of a message as a model gets it: text and tool-call arguments."""
    calls = getattr(message, "tool_calls", None) or []
    return len(str(message.content)) + sum(len(json.dumps(call["args"])) for call in calls)


def token_counter() -> tuple[str, Callable[[Sequence[BaseMessage]], int]]:
    """The best token counter available offline: its name and a function of messages."""
    approximate = "langchain_core count_tokens_approximately", count_tokens_approximately
    if not tiktoken_encoding_is_cached(TIKTOKEN_ENCODING):  # never download it
        return approximate
    try:
        import tiktoken

        with loopback_only():
            encoding = tiktoken.get_encoding(TIKTOKEN_ENCODING)
    except Exception:
        return approximate

    def count(messages: Sequence[BaseMessage]) -> int:
        texts = [
            str(m.content) + json.dumps(getattr(m, "tool_calls", None) or []) for m in messages
        ]
        return sum(len(encoding.encode(text)) + 4 for text in texts)

    return f"tiktoken {TIKTOKEN_ENCODING}", count


def _stats(per_call: list[int]) -> dict[str, float]:
    return {
        "mean": round(sum(per_call) / len(per_call), 1),
        "median": median([float(value) for value in per_call]),
        "last_call": per_call[-1],
    }


def run(mode: Mode) -> SectionResult:
    """Run the conversation and compare what each pattern sends per call."""
    turns = TURNS[mode]
    proxy, researcher = _Proxy(), _Researcher()
    models: dict[str, Any] = {"proxy": scripted(proxy), "researcher": scripted(researcher)}  # type: ignore[arg-type]
    graph = build_assistant_graph(
        "proxy", _catalog(), model=lambda schema: models[schema.name], checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "tokens"}}
    for turn in range(1, turns + 1):
        graph.invoke({"messages": [HumanMessage(QUESTION.format(turn=turn))]}, config)
    counter_name, count_tokens = token_counter()
    forwarded_chars = [message_chars(m) for m in researcher.inputs]
    full_chars = [sum(map(message_chars, history)) for history in proxy.full_histories]
    forwarded_tokens = [count_tokens([m]) for m in researcher.inputs]
    full_tokens = [count_tokens(history) for history in proxy.full_histories]
    result = SectionResult(
        name="tokens_forwarded",
        title=f"4. What a sub-assistant receives per call, {turns}-turn conversation",
        params={
            "turns": turns,
            "pass_num_previous_messages": 2,
            "pass_contexts": 1,
            "token_counter": counter_name,
        },
    )
    patterns = {
        "this library (2 messages + 1 context)": (forwarded_chars, forwarded_tokens),
        "full history (supervisor full_history)": (full_chars, full_tokens),
    }
    for name, (chars, tokens) in patterns.items():
        char_stats, token_stats = _stats(chars), _stats(tokens)
        result.rows.append(
            {
                "pattern": name,
                "chars mean": char_stats["mean"],
                "chars last call": char_stats["last_call"],
                "tokens mean": token_stats["mean"],
                "tokens last call": token_stats["last_call"],
            }
        )
    result.ratios = {
        "full_over_forwarded_chars_mean": ratio(sum(full_chars), sum(forwarded_chars)),
        "full_over_forwarded_chars_last_call": ratio(full_chars[-1], forwarded_chars[-1]),
        "full_over_forwarded_tokens_mean": ratio(sum(full_tokens), sum(forwarded_tokens)),
    }
    result.targets.append(
        Target(
            "characters per call, full history / this library (mean over calls)",
            result.ratios["full_over_forwarded_chars_mean"],
            10.0,
            ">=",
        )
    )
    return result
