"""Threads as the page shows them: the list, one thread's state, a sub-conversation.

Everything is read from the checkpointer the CLI uses, so threads started with
``assistant-graph run`` or ``chat`` are listed and can be continued here, and the other
way round. A thread's root assistant is the first name of its ``assistant_path``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Interrupt, StateSnapshot

from assistant_graph._state import coerce_messages, message_text

__all__ = [
    "THREAD_LIST_LIMIT",
    "ThreadSummary",
    "find_conversation",
    "last_message_preview",
    "list_thread_ids",
    "message_view",
    "pending_view",
    "root_assistant",
    "summaries",
    "thread_config",
    "thread_status",
]

THREAD_LIST_LIMIT = 100
"""How many threads the list shows at most (the newest)."""
PREVIEW_CHARS = 160
"""How much of a thread's last message the list shows."""


@dataclass(frozen=True)
class ThreadSummary:
    """One line of the thread list."""

    thread_id: str
    """The thread id."""
    assistant: str
    """The root assistant."""
    status: str
    """``running``, ``waiting`` (for input), ``failed``, ``incomplete``, ``done``, or
    ``unknown`` (its assistant is not in this folder)."""
    last_message: str
    """The start of the last message with text."""
    updated: str
    """When the thread last changed (ISO 8601)."""

    def to_dict(self) -> dict[str, Any]:
        """As JSON data."""
        return asdict(self)


def thread_config(thread_id: str) -> RunnableConfig:
    """The run config of ``thread_id``."""
    return {"configurable": {"thread_id": thread_id}}


async def list_thread_ids(
    saver: BaseCheckpointSaver[Any], limit: int = THREAD_LIST_LIMIT
) -> list[tuple[str, str, str]]:
    """The newest threads, newest first: ``(thread id, root assistant, updated)``.

    Checkpoints come newest first from every saver; the first root checkpoint seen of a
    thread is its latest.
    """
    seen: dict[str, tuple[str, str, str]] = {}
    async for item in saver.alist(None):
        configurable = item.config["configurable"]
        thread_id = str(configurable["thread_id"])
        if configurable.get("checkpoint_ns") or thread_id in seen:
            continue
        values = item.checkpoint.get("channel_values") or {}
        seen[thread_id] = (thread_id, root_assistant(values), str(item.checkpoint.get("ts", "")))
        if len(seen) >= limit:
            break
    return sorted(seen.values(), key=lambda row: row[2], reverse=True)


def root_assistant(values: Mapping[str, Any]) -> str:
    """The root assistant of a thread's state ('' if it never ran)."""
    path = values.get("assistant_path") or []
    return str(path[0]) if path else ""


def thread_status(snapshot: StateSnapshot, running: bool) -> str:
    """What a thread is doing: running, waiting, failed, incomplete or done."""
    if running:
        return "running"
    if snapshot.interrupts:
        return "waiting"
    if snapshot.next:
        return "failed"
    if (snapshot.values or {}).get("incomplete"):
        return "incomplete"
    return "done"


def last_message_preview(values: Mapping[str, Any]) -> str:
    """The start of the last user or assistant message with text, on one line."""
    for message in reversed(coerce_messages(values.get("messages") or [])):
        if isinstance(message, HumanMessage | AIMessage):
            text = " ".join(message_text(message).split())
            if text:
                return text[:PREVIEW_CHARS]
    return ""


def pending_view(interrupts: Sequence[Interrupt]) -> list[dict[str, Any]]:
    """The input requests a thread waits for, as the page shows them."""
    views = []
    for item in interrupts:
        value: Mapping[str, Any] = (
            item.value if isinstance(item.value, Mapping) else {"question": str(item.value)}
        )
        views.append(
            {
                "id": item.id,
                "kind": str(value.get("kind") or "question"),
                "question": str(value.get("question", "")),
                "path": [str(part) for part in value.get("path") or []],
                "tool_call_id": value.get("tool_call_id"),
                "parent_tool_call_id": value.get("parent_tool_call_id"),
                "tool": value.get("tool"),
                "args": value.get("args"),
            }
        )
    return views


def find_conversation(values: Mapping[str, Any], uid: str) -> Mapping[str, Any] | None:
    """The sub-conversation ``uid`` anywhere in the tree of a thread's state, or None."""
    states: Mapping[str, Any] = values.get("sub_assistant_states") or {}
    if uid in states:
        found: Mapping[str, Any] = states[uid]
        return found
    for data in states.values():
        nested = find_conversation(data, uid)
        if nested is not None:
            return nested
    return None


def message_view(message: BaseMessage) -> dict[str, Any]:
    """A message as the page shows it in a transcript."""
    view: dict[str, Any] = {"role": _role(message), "text": message_text(message)}
    if isinstance(message, AIMessage) and message.tool_calls:
        view["tool_calls"] = [
            {"id": call["id"], "name": call["name"], "args": call["args"]}
            for call in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        view.update(tool_call_id=message.tool_call_id, name=message.name, status=message.status)
    return view


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant"}.get(message.type, message.type)


async def summaries(
    rows: Sequence[tuple[str, str, str]],
    snapshot_of: Callable[[str, str], Awaitable[StateSnapshot | None]],
    running: Callable[[str], bool],
) -> list[ThreadSummary]:
    """The list lines of ``rows`` (from :func:`list_thread_ids`), each thread's state read
    with ``snapshot_of(thread_id, assistant)`` (None: its assistant is unknown here)."""
    lines = []
    for thread_id, assistant, updated in rows:
        snapshot = await snapshot_of(thread_id, assistant) if assistant else None
        if snapshot is None:
            lines.append(ThreadSummary(thread_id, assistant, "unknown", "", updated))
            continue
        status = thread_status(snapshot, running(thread_id))
        preview = last_message_preview(snapshot.values or {})
        lines.append(ThreadSummary(thread_id, assistant, status, preview, updated))
    return lines
