"""Configuration problems in plain words: malformed YAML and invalid assistant fields.

PyYAML and pydantic describe mistakes in their own terms ("<unicode string>", "Extra
inputs are not permitted"). The functions here turn them into
:class:`~assistant_graph._errors.ConfigProblem` values that name the file, the line and
column (with the offending line shown under a caret) or the field, and say what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from assistant_graph._errors import ConfigProblem

__all__ = [
    "field_path",
    "one_line",
    "unreadable_problem",
    "validation_problems",
    "yaml_problem",
]

MALFORMED_YAML = "malformed YAML: {problem}"
STARTS_HERE = "{problem} ({context}, which starts here)"
UNKNOWN_FIELD = "unknown field{suggestion}; {owner} has the fields {fields}"
ASSISTANT = "an assistant"
NESTED_OWNER = "{field} (in an assistant)"
DID_YOU_MEAN = " (did you mean {name!r}?)"
MISSING_FIELD = "missing: every assistant needs this field"
NOT_UTF8 = "not UTF-8 text: {error}"
CARET = "^"
_PLAIN_WORDS = {"'<stream end>'": "the end of the file", "end of stream": "end of the file"}


def yaml_problem(file: str, text: str, error: yaml.YAMLError) -> ConfigProblem:
    """The problem of a YAML parse error, at its line and column, the line shown.

    When the parser only notices the mistake at the end of the file (an unclosed bracket
    or quote), the position shown is where the unclosed construct starts.
    """
    problem = _plain(getattr(error, "problem", None) or str(error))
    mark = getattr(error, "problem_mark", None)
    context = getattr(error, "context", None)
    context_mark = getattr(error, "context_mark", None)
    lines = text.splitlines()
    if context_mark is not None and (mark is None or not _line_at(lines, mark.line).strip()):
        mark, problem = context_mark, STARTS_HERE.format(problem=problem, context=_plain(context))
    message = MALFORMED_YAML.format(problem=problem)
    if mark is None:
        return ConfigProblem(file, "", message)
    return ConfigProblem(
        file,
        "",
        message,
        line=mark.line + 1,
        column=mark.column + 1,
        excerpt=_excerpt(_line_at(lines, mark.line), mark.column),
    )


def unreadable_problem(file: str, error: UnicodeDecodeError) -> ConfigProblem:
    """The problem of a file that is not UTF-8 text."""
    return ConfigProblem(file, "", NOT_UTF8.format(error=error))


def validation_problems(
    source: str,
    error: ValidationError,
    fields: Sequence[str],
    nested: Mapping[str, Sequence[str]] | None = None,
) -> list[ConfigProblem]:
    """One problem per validation error of a document, by field, in plain words.

    Args:
        source: The file (or description of the source).
        error: The validation error of ``AssistantSchema``.
        fields: The fields an assistant has, to suggest one for a misspelt name.
        nested: The fields of fields that are mappings themselves (e.g. ``budget``).
    """
    return [
        ConfigProblem(source, field_path(detail["loc"]), _message(detail, fields, nested or {}))
        for detail in error.errors(include_url=False)
    ]


def one_line(error: ValidationError, whole: str = "") -> str:
    """A validation error in one line, ``field.sub: message; other: message``; ``whole``
    names a problem of the whole value (a location of its own it does not have)."""
    return "; ".join(
        f"{'.'.join(map(str, detail['loc'])) or whole}: {detail['msg']}"
        for detail in error.errors(include_url=False)
    )


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic location as a field path, e.g. ``sub_assistants[1]``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _message(detail: Any, fields: Sequence[str], nested: Mapping[str, Sequence[str]]) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        loc = detail["loc"]
        owner = str(loc[0]) if len(loc) == 2 and str(loc[0]) in nested else None
        known = nested[owner] if owner else fields
        key = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(key, known, n=1)
        suggestion = DID_YOU_MEAN.format(name=close[0]) if close else ""
        named = NESTED_OWNER.format(field=owner) if owner else ASSISTANT
        return UNKNOWN_FIELD.format(suggestion=suggestion, owner=named, fields=", ".join(known))
    if kind == "missing":
        return MISSING_FIELD
    return " ".join(str(detail["msg"]).split())


def _plain(text: str | None) -> str:
    plain = " ".join(str(text or "").split())
    for term, words in _PLAIN_WORDS.items():
        plain = plain.replace(term, words)
    return plain


def _line_at(lines: Sequence[str], index: int) -> str:
    return lines[index] if 0 <= index < len(lines) else ""


def _excerpt(line: str, column: int) -> tuple[str, ...]:
    """The line and a caret under ``column`` (tabs kept, so the caret lines up)."""
    padding = "".join(char if char == "\t" else " " for char in line[:column])
    return (line, padding + CARET)
