"""Human in the loop on the command line: showing input requests and reading answers.

A run that waits for the person ends with exit code 3 and lists its requests; ``run
--thread ID --resume ANSWER`` answers them. ``ANSWER`` is either a JSON object mapping
request ids to answers, or plain text given to every pending request. ``chat`` asks the
person inline instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from langgraph.types import Command, Interrupt

from assistant_graph.cli._failures import CliFailure
from assistant_graph.cli._hints import CommandLine

__all__ = [
    "RESUME_MANY",
    "RESUME_ONE",
    "ask_inline",
    "describe_request",
    "resume_command",
    "resume_hint",
    "write_requests",
]

PATH_JOIN = " > "
REQUEST_LINE = "[{id}] {path} {verb}: {question}"
ASKS = "asks"
WANTS_APPROVAL = "wants approval"
APPROVAL_PROMPT = "approve? [yes/no/or say why not] > "
ANSWER_PROMPT = "answer > "
WAITING_HEADER = "waiting for input on thread {thread}:"
RESUME_HINT = "answer with: {command}"
RESUME_MANY_NOTE = " (or one ANSWER for all)"
IN_MEMORY_WAITING = (
    "the thread was in memory only (--db :memory:), so no later command can answer it; "
    "chat answers questions as they come: {command}"
)
RESUME_ONE = "ANSWER"
"""The placeholder of the answer in a suggested ``--resume``."""
RESUME_MANY = '\'{"<id>": "ANSWER", ...}\''
"""The placeholder of answers by request id in a suggested ``--resume``."""
UNKNOWN_IDS = (
    "--resume names keys that are not pending request ids: {unknown} (pending: {pending}); "
    "give a JSON object of pending ids to answers, or one plain answer for all of them."
)


def describe_request(item: Interrupt) -> str:
    """One line for an input request: its id, who asks, and what."""
    value = _payload(item)
    verb = WANTS_APPROVAL if value.get("kind") == "approval" else ASKS
    path = PATH_JOIN.join(value.get("path") or []) or "assistant"
    question = " ".join(str(value.get("question", "")).split())
    return REQUEST_LINE.format(id=item.id, path=path, verb=verb, question=question)


def write_requests(requests: Sequence[Interrupt], thread: str, stream: TextIO) -> None:
    """Write the pending requests, one per line, under a header naming the thread."""
    stream.write(WAITING_HEADER.format(thread=thread) + "\n")
    for item in requests:
        stream.write(f"  {describe_request(item)}\n")
    stream.flush()


def resume_hint(command: CommandLine, thread: str, pending: int) -> str:
    """How to answer, as a command line that works when pasted."""
    if command.in_memory:
        return IN_MEMORY_WAITING.format(command=command.chat(None))
    if pending == 1:
        return RESUME_HINT.format(command=command.run(thread, "--resume", RESUME_ONE))
    line = command.run(thread, "--resume", RESUME_MANY)
    return RESUME_HINT.format(command=line) + RESUME_MANY_NOTE


def resume_command(answer: str, pending: Sequence[Interrupt]) -> Command[Any]:
    """The ``Command(resume={id: answer, ...})`` that ``--resume ANSWER`` stands for.

    A JSON object whose keys are request ids answers each of those requests (requests it
    leaves out stay pending). Anything else, including a JSON object of other keys such
    as ``{"approved": false, "reason": "..."}``, is one answer given to every pending
    request.

    Raises:
        CliFailure: The object names ids that are not pending.
    """
    ids = [item.id for item in pending]
    parsed = _json_object(answer)
    if parsed and (any(key in ids for key in parsed) or all(map(_looks_like_id, parsed))):
        unknown = [key for key in parsed if key not in ids]
        if unknown:
            raise CliFailure(UNKNOWN_IDS.format(unknown=", ".join(unknown), pending=", ".join(ids)))
        return Command(resume=dict(parsed))
    value: Any = parsed if parsed is not None else answer
    return Command(resume=dict.fromkeys(ids, value))


def ask_inline(pending: Sequence[Interrupt], read: TextIO, prompt: TextIO) -> Command[Any] | None:
    """Ask the person each pending request in turn; None if input ends first."""
    answers: dict[str, str] = {}
    for item in pending:
        prompt.write(describe_request(item) + "\n")
        approval = _payload(item).get("kind") == "approval"
        prompt.write(APPROVAL_PROMPT if approval else ANSWER_PROMPT)
        prompt.flush()
        line = read.readline()
        if not line:
            return None
        answers[item.id] = line.rstrip("\n")
    return Command(resume=answers)


def _payload(item: Interrupt) -> Mapping[str, Any]:
    value = item.value
    return value if isinstance(value, Mapping) else {"question": str(value)}


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _looks_like_id(key: str) -> bool:
    """Interrupt ids are 32 hex digits."""
    return len(key) == 32 and all(char in "0123456789abcdef" for char in key.lower())
