"""Where the CLI writes what, around and after a run.

stdout carries the result: the final answer, the pending input requests, or with
``--json`` the event stream as JSON Lines. stderr carries everything meant for a person
watching: the live tree, the thread id, token usage, hints, and errors. With ``--json``
stderr shows errors only; with ``--quiet`` it shows no tree and no usage.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console

from assistant_graph._errors import ThreadBusyError
from assistant_graph.cli._failures import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WAITING,
    CliFailure,
    print_failure,
)
from assistant_graph.cli._human_input import resume_hint, write_requests
from assistant_graph.cli._render import (
    EventRenderer,
    JsonLinesRenderer,
    NullRenderer,
    format_usage,
    tree_renderer,
)
from assistant_graph.cli._session import Session, TurnResult
from assistant_graph.events import FinalEvent

__all__ = ["Output", "report_turn"]

NEW_THREAD = "thread {thread} (new, kept in {store}; continue it with --thread {thread})"
CONTINUING = "thread {thread}"
RETRYING = "retrying the failed run on thread {thread}"
RETRY_HINT = (
    "the thread {thread} is kept; retry the failed step with: "
    "assistant-graph run {name} --thread {thread}"
)
INCOMPLETE_NOTE = (
    "{name} stopped before finishing (it used all its steps); send another message on "
    "--thread {thread} to let it continue"
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
        """Say which thread the run is on."""
        if input_is_retry:
            self.note(RETRYING.format(thread=session.thread_id))
        elif session.new_thread:
            self.note(NEW_THREAD.format(thread=session.thread_id, store=session.store))
        else:
            self.note(CONTINUING.format(thread=session.thread_id))


def report_turn(
    session: Session, result: TurnResult, output: Output, *, inline: bool = False
) -> int:
    """Write the outcome of a run and return the exit code it stands for.

    The answer goes to stdout; a failure is one ``error:`` line on stderr naming the
    assistant path (also with ``--json``); pending requests are listed on stdout with a
    hint how to answer, unless ``inline`` (``chat`` asks for the answers itself).
    """
    final = result.final
    _report_usage(final, output)
    if result.error is not None and isinstance(result.error.exception, ThreadBusyError):
        print_failure(CliFailure(result.error.message), output.err)  # nothing ran, nothing to retry
        return EXIT_BUSY
    if result.error is not None:
        error = result.error
        message = error.message
        if error.error_type != MODEL_CALL_ERROR:
            message = UNEXPECTED.format(kind=error.error_type, message=message)
        print_failure(CliFailure(message), output.err)
        if not inline:
            output.note(RETRY_HINT.format(thread=session.thread_id, name=session.name))
        return EXIT_RUN_FAILED
    if final.status == "interrupted":
        pending = session.pending_requests()
        if not (output.json or inline):
            write_requests(pending, session.thread_id, output.out)
            output.note(resume_hint(session.name, session.thread_id, len(pending)))
        return EXIT_WAITING
    if not output.json:
        output.out.write(final.content + "\n")
        output.out.flush()
    if final.status == "incomplete":
        output.note(INCOMPLETE_NOTE.format(name=session.name, thread=session.thread_id))
    return EXIT_OK


def _report_usage(final: FinalEvent, output: Output) -> None:
    if final.usage["total"]["total_tokens"]:
        for line in format_usage(final.usage):
            output.note(line)
    elif final.status != "error":
        output.note(NO_USAGE)
