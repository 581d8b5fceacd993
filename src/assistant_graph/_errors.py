"""The errors of assistant-graph, kept in three kinds.

1. Developer mistakes (bad configuration, unknown names) raise a subclass of
   :class:`AssistantConfigError` that names the file and the field.
2. Model mistakes (a bad argument to a sub-assistant tool) are subclasses of
   :class:`SubAssistantToolError`, a ``ToolException``: the tool machinery turns them
   into an error tool message the model can act on, and the run goes on.
3. Infrastructure failures (the model server is down) raise :class:`ModelCallError`,
   which names the assistant path and the cause and is never hidden from the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from langchain_core.tools import ToolException

__all__ = [
    "AssistantConfigError",
    "AssistantGraphError",
    "CheckpointerError",
    "ConfigProblem",
    "MissingConfigError",
    "MissingSubgraphDataError",
    "ModelCallError",
    "SubAssistantToolError",
    "ThreadBusyError",
]


class AssistantGraphError(Exception):
    """Root of every error raised by assistant-graph."""


EXCERPT_INDENT = "    "
"""How far the lines of a problem's excerpt are indented under it."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in the assistant configuration."""

    file: str
    """The file the problem is in (or a description of the source, e.g. ``<dict>``)."""
    field: str
    """The field path within that file, e.g. ``sub_assistants[1]``; empty for the whole file."""
    message: str
    """What is wrong, and where possible what to do about it."""
    line: int | None = None
    """The line (1-based) the problem is on, when known (malformed YAML)."""
    column: int | None = None
    """The column (1-based) the problem is at, when known."""
    excerpt: tuple[str, ...] = ()
    """Lines of the file that show the problem: the offending line and a caret under it."""

    @property
    def headline(self) -> str:
        """The problem on one line: ``file[:line:column]: [field: ]message``."""
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        if self.field:
            where = f"{where}: {self.field}"
        return f"{where}: {self.message}"

    def __str__(self) -> str:
        return "\n".join([self.headline, *(EXCERPT_INDENT + line for line in self.excerpt)])


class AssistantConfigError(AssistantGraphError, ValueError):
    """The assistant configuration is invalid; every problem found is listed.

    Attributes:
        problems: Each problem, with the file and field it is in.
    """

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        if len(self.problems) == 1:
            text = str(self.problems[0])
        else:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            text = f"{len(self.problems)} problems in the assistant configuration:\n{lines}"
        super().__init__(text)

    @classmethod
    def single(cls, file: str, field: str, message: str) -> AssistantConfigError:
        """An error with one problem."""
        return cls([ConfigProblem(file, field, message)])

    @property
    def file(self) -> str:
        """The file of the first problem."""
        return self.problems[0].file

    @property
    def field(self) -> str:
        """The field of the first problem."""
        return self.problems[0].field


class MissingConfigError(AssistantGraphError, KeyError):
    """An assistant name was asked for that the catalog does not have."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(name)

    def __str__(self) -> str:
        known = ", ".join(self.known) or "none"
        return f"no assistant named {self.name!r} in the catalog (known: {known})"


class CheckpointerError(AssistantGraphError, ValueError):
    """The thread store named by ``db`` cannot be opened (bad path, missing extra), or
    holds a checkpoint whose stored messages are missing."""


class SubAssistantToolError(AssistantGraphError, ToolException):
    """A mistake in a sub-assistant tool call that the calling model can correct."""


class MissingSubgraphDataError(SubAssistantToolError):
    """``resume_conversation_uid`` names no conversation this caller can resume."""


class ModelCallError(AssistantGraphError):
    """A model call failed for a reason the model cannot fix (server down, timeout, auth).

    Attributes:
        path: The assistant names from the root to the one whose model call failed.
        cause: The original exception.
        attempts: How many times the call was tried.
        parent_tool_call_id: The caller's tool call that opened the failing sub-assistant
            (None for the root), to tell parallel calls of one assistant apart.
    """

    def __init__(
        self,
        path: Sequence[str],
        cause: BaseException,
        *,
        attempts: int = 1,
        parent_tool_call_id: str | None = None,
    ) -> None:
        self.path = tuple(path)
        self.parent_tool_call_id = parent_tool_call_id
        self.cause = cause
        self.attempts = attempts
        where = " > ".join(self.path) or "<unknown assistant>"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"model call of assistant {where} failed{tries}: {_describe(cause)}")


def _describe(cause: BaseException) -> str:
    text = str(cause).strip() or "no details"
    return f"{type(cause).__name__}: {text}"


class ThreadBusyError(AssistantGraphError):
    """Another run is in progress on the thread (one run per thread at a time).

    Nothing was run and nothing was written. Wait for the other run to finish, or let
    runs wait their turn (``if_busy="enqueue"``; the CLI's ``--if-busy wait``).

    Attributes:
        thread_id: The thread.
        since: When the run in progress took the thread, if known.
        process: The process (or PostgreSQL backend) holding it, if known.
        waited: Seconds this run waited before giving up (None: it did not wait).
    """

    def __init__(
        self,
        thread_id: str,
        *,
        since: datetime | None = None,
        process: int | None = None,
        waited: float | None = None,
    ) -> None:
        self.thread_id = thread_id
        self.since = since
        self.process = process
        self.waited = waited
        holder = ", ".join(
            part
            for part in (
                f"since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if since else "",
                f"process {process}" if process else "",
            )
            if part
        )
        where = f"a run is in progress on thread {thread_id!r}" + (f" ({holder})" if holder else "")
        if waited is None:
            advice = (
                "; wait for it to finish, or let this run wait its turn "
                "(if_busy='enqueue'; CLI: --if-busy wait)"
            )
        else:
            advice = f"; waited {waited:g} s for it to finish (busy_timeout), try again later"
        super().__init__(where + advice)
