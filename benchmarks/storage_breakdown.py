"""Where the bytes of a SQLite thread go, by cause.

Reads a ``SqliteSaver`` database and attributes every stored byte to one cause:

- the ``messages`` list, stored whole in every checkpoint row (``SqliteSaver`` writes all
  channel values into every row; LangGraph's ``add_messages`` channel has one full value
  per version in every saver);
- the sub-conversations inside tool-message artifacts (``sub_assistant_state_data``),
  which ride along wherever a message list is stored;
- ``sub_assistant_states``, stored again in every row;
- the ``Send`` payloads of tool calls (``ToolCallWithContext`` with the state the call
  needs: ``payload_state`` keeps the forwarded messages and the resumed sub-conversation),
  stored as pending tasks in the checkpoint and again in the ``writes`` table;
- the sub-assistant runs' own checkpoints and writes (their namespaces, one per task).

A value's share is measured by serializing it with the same serializer; the small rest
(row framing, metadata, small channels) is reported as its own line.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Send

from assistant_graph._message_refs import is_reference
from benchmarks.storage_variants import slim_artifact

__all__ = ["CAUSES", "storage_breakdown"]

MESSAGES = "messages: whole list in every checkpoint row"
ARTIFACTS = "sub-conversation copies in tool-message artifacts (rows and writes)"
SUB_STATES = "sub_assistant_states: in every checkpoint row"
SEND_STATE = "Send payloads: state copy per tool call (pending tasks + writes)"
SEND_SUB_STATES = "Send payloads: sub_assistant_states inside the state copy"
SUBGRAPHS = "sub-assistant runs' own checkpoints and writes (namespaces per task)"
WRITES = "writes: new messages and other channel updates"
REFERENCES = "references to stored messages (store_messages_once), rows and writes"
STORED = "assistant_graph_messages: each message once, and chunks of digests"
OTHER = "other channels, metadata, row framing"
CAUSES = (
    MESSAGES,
    ARTIFACTS,
    SUB_STATES,
    SEND_STATE,
    SEND_SUB_STATES,
    SUBGRAPHS,
    WRITES,
    REFERENCES,
    STORED,
    OTHER,
)
"""The causes, in the order they are reported."""

_serde = JsonPlusSerializer()


def _size(value: Any) -> int:
    return len(_serde.dumps_typed(value)[1])


def _messages_split(messages: list[Any]) -> tuple[int, int]:
    """(bytes of the messages without artifact sub-conversations, bytes of those)."""
    whole = _size(messages)
    slim = _size([slim_artifact(message) for message in messages])
    return slim, whole - slim


def _send_split(send: Send) -> Counter[str]:
    """A ``Send`` payload's bytes: its sub_assistant_states, artifacts, the rest."""
    whole = _size(send)
    arg = send.arg if isinstance(send.arg, Mapping) else {}
    state = dict(arg.get("state") or {})
    sub_states = _size(state.pop("sub_assistant_states", {}))
    messages = list(state.get("messages") or [])
    _, artifacts = _messages_split(messages)
    return Counter(
        {
            SEND_SUB_STATES: sub_states,
            ARTIFACTS: artifacts,
            SEND_STATE: whole - sub_states - artifacts,
        }
    )


def _checkpoint_row(blob_type: str, blob: bytes) -> Counter[str]:
    counts: Counter[str] = Counter()
    values = _serde.loads_typed((blob_type, blob))["channel_values"]
    for channel, value in values.items():
        if channel == "messages" and isinstance(value, list):
            slim, artifacts = _messages_split(value)
            counts[MESSAGES] += slim
            counts[ARTIFACTS] += artifacts
        elif channel == "messages" and is_reference(value):
            counts[REFERENCES] += _size(value)
        elif channel == "sub_assistant_states":
            counts[SUB_STATES] += _size(value)
        elif channel == "__pregel_tasks":
            for send in value:
                counts.update(_send_split(send))
    counts[OTHER] += len(blob) - sum(counts.values())
    return counts


def _write_row(channel: str, blob_type: str, blob: bytes) -> Counter[str]:
    value = _serde.loads_typed((blob_type, blob))
    if channel == "__pregel_tasks" and isinstance(value, Send):
        counts = _send_split(value)
    elif channel == "messages" and isinstance(value, list):
        slim, artifacts = _messages_split(value)
        counts = Counter({WRITES: slim, ARTIFACTS: artifacts})
    elif channel == "messages" and is_reference(value):
        counts = Counter({REFERENCES: len(blob)})
    else:
        counts = Counter({WRITES: len(blob)})
    counts[OTHER] += len(blob) - sum(counts.values())
    return counts


def storage_breakdown(connection: sqlite3.Connection) -> dict[str, int]:
    """Stored bytes of every thread in the database, by cause (see :data:`CAUSES`)."""
    counts: Counter[str] = Counter()
    rows = connection.execute(
        "SELECT checkpoint_ns, type, checkpoint, length(metadata) FROM checkpoints"
    )
    for namespace, blob_type, blob, metadata in rows:
        if namespace:
            counts[SUBGRAPHS] += len(blob) + metadata
            continue
        counts.update(_checkpoint_row(blob_type, blob))
        counts[OTHER] += metadata
    for namespace, channel, blob_type, blob in connection.execute(
        "SELECT checkpoint_ns, channel, type, value FROM writes"
    ):
        if namespace:
            counts[SUBGRAPHS] += len(blob)
        else:
            counts.update(_write_row(channel, blob_type, blob))
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
    if "assistant_graph_messages" in tables:
        query = "SELECT coalesce(sum(length(hash) + length(data)), 0) FROM assistant_graph_messages"
        counts[STORED] += connection.execute(query).fetchone()[0]
    return {cause: counts[cause] for cause in CAUSES}
