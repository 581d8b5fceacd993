"""``chat``: talk with an assistant line by line, answering its questions inline.

Each line the person types is one run on the session's thread, shown live on stderr
with its answer on stdout. When a run waits for input, each request is asked at once
and the run resumes. The loop ends at end of input or ``/exit``; the thread is kept.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from assistant_graph.cli._failures import EXIT_OK
from assistant_graph.cli._human_input import ask_inline
from assistant_graph.cli._output import Output, report_turn
from assistant_graph.cli._session import Session

__all__ = ["EXIT_COMMANDS", "RETRY_COMMANDS", "chat_loop"]

EXIT_COMMANDS = ("/exit", "/quit")
"""Lines that end the chat."""
RETRY_COMMANDS = ("", "/retry")
"""Lines that retry a failed run."""
PROMPT = "you > "
RETRY_PROMPT = "the last run failed; press Enter (or /retry) to retry it, /exit to stop > "
WELCOME = "chatting with {name} on thread {thread}; /exit or end of input (Ctrl-D) stops"
BYE = "bye; continue later with --thread {thread}"
NOT_A_RETRY = "the last run failed: retry it first (Enter or /retry), or /exit"


def chat_loop(session: Session, output: Output, read: TextIO | None = None) -> int:
    """Run the chat until the person stops; returns the exit code (0).

    Args:
        session: The assistant and thread.
        output: Where to show runs.
        read: Where the person's lines come from (stdin by default).
    """
    source = read or sys.stdin
    output.note(WELCOME.format(name=session.name, thread=session.thread_id))
    while True:
        step = _next_input(session, source, output.err)
        if step is _STOP:
            break
        if step is _SKIP:
            continue
        result = session.turn(step, output.renderer(session.name))
        report_turn(session, result, output, inline=True)
    output.note(BYE.format(thread=session.thread_id))
    return EXIT_OK


_STOP = object()
_SKIP = object()


def _next_input(session: Session, source: TextIO, prompt: TextIO) -> Any:
    """The next run's input, ``_STOP`` at the end, or ``_SKIP`` to ask again."""
    pending = session.pending_requests()
    if pending:
        command = ask_inline(pending, source, prompt)
        return _STOP if command is None else command
    if session.unfinished():
        line = _read(source, prompt, RETRY_PROMPT)
        if line is None or line in EXIT_COMMANDS:
            return _STOP
        if line in RETRY_COMMANDS:
            return None
        prompt.write(NOT_A_RETRY + "\n")
        return _SKIP
    line = _read(source, prompt, PROMPT)
    if line is None or line in EXIT_COMMANDS:
        return _STOP
    return line if line else _SKIP


def _read(source: TextIO, prompt: TextIO, text: str) -> str | None:
    prompt.write(text)
    prompt.flush()
    line = source.readline()
    return None if not line else line.strip()
