"""``chat``: talk with an assistant line by line, answering its questions inline.

Each line the person types is one run on the session's thread, shown live on stderr
with its answer once, on stdout. When a run waits for input, each request is asked at
once and the run resumes. Lines starting with ``/`` are commands of the chat itself
(``/help`` lists them) and never reach the model. The loop ends at end of input or
``/exit``; the thread is kept.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO

from assistant_graph.cli._failures import EXIT_OK
from assistant_graph.cli._human_input import ask_inline
from assistant_graph.cli._output import Output, report_turn
from assistant_graph.cli._render import EventRenderer
from assistant_graph.cli._session import Session
from assistant_graph.events import AgentMessageEvent, AssistantEvent, FinalEvent, TokenEvent

__all__ = ["CHAT_HELP", "EXIT_COMMANDS", "HELP_COMMANDS", "RETRY_COMMANDS", "chat_loop"]

EXIT_COMMANDS = ("/exit", "/quit")
"""Lines that end the chat."""
RETRY_COMMANDS = ("", "/retry")
"""Lines that retry a failed run."""
HELP_COMMANDS = ("/help", "/?")
"""Lines that list the chat's commands."""
COMMAND_PREFIX = "/"
CHAT_HELP = (
    "commands (never sent to the assistant):",
    "  /help    this list",
    "  /exit    end the chat (also /quit, or Ctrl-D); the thread is kept",
    "  /retry   after a failed run: run the failed step again (Enter does too)",
)
"""What ``/help`` prints."""
PROMPT = "you > "
RETRY_PROMPT = "the last run failed; press Enter (or /retry) to retry it, /exit to stop > "
WELCOME = "chatting with {name} on thread {thread}; /help lists the commands, /exit stops"
BYE = "bye; continue later with: {command}"
BYE_IN_MEMORY = "bye (the thread was in memory only)"
NOT_A_RETRY = "the last run failed: retry it first (Enter or /retry), or /exit"
UNKNOWN_COMMAND = "unknown command {line}; /help lists the commands"


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
        renderer = output.renderer(session.name)
        if output.talk:  # the answer is printed on stdout; the tree need not say it too
            renderer = WithoutAnswer(renderer, session.name)
        result = session.turn(step, renderer)
        report_turn(session, result, output, inline=True)
    output.note(_bye(session))
    return EXIT_OK


def _bye(session: Session) -> str:
    if session.command.in_memory:
        return BYE_IN_MEMORY
    return BYE.format(command=session.command.chat(session.thread_id))


class WithoutAnswer:
    """Shows a run like ``inner``, except the root assistant's answer (the message the
    final event repeats), which ``chat`` prints on stdout."""

    def __init__(self, inner: EventRenderer, root: str) -> None:
        self._inner = inner
        self._root = (root,)
        self._held: AgentMessageEvent | None = None

    def __enter__(self) -> WithoutAnswer:
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release()
        self._inner.__exit__(kind, error, traceback)

    def handle(self, event: AssistantEvent) -> None:
        """Hold the root's latest message until it is clear whether it is the answer."""
        if isinstance(event, TokenEvent):
            self._inner.handle(event)
            return
        if isinstance(event, FinalEvent) and self._held and self._held.content == event.content:
            self._held = None  # the answer: printed on stdout
        self._release()
        if isinstance(event, AgentMessageEvent) and event.path == self._root:
            self._held = event
        else:
            self._inner.handle(event)

    def _release(self) -> None:
        if self._held is not None:
            self._inner.handle(self._held)
            self._held = None


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
        if line in HELP_COMMANDS:
            _command(line, prompt)
        else:
            prompt.write(NOT_A_RETRY + "\n")
        return _SKIP
    line = _read(source, prompt, PROMPT)
    if line is None or line in EXIT_COMMANDS:
        return _STOP
    if line.startswith(COMMAND_PREFIX):
        _command(line, prompt)
        return _SKIP
    return line if line else _SKIP


def _command(line: str, prompt: TextIO) -> None:
    """Answer a chat command (other than ``/exit``) on the prompt stream."""
    if line in HELP_COMMANDS:
        prompt.write("\n".join(CHAT_HELP) + "\n")
    else:
        prompt.write(UNKNOWN_COMMAND.format(line=line) + "\n")
    prompt.flush()


def _read(source: TextIO, prompt: TextIO, text: str) -> str | None:
    prompt.write(text)
    prompt.flush()
    line = source.readline()
    return None if not line else line.strip()
