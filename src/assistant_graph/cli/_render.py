"""Renderings of the event stream: a live tree on stderr, or JSON Lines on stdout.

Both read the same :mod:`assistant_graph.events` stream. The tree shows which assistant
is working, its tool calls, the sub-assistants it calls and what they answer; on a
terminal it is a ``rich`` live tree (one branch per sub-assistant call, so parallel calls
stay apart), elsewhere plain lines indented by the depth of the assistant path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any, Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text
from rich.tree import Tree

from assistant_graph._names import assistant_name_from_tool_name, is_sub_assistant_tool_name
from assistant_graph._usage import UsageSummary
from assistant_graph.cli._failures import redact_secrets
from assistant_graph.events import (
    AgentMessageEvent,
    AssistantEvent,
    ErrorEvent,
    InputRequestEvent,
    RetryEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)

__all__ = [
    "EventRenderer",
    "JsonLinesRenderer",
    "Line",
    "NullRenderer",
    "PlainTreeRenderer",
    "RichTreeRenderer",
    "describe_event",
    "format_cost",
    "format_usage",
    "short",
    "tree_renderer",
]

INDENT = "  "
"""One level of the plain tree."""
SHORT_TEXT = 160
"""Texts in the tree are cut to this many characters."""
ELLIPSIS = "…"

CALLS = "→ {assistant}: {message}"
RESUMES = " (resuming {uid})"
PASSES_MESSAGES = " [+{count} previous message{plural}]"
PASSES_CONTEXTS = " [+contexts {ids}]"
TOOL_CALL = "→ {tool}({args})"
TOOL_RESULT = "← {tool}: {content}"
TOOL_FAILED = "✗ {tool}: {content}"
SUB_FAILED = "✗ {assistant} could not run: {content}"
DONE = "✓ done{incomplete} ({tokens} tokens{cost}, uid {uid})"
DONE_INCOMPLETE = ", incomplete"
SAYS = "says: {content}"
ASKS = "? asks: {question}"
WANTS_APPROVAL = "? wants approval: {question}"
FAILED = "✗ failed: {message}"
RETRYING = (
    "↻ model call failed (attempt {attempt} of {max_attempts}), retrying in {wait:.1f}s: {error}"
)
USAGE_HEADER = ("tokens", "input", "output", "total", "cost")
UNKNOWN_COST = "cost unknown"
"""How a cost is shown when some model call in it has no known price."""
USAGE_TOTAL = "total"

_STYLES = {
    "call": "cyan",
    "result": "green",
    "error": "bold red",
    "says": "white",
    "ask": "bold yellow",
    "done": "green",
    "retry": "yellow",
}


@dataclass(frozen=True)
class Line:
    """One line of the activity tree."""

    depth: int
    """Levels below the root assistant (0 for the root)."""
    actor: str
    """The assistant the line is about."""
    text: str
    """What happened."""
    kind: str
    """``call``, ``result``, ``error``, ``says``, ``ask``, ``done`` or ``retry`` (a colour)."""


class EventRenderer(Protocol):
    """Shows events as they come; used as a context manager around one run."""

    def __enter__(self) -> EventRenderer: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def handle(self, event: AssistantEvent) -> None:
        """Show one event."""


def describe_event(event: AssistantEvent, calls: Mapping[str, ToolCallEvent]) -> Line | None:
    """The tree line of ``event``, or None if the tree does not show it.

    Args:
        event: The event.
        calls: Tool-call events seen so far by id, to show how a sub-assistant was called.
    """
    depth, actor = len(event.path) - 1, event.path[-1]
    if isinstance(event, SubAssistantStartEvent):
        caller = event.path[-2] if len(event.path) > 1 else actor
        text = _call_text(event, calls.get(event.parent_tool_call_id or ""))
        return Line(depth - 1, caller, text, "call")
    if isinstance(event, SubAssistantEndEvent):
        return _done_line(event, depth, actor)
    if isinstance(event, ToolCallEvent):
        if is_sub_assistant_tool_name(event.name):
            return None
        return Line(depth, actor, TOOL_CALL.format(tool=event.name, args=_args(event.args)), "call")
    if isinstance(event, ToolResultEvent):
        return _result_line(event, depth, actor)
    if isinstance(event, AgentMessageEvent):
        return Line(depth, actor, SAYS.format(content=short(event.content)), "says")
    if isinstance(event, InputRequestEvent):
        template = WANTS_APPROVAL if event.kind == "approval" else ASKS
        return Line(depth, actor, template.format(question=short(event.question)), "ask")
    if isinstance(event, ErrorEvent):
        return Line(depth, actor, FAILED.format(message=short(event.message)), "error")
    if isinstance(event, RetryEvent):
        return _retry_line(event, depth, actor)
    return None


def _retry_line(event: RetryEvent, depth: int, actor: str) -> Line:
    text = RETRYING.format(
        attempt=event.attempt,
        max_attempts=event.max_attempts,
        wait=event.wait_seconds,
        error=short(event.error, SHORT_TEXT // 2),
    )
    return Line(depth, actor, text, "retry")


def _call_text(event: SubAssistantStartEvent, call: ToolCallEvent | None) -> str:
    text = CALLS.format(assistant=event.assistant, message=short(event.message))
    args = call.args if call else {}
    if uid := args.get("resume_conversation_uid"):
        text += RESUMES.format(uid=uid)
    if count := args.get("pass_num_previous_messages"):
        text += PASSES_MESSAGES.format(count=count, plural="" if count == 1 else "s")
    if contexts := args.get("pass_contexts"):
        text += PASSES_CONTEXTS.format(ids=", ".join(map(str, contexts)))
    return text


def _done_line(event: SubAssistantEndEvent, depth: int, actor: str) -> Line | None:
    if event.status != "success":
        return None  # the tool result that follows says why
    total = event.usage["total"] if event.usage else None
    tokens = total["total_tokens"] if total else 0
    incomplete = DONE_INCOMPLETE if event.returning_incomplete else ""
    cost = f", {format_cost(total.get('cost_usd'))}" if total and tokens else ""
    text = DONE.format(incomplete=incomplete, tokens=tokens, cost=cost, uid=event.subgraph_uid)
    return Line(depth, actor, text, "done")


def _result_line(event: ToolResultEvent, depth: int, actor: str) -> Line | None:
    content = short(event.content)
    if is_sub_assistant_tool_name(event.name):
        if event.status == "success":
            return None  # the sub-assistant's own lines and its "done" line show it
        assistant = assistant_name_from_tool_name(event.name)
        return Line(depth, actor, SUB_FAILED.format(assistant=assistant, content=content), "error")
    if event.status == "success":
        return Line(depth, actor, TOOL_RESULT.format(tool=event.name, content=content), "result")
    return Line(depth, actor, TOOL_FAILED.format(tool=event.name, content=content), "error")


def short(text: str, limit: int = SHORT_TEXT) -> str:
    """``text`` on one line, cut to ``limit`` characters, secrets masked."""
    flat = redact_secrets(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + ELLIPSIS


def _args(args: Mapping[str, Any]) -> str:
    parts = (f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in args.items())
    return short(", ".join(parts), SHORT_TEXT // 2)


@dataclass
class _Calls:
    """Tool-call events by id, so sub-assistant lines can show their call's arguments."""

    by_id: dict[str, ToolCallEvent] = field(default_factory=dict)

    def note(self, event: AssistantEvent) -> None:
        if isinstance(event, ToolCallEvent):
            self.by_id[event.id] = event


