"""The ways of storing a thread that :mod:`benchmarks.long_threads` compares.

The library today trims each sub-assistant call's task state (``payload_state``), keeps
each sub-conversation once (recorded tool messages carry
``sub_assistant_state_data=None``, commit b242005) and offers
:func:`assistant_graph.compact_thread`, which the CLI runs after every finished run.
Besides the library as it is, with and without compaction, a few variants are measured
because they still teach something; ``src/`` is never changed, a variant patches the
library only while its thread runs:

===============  ==========================================================================
``before_f``     ``record_sub_conversation`` patched back to keep the sub-conversation in
                 every recorded tool message's artifact (the library before b242005)
``exit``         ``durability="exit"``: one checkpoint per run, none for sub-assistant runs
                 (gives up mid-run crash recovery)
``delta``        the ``messages`` channel as LangGraph's ``DeltaChannel`` (beta): each
                 version stores the messages written since the previous one
===============  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict, get_type_hints

from langchain_core.messages import AnyMessage, BaseMessage, ToolMessage
from langgraph.channels import DeltaChannel
from langgraph.graph.message import add_messages
from langgraph.types import Command

import assistant_graph._graph as graph_module
import assistant_graph._tool_execution as tool_execution_module
from assistant_graph._state import AssistantState

__all__ = ["StorageVariant", "applied", "slim_artifact"]

Fix = Literal["keep_artifact_state", "delta_messages"]
SaverKind = Literal["sqlite", "memory"]


@dataclass(frozen=True)
class StorageVariant:
    """One way of storing a thread: a saver, library patches, run options, compaction."""

    key: str
    """Short name, e.g. ``"compact"``."""
    label: str
    """What it is, for the table."""
    saver: SaverKind = "sqlite"
    """Which checkpointer: ``SqliteSaver`` or ``InMemorySaver``."""
    fixes: frozenset[Fix] = field(default_factory=frozenset)
    """Library behaviour patched for the run."""
    durability: Literal["sync", "async", "exit"] | None = None
    """LangGraph durability of each run (None: LangGraph's default, ``async``)."""
    compact: bool = False
    """Call :func:`assistant_graph.compact_thread` after every run, as the CLI does."""
    loses: str = ""
    """What the variant gives up."""
    snapshot_frequency: int = 100
    """For ``delta_messages``: a full value every this many updates of the channel."""
    messages_once: bool = False
    """Open the saver with ``store_messages_once`` (as ``open_checkpointer`` does)."""


def add_messages_batch(
    state: Sequence[AnyMessage], writes: Sequence[Sequence[AnyMessage] | AnyMessage]
) -> list[AnyMessage]:
    """The ``DeltaChannel`` reducer: ``add_messages`` over a batch of writes at once.

    One ``add_messages`` call over the concatenated writes equals folding them one by one
    (it merges by id in order), so it is batching-invariant as ``DeltaChannel`` requires,
    and replaying k writes costs one pass instead of k.
    """
    flat: list[Any] = []
    for write in writes:
        flat.extend(write if isinstance(write, list) else [write])
    return list(add_messages(list(state), flat))  # type: ignore[arg-type]


def _state_schema(every: int) -> type:
    """``AssistantState`` with ``messages`` as a ``DeltaChannel``."""
    hints = get_type_hints(AssistantState, include_extras=True)
    channel = DeltaChannel(add_messages_batch, snapshot_frequency=every)
    hints["messages"] = Annotated[list[AnyMessage], channel]
    return TypedDict("AssistantState", hints, total=False)  # type: ignore[operator]


def record_keeping_artifact(result: Any) -> Any:
    """``record_sub_conversation`` as it was before b242005: the artifact keeps the data."""
    artifact = getattr(result, "artifact", None)
    if not isinstance(result, ToolMessage) or not isinstance(artifact, Mapping):
        return result
    data = artifact.get("sub_assistant_state_data")
    if "subgraph_uid" not in artifact or data is None:
        return result
    update = {artifact["subgraph_uid"]: data}
    return Command(update={"messages": [result], "sub_assistant_states": update})


def slim_artifact(message: BaseMessage) -> BaseMessage:
    """The message without the sub-conversation in its artifact, as the library keeps it."""
    artifact = getattr(message, "artifact", None)
    if not isinstance(artifact, Mapping) or artifact.get("sub_assistant_state_data") is None:
        return message
    return message.model_copy(update={"artifact": {**artifact, "sub_assistant_state_data": None}})


@contextmanager
def applied(fixes: frozenset[Fix], snapshot_frequency: int = 100) -> Iterator[None]:
    """Patch the library with ``fixes`` while the block runs (build graphs inside it)."""
    with ExitStack() as stack:
        if "delta_messages" in fixes:
            schema = _state_schema(snapshot_frequency)
            stack.enter_context(_swapped(graph_module, "AssistantState", schema))
        if "keep_artifact_state" in fixes:
            stack.enter_context(
                _swapped(tool_execution_module, "record_sub_conversation", record_keeping_artifact)
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
