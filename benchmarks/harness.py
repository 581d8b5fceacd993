"""What every benchmark shares: results, targets, timing, machine facts, the network guard."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "Mode",
    "SectionResult",
    "Target",
    "loopback_only",
    "machine_info",
    "median",
    "ratio",
    "rounded",
    "time_call",
]

Mode = Literal["quick", "full"]
"""``quick`` proves the benchmarks still run (tiny sizes); ``full`` measures."""

PACKAGES = (
    "assistant-graph",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langchain",
    "langchain-core",
    "langchain-openai",
    "deepagents",
    "pyinstrument",
    "tiktoken",
)
"""Packages whose versions are recorded with the results."""

_LOOPBACK = ("127.", "::1", "localhost")
NETWORK_REFUSED = "benchmarks may not open network connections (tried {host})"


@dataclass(frozen=True)
class Target:
    """A goal from the issue, checked against a ratio measured in the same run."""

    name: str
    """What is compared, e.g. ``"this library / LangChain @tool, per hop"``."""
    value: float | None
    """The measured ratio (None when a column could not be measured)."""
    limit: float
    """The bound the ratio must respect."""
    comparison: Literal["<=", "<", ">="]
    """How ``value`` must compare with ``limit``."""

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None when it could not be measured)."""
        if self.value is None or math.isnan(self.value):
            return None
        if self.comparison == "<=":
            return self.value <= self.limit
        if self.comparison == "<":
            return self.value < self.limit
        return self.value >= self.limit

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with ``met``."""
        return {**asdict(self), "met": self.met}


@dataclass
class SectionResult:
    """What one benchmark measured: a table, its ratios, the targets and notes."""

    name: str
    """Key in the JSON output, e.g. ``"hop_overhead"``."""
    title: str
    """Heading of the printed table."""
    params: dict[str, Any] = field(default_factory=dict)
    """Sizes and settings of this run."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """The table: one dict per row, the same keys in every row."""
    ratios: dict[str, Any] = field(default_factory=dict)
    """The ratios the section reports (numbers, or nested dicts of numbers)."""
    targets: list[Target] = field(default_factory=list)
    """The issue's targets that this section checks."""
    notes: list[str] = field(default_factory=list)
    """Findings and caveats, in sentences."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Detail that does not fit the table (breakdowns, profiles)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "title": self.title,
            "params": self.params,
            "rows": self.rows,
            "ratios": self.ratios,
            "targets": [target.to_dict() for target in self.targets],
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
        }


def time_call(function: Callable[[], Any]) -> float:
    """Seconds one call of ``function`` takes (wall clock)."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else math.nan


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 3 places, or None if either is missing."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def machine_info() -> dict[str, Any]:
    """Platform, Python, CPU count and the versions of the packages measured."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


@contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse every non-loopback connection while the block runs.

    Everything measured runs in-process or on 127.0.0.1; this makes sure a library
    (tracing, a tokenizer download) cannot quietly reach the network and skew a number.
    """
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not host.startswith(_LOOPBACK):
                raise ConnectionRefusedError(NETWORK_REFUSED.format(host=host))
        return real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]


def rounded(values: Mapping[str, Any], places: int = 3) -> dict[str, Any]:
    """``values`` with floats rounded, for readable JSON."""
    return {
        key: round(value, places) if isinstance(value, float) else value
        for key, value in values.items()
    }