class PlainTreeRenderer:
    """The tree as plain lines, indented two spaces per level, written as events come."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._calls = _Calls()

    def __enter__(self) -> PlainTreeRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.flush()

    def handle(self, event: AssistantEvent) -> None:
        """Write the line of ``event``, if it has one."""
        self._calls.note(event)
        line = describe_event(event, self._calls.by_id)
        if line is not None:
            self._stream.write(f"{INDENT * line.depth}{line.actor} {line.text}\n")
            self._stream.flush()


class RichTreeRenderer:
    """The tree as a ``rich`` live display: a branch per sub-assistant call, with spinners."""

    def __init__(self, console: Console, root: str) -> None:
        self._console = console
        self._tree = Tree(_working(root))
        self._root_name = root
        self._live = Live(self._tree, console=console, refresh_per_second=10)
        self._calls = _Calls()
        self._branches: dict[str, Tree] = {}
        self._branch_names: dict[str, str] = {}
        self._latest: dict[tuple[str, ...], Tree] = {(root,): self._tree}

    def __enter__(self) -> RichTreeRenderer:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._tree.label = Text(self._root_name, style="bold")
        for call_id, branch in self._branches.items():
            if isinstance(branch.label, Spinner):
                branch.label = Text(self._branch_names[call_id], style="bold")
        self._live.stop()

    def handle(self, event: AssistantEvent) -> None:
        """Add the line of ``event`` under the branch of the assistant call it belongs to."""
        self._calls.note(event)
        line = describe_event(event, self._calls.by_id)
        if isinstance(event, SubAssistantStartEvent):
            self._open_branch(event, line)
        elif isinstance(event, SubAssistantEndEvent) and line is not None:
            self._close_branch(event, line)
        elif line is not None:
            self._node(event).add(Text(line.text, style=_STYLES[line.kind]))
        self._live.refresh()

    def _open_branch(self, event: SubAssistantStartEvent, line: Line | None) -> None:
        call_id = event.parent_tool_call_id or ""
        label = line.text if line else event.assistant
        caller = self._latest.get(event.path[:-1], self._tree)
        branch = caller.add(_working(label))
        self._branches[call_id] = branch
        self._branch_names[call_id] = label
        self._latest[event.path] = branch

    def _close_branch(self, event: SubAssistantEndEvent, line: Line) -> None:
        call_id = event.parent_tool_call_id or ""
        branch = self._branches.get(call_id)
        if branch is None:
            return
        branch.label = Text(self._branch_names[call_id], style="bold")
        branch.add(Text(line.text, style=_STYLES[line.kind]))

    def _node(self, event: AssistantEvent) -> Tree:
        if event.parent_tool_call_id in self._branches:
            return self._branches[event.parent_tool_call_id]
        return self._latest.get(event.path, self._tree)


def _working(label: str) -> Spinner:
    return Spinner("dots", text=Text(label, style="bold"))


class NullRenderer:
    """Shows nothing (``--quiet``, or ``--json`` where stdout carries the events)."""

    def __enter__(self) -> NullRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def handle(self, event: AssistantEvent) -> None:
        """Ignore ``event``."""


class JsonLinesRenderer:
    """Every event as one line of JSON (``event.to_dict()``) on ``stream``.

    ``token`` events are left out unless ``tokens`` is set: there is one per streamed
    piece of text, and ``agent_message`` carries the whole text anyway.
    """

    def __init__(self, stream: TextIO, *, tokens: bool = False) -> None:
        self._stream = stream
        self._tokens = tokens

    def __enter__(self) -> JsonLinesRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.flush()

    def handle(self, event: AssistantEvent) -> None:
        """Write ``event`` as one JSON line, secrets masked, and flush at once."""
        if isinstance(event, TokenEvent) and not self._tokens:
            return
        line = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
        self._stream.write(redact_secrets(line) + "\n")
        self._stream.flush()


def tree_renderer(console: Console, root: str) -> EventRenderer:
    """The live tree on a terminal, plain indented lines otherwise."""
    if console.is_terminal:
        return RichTreeRenderer(console, root)
    return PlainTreeRenderer(console.file)


def format_cost(cost: float | None) -> str:
    """A cost in US dollars as the CLI shows it ("$0.0012"; "cost unknown" for None)."""
    if cost is None:
        return UNKNOWN_COST
    return f"${cost:.4f}" if cost >= 0.01 or cost == 0 else f"${cost:.6f}"


def format_usage(usage: UsageSummary) -> list[str]:
    """The tokens and cost per assistant, and the total, as lines of a small table."""
    entries = [*usage["by_assistant"].items(), (USAGE_TOTAL, usage["total"])]
    rows = [USAGE_HEADER] + [
        (
            name,
            str(item["input_tokens"]),
            str(item["output_tokens"]),
            str(item["total_tokens"]),
            format_cost(item.get("cost_usd", 0.0)),
        )
        for name, item in entries
    ]
    width = max(len(row[0]) for row in rows)
    return [f"{r[0]:<{width}}  {r[1]:>7}  {r[2]:>7}  {r[3]:>7}  {r[4]:>12}" for r in rows]
    total = usage["total"]
    rows.append((USAGE_TOTAL, total["input_tokens"], total["output_tokens"], total["total_tokens"]))
    width = max(len(str(row[0])) for row in [USAGE_HEADER, *rows])
    return [
        f"{row[0]!s:<{width}}  {row[1]!s:>7}  {row[2]!s:>7}  {row[3]!s:>7}"
        for row in [USAGE_HEADER, *rows]
    ]
