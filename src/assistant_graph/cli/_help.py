"""Help text that reads as conventional command-line help.

typer writes a required argument as ``{name}`` on the usage line and a flag as taking a
``<bool>``; here the usage line reads ``assistant-graph run [OPTIONS] NAME [MESSAGE]``,
flags (``--json``, ``--quiet``, ``--help``) show no value placeholder, and options show
what they take (``DIR``, ``ID``, ``ANSWER``).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup

__all__ = ["FLAG", "PlainUsageCommand", "PlainUsageGroup"]

FLAG = ""
"""The metavar of a flag: nothing, since it takes no value."""


class PlainUsageCommand(TyperCommand):
    """A command whose usage line writes required arguments as ``NAME``, not ``{name}``,
    and whose ``--help`` shows no value."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """The usage line's pieces after the command name, braces removed."""
        return [_plain(piece) for piece in super().collect_usage_pieces(ctx)]

    def get_help_option(self, ctx: Any) -> Any:
        """The ``--help`` flag, shown without a value."""
        return _as_flag(super().get_help_option(ctx))


class PlainUsageGroup(TyperGroup):
    """The command group, whose ``--help`` shows no value."""

    def get_help_option(self, ctx: Any) -> Any:
        """The ``--help`` flag, shown without a value."""
        return _as_flag(super().get_help_option(ctx))


def _plain(piece: str) -> str:
    if piece.startswith("{") and piece.endswith("}"):
        return piece[1:-1]
    return piece


def _as_flag(option: Any) -> Any:
    if option is not None and option.metavar is None:
        option.metavar = FLAG
    return option
