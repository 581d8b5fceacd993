"""Prototypes of the storage fixes measured by :mod:`benchmarks.long_threads`.

Nothing under ``src/`` is changed: each fix is applied for the duration of one
measurement by patching the library (or by choosing another saver), so the fixes can be
measured alone and in combination, side by side with the unchanged library.

=====  ==================================================================================
(a)    ``durability="exit"``: checkpoints only when a run ends
(b)    a SQLite saver that stores channel values per (channel, version), as
       ``PostgresSaver`` and ``InMemorySaver`` do, instead of all of them in every row
(c)    the ``messages`` channel as a LangGraph ``DeltaChannel``: each version stores the
       messages written since the previous one (reducer: ``add_messages`` over the batch)
(d)    prune after every completed run: ``keep_latest`` keeps one checkpoint of the thread;
       ``subgraphs`` deletes only the finished sub-assistant runs' own checkpoints
(e)    the ``Send`` payload of a sub-assistant call carries only what the tool reads: the
       messages it forwards, the model message that made the call, the resumed uid's data
(f)    the recorded tool message's artifact without ``sub_assistant_state_data`` (kept
       once, in ``sub_assistant_states``). The library does this since commit b242005;
       ``keep_artifact_state`` restores the earlier behaviour, to measure the difference
(g)    sub-conversation messages written once: ``sub_assistant_states`` as a
       ``DeltaChannel`` and the recorded update carries only the messages the call added
=====  ==================================================================================
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict, get_type_hints

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, ChannelVersions, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph.message import add_messages
from langgraph.types import Command, Send

import assistant_graph.graph as graph_module
import assistant_graph.tool_execution as tool_execution_module
from assistant_graph.names import is_sub_assistant_tool_name
from assistant_graph.state import AssistantState, SubAssistantStateData, message_text

__all__ = [
    "ChannelBlobSqliteSaver",
    "StorageVariant",
    "applied",
    "prune_thread",
    "slim_artifact",
]

Fix = Literal["delta_messages", "trim_send", "keep_artifact_state", "delta_sub_states"]
SaverKind = Literal["sqlite", "sqlite_blobs", "memory"]
Prune = Literal["subgraphs", "keep_latest"]

APPEND_FROM = "__append_from__"
"""Key of a delta write of (g): keep this many old messages, then append the new ones."""


@dataclass(frozen=True)
class StorageVariant:
    """One way of storing a thread: a saver, library patches, run options, pruning."""

    key: str
    """Short name, e.g. ``"f+e+c+g+d_sub"``."""
    label: str
    """What it is, for the table."""
    saver: SaverKind = "sqlite"
    """Which checkpointer."""
    fixes: frozenset[Fix] = field(default_factory=frozenset)
    """Library behaviour patched for the run."""
    durability: Literal["sync", "async", "exit"] | None = None
    """LangGraph durability of each run (None: LangGraph's default, ``async``)."""
    prune: Prune | None = None
    """Pruning after every completed run."""
    loses: str = ""
    """What the variant gives up."""
    snapshot_frequency: int = 100
    """For (c) and (g): a full value every this many updates of the channel."""


def add_messages_batch(
    state: Sequence[AnyMessage], writes: Sequence[Sequence[AnyMessage] | AnyMessage]
) -> list[AnyMessage]:
    """The ``DeltaChannel`` reducer of (c): ``add_messages`` over a batch of writes at once.

    One ``add_messages`` call over the concatenated writes equals folding them one by one
    (it merges by id in order), so it is batching-invariant as ``DeltaChannel`` requires,
    and replaying k writes costs one pass instead of k.
    """
    flat: list[Any] = []
    for write in writes:
        flat.extend(write if isinstance(write, list) else [write])
    return list(add_messages(list(state), flat))  # type: ignore[arg-type]


def fold_sub_states(
    state: Mapping[str, Any], writes: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The ``DeltaChannel`` reducer of (g): per uid, replace, or append new messages."""
    merged = dict(state or {})
    for write in writes:
        for uid, data in (write or {}).items():
            start = data.get(APPEND_FROM)
            if start is None:
                merged[uid] = data
                continue
            kept = list(merged.get(uid, {}).get("messages") or [])[:start]
            rest = {key: value for key, value in data.items() if key != APPEND_FROM}
            merged[uid] = {**rest, "messages": [*kept, *data["messages"]]}
    return merged


def _state_schema(fixes: frozenset[Fix], every: int) -> type:
    """``AssistantState`` with the channels of (c) and (g) swapped for ``DeltaChannel``."""
    hints = get_type_hints(AssistantState, include_extras=True)
    if "delta_messages" in fixes:
        channel = DeltaChannel(add_messages_batch, snapshot_frequency=every)
        hints["messages"] = Annotated[list[AnyMessage], channel]
    if "delta_sub_states" in fixes:
        channel = DeltaChannel(fold_sub_states, dict, snapshot_frequency=every)
        hints["sub_assistant_states"] = Annotated[dict[str, SubAssistantStateData], channel]
    return TypedDict("AssistantState", hints, total=False)  # type: ignore[operator]


def _recorder(keep_artifact_state: bool, delta: bool) -> Any:
    """``record_sub_conversation`` as it was before (f), and/or with (g)."""

    def record(result: Any) -> Any:
        artifact = getattr(result, "artifact", None)
        if not isinstance(result, ToolMessage) or not isinstance(artifact, Mapping):
            return result
        data = artifact.get("sub_assistant_state_data")
        if "subgraph_uid" not in artifact or data is None:
            return result
        if not keep_artifact_state:
            result = slim_artifact(result)
        data = dict(data)
        if delta:
            messages = list(data["messages"])
            added = len(artifact["response_messages"]) + 1  # the input message, the response
            data = {**data, "messages": messages[-added:], APPEND_FROM: len(messages) - added}
        update = {artifact["subgraph_uid"]: data}
        return Command(update={"messages": [result], "sub_assistant_states": update})

    return record


def slim_artifact(message: BaseMessage) -> BaseMessage:
    """The message without the sub-conversation in its artifact, as (f) records it."""
    artifact = getattr(message, "artifact", None)
    if not isinstance(artifact, Mapping) or artifact.get("sub_assistant_state_data") is None:
        return message
    return message.model_copy(update={"artifact": {**artifact, "sub_assistant_state_data": None}})


def _payload_state(state: Mapping[str, Any], call: Mapping[str, Any]) -> dict[str, Any]:
    """What a sub-assistant tool call reads from its caller's state (fix (e)).

    Error paths (bad arguments, unknown context ids or uid) keep the full state, so the
    error messages that list known ids stay as they are.
    """
    full = dict(state)
    args = call.get("args") or {}
    count = args.get("pass_num_previous_messages", 0)
    contexts = args.get("pass_contexts") or []
    uid = args.get("resume_conversation_uid")
    states = state.get("sub_assistant_states") or {}
    if not is_sub_assistant_tool_name(call.get("name") or ""):
        return full
    if not isinstance(count, int) or count < 0 or not isinstance(contexts, list):
        return full
    if not all(isinstance(call_id, str) for call_id in contexts):
        return full
    if uid is not None and (not isinstance(uid, str) or uid not in states):
        return full
    messages: list[BaseMessage] = list(state.get("messages") or [])
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    if any(call_id not in results for call_id in contexts):
        return full
    talk = [
        m for m in messages if isinstance(m, HumanMessage | AIMessage) and message_text(m).strip()
    ]
    caller = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    forwarded = talk[len(talk) - count :] if count else []
    chosen = {id(m) for m in [*forwarded, caller]}
    chosen |= {id(results[call_id]) for call_id in contexts}
    kept = [_without_artifact(m) for m in messages if id(m) in chosen]
    return {**full, "messages": kept, "sub_assistant_states": {uid: states[uid]} if uid else {}}


def _without_artifact(message: BaseMessage) -> BaseMessage:
    if isinstance(message, ToolMessage) and message.artifact is not None:
        return message.model_copy(update={"artifact": None})
    return message


def _trimming_router(original: Any) -> Any:
    def route_after_model(self: Any, state: Any) -> Any:
        routed = original(self, state)
        if not isinstance(routed, list):
            return routed
        return [
            Send(send.node, {**send.arg, "state": _payload_state(state, send.arg["tool_call"])})
            for send in routed
        ]

    return route_after_model


@contextmanager
def applied(fixes: frozenset[Fix], snapshot_frequency: int = 100) -> Iterator[None]:
    """Patch the library with ``fixes`` while the block runs (build graphs inside it)."""
    steps = graph_module._AssistantSteps
    with ExitStack() as stack:
        if fixes & {"delta_messages", "delta_sub_states"}:
            stack.enter_context(
                _swapped(graph_module, "AssistantState", _state_schema(fixes, snapshot_frequency))
            )
        if "trim_send" in fixes:
            router = _trimming_router(steps.route_after_model)
            stack.enter_context(_swapped(steps, "route_after_model", router))
        if fixes & {"keep_artifact_state", "delta_sub_states"}:
            recorder = _recorder("keep_artifact_state" in fixes, "delta_sub_states" in fixes)
            stack.enter_context(
                _swapped(tool_execution_module, "record_sub_conversation", recorder)
            )
        yield


@contextmanager
def _swapped(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


class ChannelBlobSqliteSaver(SqliteSaver):
    """Fix (b): ``SqliteSaver`` storing each channel value once per (channel, version).

    A checkpoint row keeps the channel versions only; the values go to a ``blobs`` table
    keyed like ``PostgresSaver``'s ``checkpoint_blobs``, written when a channel gets a new
    version. Sync API only (enough for the benchmark).
    """

    BLOBS_TABLE = """CREATE TABLE IF NOT EXISTS blobs (
        thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '', channel TEXT NOT NULL,
        version TEXT NOT NULL, type TEXT, blob BLOB,
        PRIMARY KEY (thread_id, checkpoint_ns, channel, version))"""

    def setup(self) -> None:
        """Create the tables, ``blobs`` included."""
        if self.is_setup:
            return
        super().setup()
        self.conn.execute(self.BLOBS_TABLE)
        self.conn.commit()

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Any,
        metadata: Any,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store the new channel versions' values as blobs, the rest as one row."""
        thread_id = str(config["configurable"]["thread_id"])
        namespace = config["configurable"].get("checkpoint_ns", "")
        values = checkpoint["channel_values"]
        rows = [
            (thread_id, namespace, channel, str(version), *self.serde.dumps_typed(values[channel]))
            for channel, version in new_versions.items()
            if channel in values
        ]
        with self.cursor() as cursor:
            cursor.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?, ?)", rows)
        return super().put(config, {**checkpoint, "channel_values": {}}, metadata, new_versions)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint with its channel values read back from the blobs."""
        found = super().get_tuple(config)
        return self._with_values(found) if found else None

    def list(self, config: RunnableConfig | None, **kwargs: Any) -> Iterator[CheckpointTuple]:
        """Checkpoints, newest first, with their channel values."""
        for found in super().list(config, **kwargs):
            yield self._with_values(found)

    get_delta_channel_history = BaseCheckpointSaver.get_delta_channel_history
    """The generic parent-chain walk: SqliteSaver's fast path reads values inline."""

    def _with_values(self, found: CheckpointTuple) -> CheckpointTuple:
        configurable = found.config["configurable"]
        versions = found.checkpoint["channel_versions"]
        if not versions:
            return found
        pairs = list(versions.items())
        placeholders = ", ".join("(?, ?)" for _ in pairs)
        query = (
            "SELECT channel, type, blob FROM blobs WHERE thread_id = ? AND checkpoint_ns = ? "
            f"AND (channel, version) IN (VALUES {placeholders})"
        )
        params = [str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")]
        params += [item for channel, version in pairs for item in (channel, str(version))]
        with self.cursor(transaction=False) as cursor:
            rows = cursor.execute(query, params).fetchall()
        values = {channel: self.serde.loads_typed((kind, blob)) for channel, kind, blob in rows}
        checkpoint = {**found.checkpoint, "channel_values": values}
        return found._replace(checkpoint=checkpoint)  # type: ignore[arg-type]


def prune_thread(connection: sqlite3.Connection, thread_id: str, how: Prune) -> None:
    """Fix (d): delete what a completed run leaves behind that no later run reads.

    ``subgraphs``: the sub-assistant runs' own checkpoints and writes (their namespaces are
    per task, and a finished task is never resumed). ``keep_latest``: that, and every
    checkpoint of the thread but the newest (its history) with their writes.

    Only after a run that completed: after an interrupt or a crash, the sub-assistant
    namespaces and the pending writes are what resuming needs. Not for ``DeltaChannel``
    threads, whose latest checkpoint is rebuilt from its ancestors' writes.
    """
    with connection:
        connection.execute(
            "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns != ''", (thread_id,)
        )
        connection.execute(
            "DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns != ''", (thread_id,)
        )
        if how != "keep_latest":
            return
        latest = connection.execute(
            "SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ''",
            (thread_id,),
        ).fetchone()[0]
        for table in ("checkpoints", "writes"):
            connection.execute(
                f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id != ?",
                (thread_id, latest),
            )
