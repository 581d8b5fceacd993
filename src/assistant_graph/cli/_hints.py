"""The commands the CLI suggests, complete enough to work when pasted.

A hint such as "answer with: ..." or "retry the failed step with: ..." is only useful if
pasting it from the same directory does what it says. :class:`CommandLine` therefore
carries every option that took this run to its assistants, its thread store and its
model (``--assistants``, ``--db``, ``--model``, ``--demo``) unless it was the default or
comes from the environment (which the next command sees too), and quotes each word with
:func:`shlex.quote`. Placeholders the person fills in (``MESSAGE``, ``ANSWER``) are left
unquoted.

:func:`permanent_failure_advice` says what to change after a model call failed in a way
that retrying cannot fix (a 400 or 401), instead of suggesting the same step again.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assistant_graph._errors import ModelCallError
from assistant_graph._model_calls import is_transient
from assistant_graph._persistence import describe_database, is_memory

__all__ = [
    "DB_ENV",
    "MODEL_ENV",
    "PROGRAM",
    "CommandLine",
    "permanent_failure_advice",
]

PROGRAM = "assistant-graph"
"""The console script, as the person types it."""
DB_ENV = "ASSISTANT_GRAPH_DB"
"""The environment variable ``--db`` falls back to."""
MODEL_ENV = "ASSISTANT_GRAPH_MODEL"
"""The environment variable ``--model`` falls back to."""

UNAUTHORIZED = (
    "the model server did not accept the API key (HTTP 401): set a valid OPENAI_API_KEY "
    "(or the key the server at OPENAI_BASE_URL expects)"
)
FORBIDDEN = (
    "the API key may not use this model (HTTP 403): check the key's permissions, or choose "
    "another model ('model:' in {file}, or --model)"
)
NOT_FOUND = (
    "the model server does not know this model or address (HTTP 404): check 'model:' in "
    "{file} (or --model) and OPENAI_BASE_URL"
)
REJECTED = (
    "the model server rejected the request (HTTP {status}): check 'model:' and "
    "'model_settings:' in {file} (or --model)"
)
NOT_TRANSIENT = (
    "the model call failed in a way that retrying does not fix: check 'model:' and "
    "'model_settings:' in {file} (or --model)"
)
_ADVICE_BY_STATUS = {401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND}


@dataclass(frozen=True)
class CommandLine:
    """What a later command needs to reach the same assistants, thread store and model."""

    assistant: str
    """The assistant that was run."""
    assistants: Path | None = None
    """The assistants folder, if not the default one."""
    db: str | None = None
    """Where threads are kept, if not the default (or the environment's) store."""
    model: str | None = None
    """The ``--model`` given, if any (and not from the environment)."""
    demo: bool = False
    """Whether the run used the scripted demo models (``chat --demo``)."""
    in_memory: bool = False
    """Whether the thread lives in memory only, so no later command can continue it."""

    @classmethod
    def of(
        cls,
        assistant: str,
        *,
        assistants: Path,
        default_assistants: Path,
        db: str | None,
        model: object,
        demo: bool = False,
        environment: Mapping[str, str] | None = None,
    ) -> CommandLine:
        """The command line of a run, keeping only the options a later command needs.

        Args:
            assistant: The assistant that was run.
            assistants: Its assistants folder.
            default_assistants: The folder used when ``--assistants`` is not given.
            db: The ``--db`` value (None: the default store).
            model: The ``--model`` value (anything but a string is not an option).
            demo: Whether ``--demo`` was given.
            environment: The environment the next command runs in (default: this one).
        """
        env = os.environ if environment is None else environment
        return cls(
            assistant,
            assistants=None if Path(assistants) == Path(default_assistants) else assistants,
            db=None if db is None or db == env.get(DB_ENV) else describe_database(db),
            model=model if isinstance(model, str) and model != env.get(MODEL_ENV) else None,
            demo=demo,
            in_memory=is_memory(db),
        )

    def run(self, thread: str | None, *tail: str) -> str:
        """``assistant-graph run NAME ...`` on ``thread`` (None: a new one), then ``tail``
        (placeholders such as ``MESSAGE``, written as given)."""
        return self._line("run", thread, tail)

    def chat(self, thread: str | None) -> str:
        """``assistant-graph chat NAME ...`` on ``thread`` (None: a new one)."""
        return self._line("chat", thread, ())

    def _line(self, command: str, thread: str | None, tail: tuple[str, ...]) -> str:
        words = [PROGRAM, command, self.assistant]
        if self.demo:
            words.append("--demo")
        if thread is not None:
            words += ["--thread", thread]
        if self.assistants is not None:
            words += ["--assistants", str(self.assistants)]
        if self.db is not None:
            words += ["--db", self.db]
        if self.model is not None:
            words += ["--model", self.model]
        return " ".join([*map(shlex.quote, words), *tail])


def permanent_failure_advice(error: BaseException | None, file: str) -> str | None:
    """What to change after a model call failed for good, or None if retrying may help.

    Args:
        error: The exception the run ended with.
        file: The YAML file of the assistant whose model call failed.
    """
    if not isinstance(error, ModelCallError) or is_transient(error.cause):
        return None
    status = getattr(error.cause, "status_code", None)
    if not isinstance(status, int):
        return NOT_TRANSIENT.format(file=file)
    template = _ADVICE_BY_STATUS.get(status, REJECTED)
    return template.format(status=status, file=file)
