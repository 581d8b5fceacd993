"""The page's server side: runs on threads, what they streamed, and who is watching.

One :class:`Runs` serves one app. It opens the thread store the CLI uses
(:func:`~assistant_graph.aopen_checkpointer`), compiles each root assistant once, and
runs turns in-process in the background with :func:`~assistant_graph.astream_events`, the
stream ``run --json`` writes. Each event is stamped with the time it arrived, kept in the
log of its turn (for pages that open later, and the timeline), and sent to every page
watching the thread. When a run ends, watchers get the thread's new state.

A run starts from one of three inputs, checked against the thread's state as the CLI
checks them: a message (nothing pending, last run not failed), answers to pending
requests (``Command(resume={id: answer})``), or a retry of the failed step (no input).
A thread another process is running is refused at once (the thread guard), as is a
second run of a thread this server is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command, StateSnapshot

from assistant_graph._catalog import AssistantCatalog
from assistant_graph._compaction import acompact_thread
from assistant_graph._errors import MissingConfigError, ThreadBusyError
from assistant_graph._event_stream import astream_events
from assistant_graph._graph import build_assistant_graph
from assistant_graph._model_calls import RetryPolicy
from assistant_graph._models import ModelOverride
from assistant_graph._persistence import aopen_checkpointer
from assistant_graph._state import coerce_messages, message_text
from assistant_graph.cli._failures import CliFailure
from assistant_graph.cli._hints import permanent_failure_advice
from assistant_graph.cli._preflight import prepare_models
from assistant_graph.events import AssistantEvent, ErrorEvent, FinalEvent, TokenEvent
from assistant_graph.ui._history import split_turns, turn_events
from assistant_graph.ui._threads import (
    find_conversation,
    list_thread_ids,
    message_view,
    pending_view,
    root_assistant,
    summaries,
    thread_config,
    thread_status,
)

__all__ = ["KEEPALIVE", "Runs", "UiError", "UiSettings"]

FINISHED = ("completed", "incomplete")
"""Final statuses after which a thread is compacted (as the CLI does)."""
LOGGED_THREADS = 200
"""How many threads' recorded events are kept in memory (the most recently run)."""
LOGGED_TURNS = 50
"""How many turns of one thread are kept."""
KEEPALIVE = "keepalive"
"""The kind of message a watcher gets when nothing happened for :data:`KEEPALIVE_SECONDS`."""
KEEPALIVE_SECONDS = 15.0
"""How often an idle stream says it is alive (so proxies and browsers keep it open)."""
WATCHER_BACKLOG = 2000
"""Messages a watcher may fall behind by before it is dropped (the page reconnects)."""

UNKNOWN_THREAD = "there is no thread {thread!r} in {store}"
BUSY_HERE = "a run is in progress on thread {thread}; wait for it to finish"
NOTHING_PENDING = "thread {thread} is not waiting for any input"
UNKNOWN_REQUESTS = "these are not pending requests of thread {thread}: {ids} (pending: {pending})"
NO_ANSWERS = "give at least one answer"
STILL_WAITING = "thread {thread} is waiting for input ({count} pending): answer it first"
FAILED_FIRST = "thread {thread}'s last run failed: continue it first, then send the message"
NOTHING_TO_RETRY = "thread {thread} has no failed run to continue"
EMPTY_MESSAGE = "the message is empty"
UNKNOWN_CONVERSATION = "thread {thread} has no sub-conversation {uid!r}"
NOT_HERE = "thread {thread} belongs to assistant {assistant!r}, which is not in this folder"


