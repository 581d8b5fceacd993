"""Where the CLI writes what, around and after a run.

stdout carries the result: the final answer, the pending input requests, or with
``--json`` the event stream as JSON Lines. stderr carries everything meant for a person
watching: the live tree, the thread id, token usage, hints, and errors. With ``--json``
stderr shows errors only; with ``--quiet`` it shows no tree and no usage.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console

from assistant_graph._budget import Exhaustion
from assistant_graph._errors import ThreadBusyError
from assistant_graph.cli._failures import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WAITING,
    CliFailure,
    print_failure,
)
from assistant_graph.cli._hints import permanent_failure_advice
from assistant_graph.cli._human_input import resume_hint, write_requests
from assistant_graph.cli._render import (
    EventRenderer,
    JsonLinesRenderer,
    NullRenderer,
    format_usage,
    tree_renderer,
)
from assistant_graph.cli._session import Session, TurnResult
from assistant_graph.events import ErrorEvent, FinalEvent

__all__ = ["Output", "report_turn"]

NEW_THREAD = "thread {thread} (new, kept in {store}; continue it with: {command})"
NEW_MEMORY_THREAD = "thread {thread} (new, in memory only: it ends with this command)"
CONTINUING = "thread {thread}"
RETRYING = "retrying the failed run on thread {thread}"
RETRY_HINT = "the thread {thread} is kept; retry the failed step with: {command}"
PERMANENT_HINT = (
    "{advice}; running the same step again would fail the same way. The thread {thread} "
    "is kept: once that is changed, continue it with: {command}"
)
MEMORY_RETRY_HINT = (
    "the thread was in memory only (--db :memory:), so it ended with this command; "
    "to try again, send the message again: {command}"
)
MEMORY_PERMANENT_HINT = "{advice}; running it again as it is would fail the same way"
INCOMPLETE_NOTE = (
    "{name} stopped before finishing (it used {spent} it was allowed); "
    "let it continue with: {command}"
)
MEMORY_INCOMPLETE_NOTE = (
    "{name} stopped before finishing (it used {spent} it was allowed); the thread was in "
    "memory only, so it cannot be continued"
)
NO_USAGE = "tokens: none reported by the model server"
UNEXPECTED = "{kind}: {message}"
MODEL_CALL_ERROR = "ModelCallError"


@dataclass
class Output:
    """The output streams and what the options say to show on them."""

    json: bool = False
    """Write events as JSON Lines on stdout instead of the answer."""
    tokens: bool = False
    """With ``json``: include ``token`` events."""
    quiet: bool = False
    """Show no tree and no usage on stderr."""

    @property
    def out(self) -> TextIO:
        """stdout, looked up at use (test runners swap it)."""
        return sys.stdout

    @property
    def err(self) -> TextIO:
        """stderr, looked up at use."""
        return sys.stderr

    @property
    def talk(self) -> bool:
        """Whether notes for a person go to stderr."""
        return not (self.json or self.quiet)

    def renderer(self, root: str) -> EventRenderer:
        """How this run's events are shown."""
        if self.json:
            return JsonLinesRenderer(self.out, tokens=self.tokens)
        if self.quiet:
            return NullRenderer()
        return tree_renderer(Console(file=self.err, highlight=False), root)

    def note(self, text: str) -> None:
        """A line for the person watching, on stderr (not with ``--json``/``--quiet``)."""
        if self.talk:
            self.err.write(text + "\n")
            self.err.flush()

    def announce(self, session: Session, input_is_retry: bool) -> None:
        """Say which thread the run is on (and, for a new one, how to continue it)."""
        thread = session.thread_id
        if input_is_retry:
            self.note(RETRYING.format(thread=thread))
        elif session.new_thread and session.command.in_memory:
            self.note(NEW_MEMORY_THREAD.format(thread=thread))
        elif session.new_thread:
            command = session.command.run(thread, "MESSAGE")
            self.note(NEW_THREAD.format(thread=thread, store=session.store, command=command))
        else:
            self.note(CONTINUING.format(thread=thread))


