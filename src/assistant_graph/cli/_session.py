"""One assistant on one thread: building its graph and running turns of it.

A :class:`Session` is what ``run``, ``chat`` and ``demo`` share: the compiled graph with
its checkpointer, the thread, and :meth:`Session.turn`, which streams one run's events
to a renderer and returns the final event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Interrupt

from assistant_graph._budget import BUDGET_CONFIG_KEY, Budget
from assistant_graph._catalog import DEFAULT_ASSISTANTS_FOLDER, AssistantCatalog, load_assistants
from assistant_graph._compaction import compact_thread
from assistant_graph._event_stream import stream_events
from assistant_graph._graph import build_assistant_graph
from assistant_graph._models import ModelOverride
from assistant_graph._persistence import check_database, describe_database, open_checkpointer
from assistant_graph._thread_guard import DEFAULT_BUSY_TIMEOUT
from assistant_graph.cli._failures import CliFailure
from assistant_graph.cli._hints import CommandLine
from assistant_graph.cli._human_input import RESUME_MANY, RESUME_ONE, resume_command
from assistant_graph.cli._preflight import prepare_models
from assistant_graph.cli._render import EventRenderer
from assistant_graph.events import ErrorEvent, FinalEvent

__all__ = ["Session", "SessionSettings", "TurnResult", "new_thread_id", "open_session"]

NOTHING_PENDING = "--resume: thread {thread} is not waiting for any input"
STILL_WAITING = (
    "thread {thread} is waiting for input ({count} pending); answer it instead of sending a "
    "new message: {command}"
)
UNFINISHED = (
    "thread {thread}'s last run failed before it finished; retry it first: {command} "
    "(then send the new message)"
)
NO_MESSAGE = "give a MESSAGE (or - to read it from stdin)"
UNKNOWN_THREAD = (
    "thread {thread} has no history in {store}, so there is nothing to retry: give a "
    "MESSAGE to start it (or the --db, and --assistants, the thread was run with)"
)
NOTHING_TO_RETRY = (
    "thread {thread} has nothing to retry or answer: give a MESSAGE to continue it: {command}"
)
FINISHED = ("completed", "incomplete")
"""Final statuses after which nothing is pending, so the thread can be compacted."""


@dataclass(frozen=True)
class SessionSettings:
    """What the command line says about where and how an assistant runs."""

    assistants: Path
    """The assistants folder."""
    thread: str | None = None
    """The thread to continue; None starts a new one."""
    db: str | None = None
    """Where threads are kept (see :func:`~assistant_graph._persistence.open_checkpointer`)."""
    model: ModelOverride = None
    """Replaces every assistant's model for this run."""
    keep_history: bool = False
    """Keep every checkpoint; by default a finished run's thread is compacted to its
    latest checkpoint (see :func:`~assistant_graph.compact_thread`)."""
    wait_if_busy: bool = False
    """When another run holds the thread, wait for it (else exit at once)."""
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    """Seconds to wait for a busy thread at most."""
    default_assistants: Path = Path(DEFAULT_ASSISTANTS_FOLDER)
    """The folder the command reads when ``--assistants`` is not given."""
    demo: bool = False
    """Whether the models are the scripted demo's (``chat --demo``)."""
    budget: Budget | None = None
    """Run-wide limits of every run (``--max-tokens``, ``--max-cost``, ``--max-seconds``)."""

    def command_line(self, name: str) -> CommandLine:
        """How a later command reaches the same assistants, store and model."""
        return CommandLine.of(
            name,
            assistants=self.assistants,
            default_assistants=self.default_assistants,
            db=self.db,
            model=self.model,
            demo=self.demo,
        )


@dataclass(frozen=True)
class TurnResult:
    """How one run ended."""

    final: FinalEvent
    """The final event."""
    error: ErrorEvent | None
    """The error event, if the run failed."""
    compacted: bool | None = None
    """After a finished run: whether the thread was compacted to its latest checkpoint
    (False: this store is not compacted, or another run had the thread); None when it was
    not tried (``--keep-history``, or a run that did not finish)."""


