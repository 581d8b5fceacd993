"""Exit codes, and turning the package's errors into one clear line on stderr.

The three kinds of failure stay apart here too: configuration and usage mistakes exit
with :data:`EXIT_USAGE`, failed runs (model server down) with :data:`EXIT_RUN_FAILED`,
and a run that waits for the person with :data:`EXIT_WAITING`. Nothing the CLI expects
to go wrong prints a traceback, and no secret from the environment is ever printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from assistant_graph._errors import (
    EXCERPT_INDENT,
    AssistantConfigError,
    CheckpointerError,
    ConfigProblem,
    MissingConfigError,
    ThreadBusyError,
)

__all__ = [
    "EXIT_BUSY",
    "EXIT_CODES_HELP",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RUN_FAILED",
    "EXIT_USAGE",
    "EXIT_WAITING",
    "CliFailure",
    "Note",
    "bad_input",
    "oneline",
    "print_failure",
    "problem_lines",
    "redact_secrets",
]

EXIT_OK = 0
"""The run finished (or the command did what it was asked)."""
EXIT_RUN_FAILED = 1
"""The run failed (a model call failed after retries); the thread is kept."""
EXIT_USAGE = 2
"""Bad usage or configuration: unknown assistant, invalid YAML, missing API key, bad --db."""
EXIT_WAITING = 3
"""The run is waiting for the person; answer with ``--resume``."""
EXIT_BUSY = 4
"""Another run is in progress on the thread; nothing was run (``--if-busy wait`` waits)."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C; the thread keeps what was done up to the last finished step."""

EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 the run failed (e.g. the model server is down; the thread is "
    "kept, run again with --thread ID to retry); 2 bad usage or configuration; 3 waiting "
    "for input (answer with --thread ID --resume ANSWER); 4 another run is in progress on the "
    "thread (nothing was run; --if-busy wait waits for it); 130 stopped with Ctrl-C."
)
"""The exit codes, as the help text shows them."""

ERROR_PREFIX = "error: "
_SECRET_NAME = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_MIN_SECRET_LENGTH = 6
_MASK = "***"


@dataclass(frozen=True)
class Note:
    """A line printed as it is, under the ``error:`` lines: the YAML line with a caret
    under the mistake, or how to fix it."""

    text: str
    """The line (secrets are still masked)."""

    def __str__(self) -> str:
        return self.text


class CliFailure(Exception):
    """A failure the CLI reports as lines on stderr and an exit code, without a traceback.

    Each ``str`` line is printed as one ``error: ...`` line; each :class:`Note` as it is.
    """

    def __init__(self, lines: str | Sequence[str | Note], code: int = EXIT_USAGE) -> None:
        self.lines = (lines,) if isinstance(lines, str) else tuple(lines)
        self.code = code
        super().__init__("\n".join(map(str, self.lines)))


@contextmanager
def bad_input() -> Iterator[None]:
    """Turn configuration and usage errors raised inside into :class:`CliFailure` (exit 2).

    An invalid assistants folder lists every problem, one ``file: field: message`` per line.
    """
    try:
        yield
    except AssistantConfigError as error:
        raise CliFailure(problem_lines(error.problems)) from error
    except (MissingConfigError, CheckpointerError) as error:
        raise CliFailure(str(error)) from error
    except ThreadBusyError as error:
        raise CliFailure(str(error), EXIT_BUSY) from error


def problem_lines(problems: Sequence[ConfigProblem]) -> list[str | Note]:
    """Each problem's headline, then its excerpt (the line and a caret) as notes."""
    lines: list[str | Note] = []
    for problem in problems:
        lines.append(problem.headline)
        lines.extend(Note(EXCERPT_INDENT + line) for line in problem.excerpt)
    return lines


def print_failure(failure: CliFailure, stream: TextIO) -> None:
    """Write each line of ``failure`` to ``stream`` (``error: ...``), secrets masked."""
    for line in failure.lines:
        if isinstance(line, Note):
            stream.write(f"{redact_secrets(line.text)}\n")
        else:
            stream.write(f"{ERROR_PREFIX}{redact_secrets(oneline(line))}\n")
    stream.flush()


def redact_secrets(text: str) -> str:
    """``text`` with the value of every secret-looking environment variable masked.

    Variables whose names end in ``API_KEY``, ``TOKEN``, ``SECRET`` or ``PASSWORD`` count.
    """
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LENGTH:
            text = text.replace(value, _MASK)
    return text


def oneline(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())