COMPACTED = "thread {thread} compacted to its latest checkpoint (--keep-history keeps every step)"
NOT_COMPACTED = "thread {thread} keeps every step (this store is not compacted)"


def report_turn(
    session: Session, result: TurnResult, output: Output, *, inline: bool = False
) -> int:
    """Write the outcome of a run and return the exit code it stands for.

    The answer goes to stdout; a failure is one ``error:`` line on stderr naming the
    assistant path (also with ``--json``), then what to do about it; pending requests
    are listed on stdout with a hint how to answer, unless ``inline`` (``chat`` asks for
    the answers itself and retries in place).
    """
    final = result.final
    if result.compacted is not None and not session.command.in_memory:
        note = COMPACTED if result.compacted else NOT_COMPACTED
        output.note(note.format(thread=session.thread_id))
    _report_usage(final, output)
    if result.error is not None:
        return _report_error(session, result.error, output, inline=inline)
    if final.status == "interrupted":
        pending = session.pending_requests()
        if not (output.json or inline):
            write_requests(pending, session.thread_id, output.out)
            output.note(resume_hint(session.command, session.thread_id, len(pending)))
        return EXIT_WAITING
    if not output.json:
        output.out.write(_answer_text(final) + "\n")
        output.out.flush()
    if final.status == "incomplete":
        output.note(_incomplete_note(session, final))
    return EXIT_OK


def _answer_text(final: FinalEvent) -> str:
    """The answer for stdout: a typed root's result as JSON, else the last message's text."""
    if final.structured_response is None:
        return final.content
    return json.dumps(final.structured_response, ensure_ascii=False)


def _report_error(session: Session, error: ErrorEvent, output: Output, *, inline: bool) -> int:
    if isinstance(error.exception, ThreadBusyError):
        print_failure(CliFailure(error.message), output.err)  # nothing ran, nothing to retry
        return EXIT_BUSY
    message = error.message
    if error.error_type != MODEL_CALL_ERROR:
        message = UNEXPECTED.format(kind=error.error_type, message=message)
    print_failure(CliFailure(message), output.err)
    hint = _failure_hint(session, error, inline=inline)
    if hint:
        output.note(hint)
    return EXIT_RUN_FAILED


def _failure_hint(session: Session, error: ErrorEvent, *, inline: bool) -> str | None:
    """What to do after a failed run: change something (a permanent failure), or retry."""
    failing = error.path[-1] if error.path else session.name
    file = session.catalog.source_of(failing) if failing in session.catalog else session.name
    advice = permanent_failure_advice(error.exception, file)
    command, thread = session.command, session.thread_id
    if command.in_memory:
        if advice:
            return MEMORY_PERMANENT_HINT.format(advice=advice)
        return None if inline else MEMORY_RETRY_HINT.format(command=command.run(None, "MESSAGE"))
    if advice:
        return PERMANENT_HINT.format(advice=advice, thread=thread, command=command.run(thread))
    return None if inline else RETRY_HINT.format(thread=thread, command=command.run(thread))


def _incomplete_note(session: Session, final: FinalEvent) -> str:
    stop = final.budget_exhausted
    spent = Exhaustion.from_dict(stop).phrase() if stop else "all the model calls"
    if session.command.in_memory:
        return MEMORY_INCOMPLETE_NOTE.format(name=session.name, spent=spent)
    command = session.command.run(session.thread_id, "MESSAGE")
    return INCOMPLETE_NOTE.format(name=session.name, spent=spent, command=command)


def _report_usage(final: FinalEvent, output: Output) -> None:
    if final.usage["total"]["total_tokens"]:
        for line in format_usage(final.usage):
            output.note(line)
    elif final.status != "error":
        output.note(NO_USAGE)