@dataclass
class Session:
    """An assistant's graph on one thread."""

    name: str
    """The root assistant."""
    catalog: AssistantCatalog
    """The assistants."""
    graph: CompiledStateGraph[Any, Any, Any, Any]
    """The compiled graph, with its checkpointer."""
    thread_id: str
    """The thread every turn runs on."""
    new_thread: bool
    """Whether the thread id was made up for this session."""
    store: str
    """Where the thread is kept, as it is safe to show."""
    command: CommandLine
    """How later commands reach this assistant, its thread store and its model (hints)."""
    keep_history: bool = False
    """Whether to keep every checkpoint instead of compacting after finished runs."""
    budget: Budget | None = None
    """Run-wide limits of every run of the session."""

    @property
    def config(self) -> RunnableConfig:
        """The run config naming the thread (and the run-wide limits, if any)."""
        configurable: dict[str, Any] = {"thread_id": self.thread_id}
        if self.budget is not None:
            configurable[BUDGET_CONFIG_KEY] = self.budget.model_dump(exclude_none=True)
        return {"configurable": configurable}

    def pending_requests(self) -> tuple[Interrupt, ...]:
        """The input requests (questions, approvals) the thread is waiting on."""
        return tuple(self.graph.get_state(self.config).interrupts)

    def unfinished(self) -> bool:
        """Whether the thread's last run stopped with steps left to do and no question
        pending, i.e. it failed; running with no input retries it."""
        state = self.graph.get_state(self.config)
        return bool(state.next) and not state.interrupts

    def wait_for_thread(self) -> None:
        """Return once no other run holds the thread (at once, with the reject policy).

        The thread's state is only read after this: a run in progress has steps left to
        do, just like a failed one, and must not be mistaken for one.

        Raises:
            ThreadBusyError: Another run holds the thread (and does not let go in time).
        """
        guard = getattr(self.graph, "thread_guard", None)
        if guard is not None:
            with guard.hold(self.config):
                pass

    def next_input(self, message: str | None, resume: str | None) -> Any:
        """The input of the next run: the message, the answers to pending requests, or
        None to retry a failed run.

        Raises:
            CliFailure: If the input does not fit the thread's state: ``--resume`` with
                nothing pending, a message while requests are pending or a failed run
                waits to be retried, or no message at all on a thread with nothing to do.
        """
        self.wait_for_thread()
        pending = self.pending_requests()
        if resume is not None:
            if not pending:
                raise CliFailure(NOTHING_PENDING.format(thread=self.thread_id))
            return resume_command(resume, pending)
        if pending:
            answer = RESUME_ONE if len(pending) == 1 else RESUME_MANY
            command = self.command.run(self.thread_id, "--resume", answer)
            text = STILL_WAITING.format(thread=self.thread_id, count=len(pending), command=command)
            raise CliFailure(text)
        if self.unfinished():
            if message is None:
                return None
            raise CliFailure(
                UNFINISHED.format(thread=self.thread_id, command=self.command.run(self.thread_id))
            )
        if message is None:
            raise CliFailure(self._no_message())
        return message

    def _no_message(self) -> str:
        """Why a run without a message has nothing to do, and what to give instead."""
        if self.new_thread:
            return NO_MESSAGE
        if not self.graph.get_state(self.config).values:
            return UNKNOWN_THREAD.format(thread=self.thread_id, store=self.store)
        command = self.command.run(self.thread_id, "MESSAGE")
        return NOTHING_TO_RETRY.format(thread=self.thread_id, command=command)

    def turn(self, input: Any, renderer: EventRenderer) -> TurnResult:
        """Run once on the thread, showing every event with ``renderer``.

        Args:
            input: A user message, a ``Command(resume=...)``, or None to retry a failed run.
            renderer: Shows the events.
        """
        final: FinalEvent | None = None
        error: ErrorEvent | None = None
        with renderer:
            for event in stream_events(self.graph, input, self.config):
                renderer.handle(event)
                if isinstance(event, ErrorEvent):
                    error = event
                elif isinstance(event, FinalEvent):
                    final = event
        if final is None:  # stream_events always ends with one; this guards against a change
            raise RuntimeError("the event stream ended without a final event")
        compacted = None
        if final.status in FINISHED and not self.keep_history:
            compacted = compact_thread(self.graph, self.config, finished=True)
        return TurnResult(final, error, compacted)


def new_thread_id() -> str:
    """A fresh thread id."""
    return uuid.uuid4().hex[:12]


@contextmanager
def open_session(settings: SessionSettings, name: str) -> Iterator[Session]:
    """Load the assistants, open the thread store and compile ``name``; close on exit.

    Nothing is opened or written before every model of the run could be created.

    Raises:
        AssistantConfigError: The folder is missing or invalid.
        CliFailure: A model cannot be made (no API key, a bad ``--model``).
        MissingConfigError: There is no assistant ``name``.
        CheckpointerError: The thread store cannot be opened.
    """
    catalog = load_assistants(settings.assistants)
    catalog[name]  # unknown names fail before the thread store is touched,
    check_database(settings.db)  # so do bad --db values
    model = prepare_models(catalog, name, settings.model)  # and missing keys
    with open_checkpointer(settings.db) as saver:
        graph = build_assistant_graph(
            name,
            catalog,
            model=model,
            checkpointer=saver,
            if_busy="enqueue" if settings.wait_if_busy else "reject",
            busy_timeout=settings.busy_timeout,
        )
        thread = settings.thread or new_thread_id()
        store = describe_database(settings.db)
        yield Session(
            name,
            catalog,
            graph,
            thread,
            settings.thread is None,
            store,
            settings.command_line(name),
            settings.keep_history,
            settings.budget,
        )