class UiError(Exception):
    """A request the server refuses: the HTTP status and what to tell the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class UiSettings:
    """What the app serves and how."""

    catalog: AssistantCatalog
    """The assistants."""
    db: str | None = None
    """Where threads are kept (the CLI's ``--db``), unless ``checkpointer`` is given."""
    checkpointer: BaseCheckpointSaver[Any] | None = None
    """An open async checkpointer to use instead of opening ``db``."""
    model: ModelOverride = None
    """Replaces every assistant's model (as ``--model``)."""
    keep_history: bool = False
    """Keep every checkpoint instead of compacting finished threads."""
    retry: RetryPolicy | None = None
    """How transient model failures are retried (default: as everywhere)."""


@dataclass
class _Turn:
    """What this server recorded of one turn."""

    message: str
    """The person's message that opened it."""
    records: list[dict[str, Any]] = field(default_factory=list)
    """``{"ts": ms, "event": {...}}`` in arrival order (token pieces joined)."""

    def add(self, record: dict[str, Any]) -> None:
        """Keep ``record``; a token piece extends the previous piece of the same message."""
        event, last = record["event"], self.records[-1]["event"] if self.records else None
        if (
            event["type"] == TokenEvent.type
            and last is not None
            and last["type"] == TokenEvent.type
            and last["message_id"] == event["message_id"]
            and last["path"] == event["path"]
        ):
            self.records[-1] = {
                **self.records[-1],
                "event": {**last, "text": last["text"] + event["text"]},
            }
        else:
            self.records.append(record)


class Runs:
    """Threads, runs and watchers of one app (see the module doc)."""

    def __init__(self, settings: UiSettings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self._saver: BaseCheckpointSaver[Any] | None = settings.checkpointer
        self._opening = asyncio.Lock()
        self._graphs: dict[str, Any] = {}
        self._active: dict[str, asyncio.Task[None]] = {}
        self._logs: OrderedDict[str, OrderedDict[str, _Turn]] = OrderedDict()
        self._owners: dict[str, str] = {}
        self._watchers: dict[str, set[asyncio.Queue[tuple[str, Any]]]] = {}
        self._seq: dict[str, int] = {}

    # Opening and closing ------------------------------------------------------------------

    async def saver(self) -> BaseCheckpointSaver[Any]:
        """The thread store, opened on first use."""
        async with self._opening:
            if self._saver is None:
                self._saver = await self._stack.enter_async_context(
                    aopen_checkpointer(self.settings.db)
                )
        return self._saver

    async def close(self) -> None:
        """Stop the runs in progress and close the thread store (if this app opened it)."""
        for task in list(self._active.values()):
            task.cancel()
        for task in list(self._active.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._stack.aclose()
        if self.settings.checkpointer is None:
            self._saver = None

    async def graph(self, assistant: str) -> Any:
        """The compiled graph of root ``assistant`` (every model created first).

        Raises:
            UiError: The assistant is unknown, or a model cannot be created (no key).
        """
        if assistant not in self._graphs:
            saver = await self.saver()
            catalog, override, retry = (
                self.settings.catalog,
                self.settings.model,
                self.settings.retry,
            )
            try:
                catalog[assistant]  # an unknown name is named before anything is made
                model = prepare_models(catalog, assistant, override)
            except (MissingConfigError, CliFailure) as error:
                raise UiError(400, "\n".join(_lines(error))) from error
            self._graphs[assistant] = await anyio.to_thread.run_sync(
                lambda: build_assistant_graph(
                    assistant, catalog, model=model, checkpointer=saver, retry=retry
                )
            )
        return self._graphs[assistant]

    # Reading --------------------------------------------------------------------------------

    async def threads(self) -> list[dict[str, Any]]:
        """The thread list, newest first (threads of this server not saved yet included)."""
        rows = await list_thread_ids(await self.saver())
        listed = {row[0] for row in rows}
        starting = [
            (thread, assistant, "")
            for thread, assistant in self._owners.items()
            if thread not in listed and thread in self._active
        ]
        lines = await summaries([*starting, *rows], self._snapshot_or_none, self.running)
        return [line.to_dict() for line in lines]

    def running(self, thread_id: str) -> bool:
        """Whether this server runs ``thread_id`` now."""
        return thread_id in self._active

    async def thread(self, thread_id: str) -> dict[str, Any]:
        """One thread for the page: status, pending requests, and every turn's events.

        Raises:
            UiError: No such thread, or its assistant is not in this folder.
        """
        assistant, snapshot = await self._state(thread_id)
        values = snapshot.values or {}
        status = thread_status(snapshot, self.running(thread_id))
        pending = pending_view(snapshot.interrupts) if not self.running(thread_id) else []
        turns = self._turns(thread_id, assistant, values, status, pending)
        return {
            "seq": self._seq.get(thread_id, 0),  # read with the records, no await between
            "thread_id": thread_id,
            "assistant": assistant,
            "status": status,
            "pending": pending,
            "turns": turns,
        }

    async def conversation(self, thread_id: str, uid: str) -> dict[str, Any]:
        """The whole transcript of sub-conversation ``uid`` of a thread.

        Raises:
            UiError: No such thread or sub-conversation.
        """
        _, snapshot = await self._state(thread_id)
        data = find_conversation(snapshot.values or {}, uid)
        if data is None:
            raise UiError(404, UNKNOWN_CONVERSATION.format(thread=thread_id, uid=uid))
        messages = coerce_messages(data.get("messages") or [])
        return {
            "uid": uid,
            "assistant": data.get("assistant"),
            "summary": data.get("summary_of_conversation"),
            "messages": [message_view(message) for message in messages],
        }

    # Starting runs ------------------------------------------------------------------------

    async def start_thread(self, assistant: str, message: str) -> str:
        """Start a new thread of ``assistant`` with ``message``; its id.

        Raises:
            UiError: Unknown assistant, a model that cannot be made, or an empty message.
        """
        text = _message(message)
        graph = await self.graph(assistant)
        thread_id = uuid.uuid4().hex[:12]
        self._owners[thread_id] = assistant
        self._launch(thread_id, graph, _person(text), "message")
        return thread_id

    async def send(self, thread_id: str, message: str) -> None:
        """Continue a thread with the person's next message.

        Raises:
            UiError: The thread waits for answers, its last run failed, it is busy, or
                the message is empty.
        """
        text = _message(message)
        graph, snapshot = await self._ready(thread_id)
        if snapshot.interrupts:
            raise UiError(
                409, STILL_WAITING.format(thread=thread_id, count=len(snapshot.interrupts))
            )
        if snapshot.next:
            raise UiError(409, FAILED_FIRST.format(thread=thread_id))
        self._launch(thread_id, graph, _person(text), "message")

    async def answer(self, thread_id: str, answers: Mapping[str, Any]) -> None:
        """Answer some or all of a thread's pending requests (the rest stay pending).

        Raises:
            UiError: Nothing is pending, an id is not pending, no answer, or busy.
        """
        if not answers:
            raise UiError(400, NO_ANSWERS)
        graph, snapshot = await self._ready(thread_id)
        pending = [item.id for item in snapshot.interrupts]
        if not pending:
            raise UiError(409, NOTHING_PENDING.format(thread=thread_id))
        unknown = [key for key in answers if key not in pending]
        if unknown:
            ids, known = ", ".join(unknown), ", ".join(pending)
            raise UiError(400, UNKNOWN_REQUESTS.format(thread=thread_id, ids=ids, pending=known))
        self._launch(thread_id, graph, Command(resume=dict(answers)), "answers")

    async def retry(self, thread_id: str) -> None:
        """Continue a thread whose last run failed: run the failed step again.

        Raises:
            UiError: The last run did not fail, or the thread is busy.
        """
        graph, snapshot = await self._ready(thread_id)
        if not snapshot.next or snapshot.interrupts:
            raise UiError(409, NOTHING_TO_RETRY.format(thread=thread_id))
        self._launch(thread_id, graph, None, "retry")

    # Watching -------------------------------------------------------------------------------

    async def watch(self, thread_id: str) -> AsyncIterator[tuple[str, Any]]:
        """``(kind, data)`` messages for a page watching a thread: its state first
        (``snapshot``), then each event as it comes (``event``), and the new state after
        each run (``snapshot``). Ends if the page falls too far behind.

        Raises:
            UiError: No such thread.
        """
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(WATCHER_BACKLOG)
        watchers = self._watchers.setdefault(thread_id, set())
        watchers.add(queue)
        try:
            yield "snapshot", await self.thread(thread_id)
            while True:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    kind, data = KEEPALIVE, None
                if kind == "overflow":
                    return
                yield kind, data
        finally:
            watchers.discard(queue)
            if not watchers:
                self._watchers.pop(thread_id, None)

    def _publish(self, thread_id: str, kind: str, data: Any) -> None:
        for queue in list(self._watchers.get(thread_id, ())):
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                self._watchers[thread_id].discard(queue)
                queue.get_nowait()
                queue.put_nowait(("overflow", None))

    # Internals ------------------------------------------------------------------------------

    def _launch(self, thread_id: str, graph: Any, run_input: Any, kind: str) -> None:
        """Run ``run_input`` (a message, answers, or None to retry) in the background."""
        if self.running(thread_id):
            raise UiError(409, BUSY_HERE.format(thread=thread_id))
        task = asyncio.create_task(self._run(thread_id, graph, run_input, kind))
        self._active[thread_id] = task

    async def _run(self, thread_id: str, graph: Any, run_input: Any, kind: str) -> None:
        config = thread_config(thread_id)
        try:
            if isinstance(run_input, _PersonInput):
                turn_id, message = run_input.message.id or "", message_text(run_input.message)
                graph_input: Any = {"messages": [run_input.message]}
            else:
                (turn_id, message), graph_input = (
                    await self._current_turn(graph, thread_id),
                    run_input,
                )
            turn = self._turn(thread_id, turn_id, message)
            start = {
                "type": "run_start",
                "path": [graph.name],
                "input": kind,
                "message": turn.message,
            }
            self._record(thread_id, turn_id, turn, start)
            final: FinalEvent | None = None
            async for event in astream_events(graph, graph_input, config):
                self._record(thread_id, turn_id, turn, self._event_data(event))
                final = event if isinstance(event, FinalEvent) else final
            if final is not None and final.status in FINISHED and not self.settings.keep_history:
                await acompact_thread(graph, config, finished=True)
        finally:
            self._active.pop(thread_id, None)
            await self._publish_state(thread_id)

    def _record(self, thread_id: str, turn_id: str, turn: _Turn, event: dict[str, Any]) -> None:
        """Stamp ``event`` with the time, keep it in its turn, and send it to the watchers."""
        self._seq[thread_id] = seq = self._seq.get(thread_id, 0) + 1
        record = {"seq": seq, "ts": _now_ms(), "event": event}
        turn.add(record)
        self._publish(thread_id, "event", {"turn": turn_id, **record})

    async def _publish_state(self, thread_id: str) -> None:
        if not self._watchers.get(thread_id):
            return
        try:
            view = await self.thread(thread_id)
        except UiError:
            return
        self._publish(thread_id, "snapshot", view)

    def _event_data(self, event: AssistantEvent) -> dict[str, Any]:
        data = event.to_dict()
        if isinstance(event, ErrorEvent):
            failing = event.path[-1] if event.path else ""
            catalog = self.settings.catalog
            source = catalog.source_of(failing) if failing in catalog else failing
            data["advice"] = permanent_failure_advice(event.exception, source)
        return data

    def _turn(self, thread_id: str, turn_id: str, message: str) -> _Turn:
        turns = self._logs.setdefault(thread_id, OrderedDict())
        self._logs.move_to_end(thread_id)
        while len(self._logs) > LOGGED_THREADS:
            self._logs.popitem(last=False)
        if turn_id not in turns:
            turns[turn_id] = _Turn(message)
            while len(turns) > LOGGED_TURNS:
                turns.popitem(last=False)
        return turns[turn_id]

    def _turns(
        self,
        thread_id: str,
        assistant: str,
        values: Mapping[str, Any],
        status: str,
        pending: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """Every turn's events: as recorded by this server, else told from the thread (the
        last one with the requests it waits for)."""
        logged = self._logs.get(thread_id, OrderedDict())
        split = split_turns(coerce_messages(values.get("messages") or []))
        turns = []
        for index, (person, replies) in enumerate(split):
            recorded = logged.get(person.id or "")
            if recorded is not None:
                records, is_recorded = list(recorded.records), True
            else:
                last = index == len(split) - 1
                final = _FINAL_STATUS.get(status, "completed") if last else "completed"
                stop = values.get("budget_exhausted") if final == "incomplete" else None
                events = turn_events(
                    assistant,
                    replies,
                    status=final,
                    budget_exhausted=stop,
                    pending=pending if last else (),
                )
                records, is_recorded = [{"ts": None, "event": event} for event in events], False
            turns.append(
                {
                    "id": person.id,
                    "message": message_text(person),
                    "recorded": is_recorded,
                    "records": records,
                }
            )
        seen = {turn["id"] for turn in turns}
        for turn_id, recorded in logged.items():  # started, not saved yet
            if turn_id not in seen and self.running(thread_id):
                turns.append(
                    {
                        "id": turn_id,
                        "message": recorded.message,
                        "recorded": True,
                        "records": list(recorded.records),
                    }
                )
        return turns

    async def _current_turn(self, graph: Any, thread_id: str) -> tuple[str, str]:
        """The id and message of the thread's last turn (the one answers and retries
        continue)."""
        snapshot = await graph.aget_state(thread_config(thread_id))
        split = split_turns(coerce_messages((snapshot.values or {}).get("messages") or []))
        if not split:
            return "", ""
        return split[-1][0].id or "", message_text(split[-1][0])

    async def _ready(self, thread_id: str) -> tuple[Any, StateSnapshot]:
        """The graph and state of a thread no run holds (here or in another process)."""
        if self.running(thread_id):
            raise UiError(409, BUSY_HERE.format(thread=thread_id))
        assistant, _ = await self._state(thread_id)
        graph = await self.graph(assistant)
        guard = getattr(graph, "thread_guard", None)
        if guard is not None:
            try:
                async with guard.ahold(thread_config(thread_id)):
                    pass
            except ThreadBusyError as error:
                raise UiError(409, str(error)) from error
        return graph, await graph.aget_state(thread_config(thread_id))

    async def _state(self, thread_id: str) -> tuple[str, StateSnapshot]:
        saver = await self.saver()
        tuple_ = await saver.aget_tuple(thread_config(thread_id))
        values = tuple_.checkpoint.get("channel_values") or {} if tuple_ else {}
        assistant = root_assistant(values) or self._owners.get(thread_id, "")
        if not assistant:
            raise UiError(404, UNKNOWN_THREAD.format(thread=thread_id, store="this thread store"))
        if assistant not in self.settings.catalog:
            raise UiError(404, NOT_HERE.format(thread=thread_id, assistant=assistant))
        graph = await self.graph(assistant)
        return assistant, await graph.aget_state(thread_config(thread_id))

    async def _snapshot_or_none(self, thread_id: str, assistant: str) -> StateSnapshot | None:
        if assistant not in self.settings.catalog:
            return None
        try:
            graph = await self.graph(assistant)
        except UiError:
            return None
        snapshot: StateSnapshot = await graph.aget_state(thread_config(thread_id))
        return snapshot


_FINAL_STATUS = {"waiting": "interrupted", "failed": "error", "incomplete": "incomplete"}
"""The final status of a thread's last turn told again, by the thread's status."""


@dataclass(frozen=True)
class _PersonInput:
    """A run's input that is the person's message; its id names the turn."""

    message: HumanMessage


def _person(text: str) -> _PersonInput:
    return _PersonInput(HumanMessage(text, id=str(uuid.uuid4())))


def _message(message: str) -> str:
    if not isinstance(message, str) or not message.strip():
        raise UiError(400, EMPTY_MESSAGE)
    return message


def _lines(error: Exception) -> list[str]:
    if isinstance(error, CliFailure):
        return [str(line) for line in error.lines]
    return [str(error)]


def _now_ms() -> int:
    return int(time.time() * 1000)
