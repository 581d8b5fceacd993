"""3. Long threads: time per turn and stored bytes against the number of turns N.

One thread: every turn the user asks for a revision; the ``proxy`` delegates to the
``writer``, resuming the same sub-conversation (turn 1 opens it), and answers. After N
turns the proxy's conversation holds 4N messages and the writer's 2N. Ideally a turn
costs the same at N = 80 as at N = 10, and storage grows linearly.

The rows: the library before (f) (patched back), the library today keeping LangGraph's
full checkpoint history, the library today with :func:`assistant_graph.compact_thread`
after every turn (what the CLI does unless ``--keep-history``), and a few variants of
:mod:`benchmarks.storage_variants`. Each ends with a check that the thread reloads whole
(the writer saw its full sub-conversation on the last turn, and the stored state holds
4N proxy messages and 2N writer messages).
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from assistant_graph import (
    AssistantCatalog,
    build_assistant_graph,
    compact_thread,
    store_messages_once,
)
from benchmarks.harness import Mode, SectionResult, Target, median, ratio, time_call
from benchmarks.policies import DelegateOnce, last_uid, scripted, sub_assistant_call
from benchmarks.savers import Store, open_store
from benchmarks.storage_breakdown import storage_breakdown
from benchmarks.storage_variants import StorageVariant, applied

__all__ = [
    "VARIANTS",
    "LongThread",
    "proxy_policy",
    "run",
    "thread_catalog",
    "writer_policy",
]

SIZES = {"quick": (2, 4), "full": (10, 20, 40, 80)}
BREAKDOWN_AT = {"quick": 4, "full": 40}
WINDOW = 5
"""Turns whose median time is reported as the time per turn at N (the last ones up to N)."""
LOAD_SAMPLES = 5
"""Thread loads (``get_state``) timed at each N; their median is reported."""
THREAD_ID = "long-thread"
DRAFT = (
    "Mars is the fourth planet from the Sun, a cold desert world about half the size of "
    "Earth, with the tallest volcano and the deepest canyon in the Solar System. "
) * 3
REPLY = "Here is the revised text; tell me what to change next."

_STEPS = "per-step checkpoints (mid-run crash recovery)"
_HISTORY = "checkpoint history (time travel)"
VARIANTS = (
    StorageVariant(
        "before_f",
        "before (f): recorded tool messages keep the sub-conversation (patched back)",
        fixes=frozenset({"keep_artifact_state"}),
    ),
    StorageVariant("today", "today, full history kept (SqliteSaver as it is)"),
    StorageVariant(
        "once",
        "today, full history, store_messages_once (open_checkpointer's default)",
        messages_once=True,
    ),
    StorageVariant(
        "compact",
        "today + compact_thread after each turn (CLI default)",
        compact=True,
        loses=_HISTORY,
    ),
    StorageVariant("memory", "today, InMemorySaver, full history", saver="memory"),
    StorageVariant("exit", "today, durability='exit'", durability="exit", loses=_STEPS),
    StorageVariant(
        "exit+compact",
        "today, durability='exit' + compact_thread",
        durability="exit",
        compact=True,
        loses=f"{_STEPS}; {_HISTORY}",
    ),
    StorageVariant(
        "delta",
        "today, messages as DeltaChannel (snapshot every 100)",
        fixes=frozenset({"delta_messages"}),
    ),
)
"""The variants measured, in the order of the table."""
TARGETED = ("today", "once", "compact")
"""Variants checked against the targets; their threads run several times for timing."""
BREAKDOWN_VARIANTS = ("before_f", "today", "once", "compact")
"""Variants whose stored bytes are attributed to causes (see :mod:`storage_breakdown`)."""
TIMING_REPEATS = {"quick": 1, "full": 5}
"""Runs of the targeted variants' threads; time per turn is their median."""
NOTES = (
    "bytes: serialized payload in the store (SQLite: checkpoint, metadata and writes "
    "columns; InMemorySaver: its byte strings); 'file kB' is the SQLite file after a WAL "
    "checkpoint (compaction frees pages for reuse, it does not shrink the file).",
    "ms/turn at N: median of the turns N-4..N, zero-latency scripted model, compact_thread "
    "included where used; every run loads the thread first ('load ms': get_state), which "
    "grows with N in every variant.",
    "with the full history kept, every checkpoint row holds the whole state, so stored "
    "bytes grow as N^2; compact_thread keeps one checkpoint, so they grow as N.",
)


def thread_catalog() -> AssistantCatalog:
    """A ``proxy`` that delegates to a callable ``writer``."""
    return AssistantCatalog.from_schemas(
        [
            {
                "name": "proxy",
                "description": "Talks with the user.",
                "instructions": "You are the user's proxy; the writer writes.",
                "sub_assistants": ["writer"],
            },
            {
                "name": "writer",
                "description": "Writes and revises text.",
                "instructions": "You write and revise short texts.",
                "callable": True,
            },
        ]
    )


@dataclass
class _Writer:
    """The writer's policy; remembers how many messages its last call received."""

    last_seen: int = 0

    def next_reply(self, messages: list[BaseMessage], tools: list[str]) -> AIMessage:
        self.last_seen = len(messages)
        return AIMessage(content=DRAFT)


def _proxy_calls(messages: Any) -> list[Any]:
    return [sub_assistant_call("writer", resume_conversation_uid=last_uid(messages))]


def proxy_policy() -> DelegateOnce:
    """The proxy: delegate every request to the writer, resuming its conversation."""
    return DelegateOnce(calls=_proxy_calls, answer=REPLY)


def writer_policy() -> DelegateOnce:
    """The writer: answer every request with a draft."""
    return DelegateOnce(answer=DRAFT)


class LongThread:
    """One thread of one variant, run turn by turn (use as a context manager).

    Its saver is opened for it (a SQLite file in ``folder`` named after the variant, or
    memory), unless ``store`` gives one.
    """

    def __init__(self, variant: StorageVariant, folder: Path, store: Store | None = None) -> None:
        self.variant = variant
        self.folder = folder
        self.name = re.sub(r"[^\w+.-]", "_", variant.key)
        self.path = folder / f"{self.name}.sqlite"
        self.writer = _Writer()
        self.turns = 0
        self.compact_seconds: list[float] = []
        """Seconds ``compact_thread`` took after each turn (part of the turn's time)."""
        self._given_store = store

    def __enter__(self) -> LongThread:
        self._stack = ExitStack()
        self._stack.enter_context(applied(self.variant.fixes, self.variant.snapshot_frequency))
        self.store = self._given_store or self._stack.enter_context(
            open_store(
                self.variant.saver,
                self.folder,
                self.name,
                wrap=store_messages_once if self.variant.messages_once else None,
            )
        )
        self.saver = self.store.saver
        self.thread_id = self.store.thread_id(THREAD_ID)
        self.config = {"configurable": {"thread_id": self.thread_id}}

        def model(schema: Any) -> Any:
            if schema.name == "writer":
                return scripted(self.writer)  # type: ignore[arg-type]
            return scripted(proxy_policy())

        self.graph = build_assistant_graph(
            "proxy", thread_catalog(), model=model, checkpointer=self.saver
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.__exit__(*exc_info)

    def turn(self) -> float:
        """Run one turn (and the variant's compaction); seconds it took."""
        self.turns += 1
        message = HumanMessage(f"Turn {self.turns}: please revise the text once more.")
        options = {"durability": self.variant.durability} if self.variant.durability else {}
        seconds = time_call(
            lambda: self.graph.invoke({"messages": [message]}, self.config, **options)
        )
        if self.variant.compact:
            self.compact_seconds.append(time_call(lambda: compact_thread(self.graph, self.config)))
            seconds += self.compact_seconds[-1]
        return seconds

    def load_ms(self) -> float:
        """Milliseconds to load the thread's state, as every run does first (median)."""
        times = [time_call(lambda: self.graph.get_state(self.config)) for _ in range(LOAD_SAMPLES)]
        return round(1000 * median(times), 2)

    def stored(self) -> dict[str, int]:
        """What the store holds now: payload bytes, and the SQLite file's size."""
        stored = {"bytes": self.store.stored_bytes([self.thread_id])}
        file_bytes = self.store.file_bytes()
        return stored if file_bytes is None else {**stored, "file_bytes": file_bytes}

    def reloads_whole(self) -> bool:
        """Whether the stored thread has every message, and the writer saw its history."""
        values = self.graph.get_state(self.config).values
        [sub] = values["sub_assistant_states"].values()
        expected = 2 * self.turns
        return (
            len(values["messages"]) == 2 * expected
            and len(sub["messages"]) == expected
            and self.writer.last_seen == expected  # system prompt + 2N - 1 messages
        )


def measure_variant(
    variant: StorageVariant, sizes: tuple[int, ...], folder: Path, breakdown_at: int | None = None
) -> dict[str, Any]:
    """Run the thread to the largest N; bytes and time per turn at every N of ``sizes``."""
    points: dict[int, dict[str, Any]] = {}
    times: list[float] = []
    breakdown: dict[str, int] | None = None
    with LongThread(variant, folder) as thread:
        for turn in range(1, max(sizes) + 1):
            times.append(thread.turn())
            if turn in sizes:
                window = times[max(0, turn - WINDOW) :]
                compacting = thread.compact_seconds[max(0, turn - WINDOW) :]
                points[turn] = {
                    **thread.stored(),
                    "ms_per_turn": round(1000 * median(window), 2),
                    "load_ms": thread.load_ms(),
                    "compact_ms": round(1000 * median(compacting), 2) if compacting else None,
                }
            if turn == breakdown_at and thread.store.kind == "sqlite":
                breakdown = storage_breakdown(thread.store.base.conn)  # type: ignore[attr-defined]
        whole = thread.reloads_whole()
    thread.path.unlink(missing_ok=True)  # the next run of the variant starts a new file
    return {"points": points, "reloads_whole": whole, "breakdown": breakdown}


def _median_times(measured: dict[str, Any], again: list[dict[str, Any]]) -> None:
    """Replace the times at each N by their medians over repeated runs of the thread."""
    for n, point in measured["points"].items():
        for key in ("ms_per_turn", "compact_ms"):
            if point[key] is not None:
                runs = [point[key], *(other["points"][n][key] for other in again)]
                point[key] = round(median(runs), 2)


def _row(
    variant: StorageVariant, measured: Mapping[str, Any], sizes: tuple[int, ...]
) -> dict[str, Any]:
    points = measured["points"]
    first, half, last = sizes[0], sizes[-2] if len(sizes) > 1 else sizes[0], sizes[-1]
    row: dict[str, Any] = {"variant": variant.key, "what": variant.label}
    row |= {f"kB N={n}": round(points[n]["bytes"] / 1000, 1) for n in sizes}
    row |= {f"ms/turn N={n}": points[n]["ms_per_turn"] for n in sizes}
    row[f"ms N={last}/N={first}"] = ratio(points[last]["ms_per_turn"], points[first]["ms_per_turn"])
    row |= {f"load ms N={n}": points[n]["load_ms"] for n in (first, last)}
    row[f"compact ms N={last}"] = points[last]["compact_ms"]
    row[f"bytes N={last}/N={half}"] = ratio(points[last]["bytes"], points[half]["bytes"])
    file_bytes = points[last].get("file_bytes")
    row[f"file kB N={last}"] = round(file_bytes / 1000, 1) if file_bytes is not None else None
    row["growth exponent"] = _exponent(points[half]["bytes"], points[last]["bytes"], half, last)
    row["reloads whole"] = measured["reloads_whole"]
    row["gives up"] = variant.loses or "-"
    return row


def _exponent(smaller: float, larger: float, n_small: int, n_large: int) -> float | None:
    """k in bytes ~ N^k between two sizes (1: linear, 2: quadratic)."""
    if smaller <= 0 or larger <= 0 or n_small == n_large:
        return None
    return round(math.log(larger / smaller) / math.log(n_large / n_small), 2)


def run(mode: Mode) -> SectionResult:
    """Run every variant's thread and compare growth of time per turn and storage."""
    sizes = SIZES[mode]
    result = SectionResult(
        name="long_threads",
        title="3. Long threads: time per turn and stored bytes against N turns",
        params={"n": list(sizes), "window_turns": WINDOW, "targeted": list(TARGETED)},
    )
    measured: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="assistant-graph-bench-") as folder:
        for variant in VARIANTS:
            at = BREAKDOWN_AT[mode] if variant.key in BREAKDOWN_VARIANTS else None
            measured[variant.key] = measure_variant(variant, sizes, Path(folder), at)
            if variant.key in TARGETED:
                again = [
                    measure_variant(variant, sizes, Path(folder))
                    for _ in range(1, TIMING_REPEATS[mode])
                ]
                _median_times(measured[variant.key], again)
    result.params["thread_runs_of_targeted"] = TIMING_REPEATS[mode]
    first, half, last = sizes[0], sizes[-2], sizes[-1]
    for variant in VARIANTS:
        row = _row(variant, measured[variant.key], sizes)
        result.rows.append(row)
        result.ratios[variant.key] = {
            f"ms_per_turn_N{last}_vs_N{first}": row[f"ms N={last}/N={first}"],
            f"bytes_N{last}_vs_N{half}": row[f"bytes N={last}/N={half}"],
        }
    _add_targets(result, first, half, last)
    _add_breakdown(result, measured, sizes, mode)
    result.notes.extend(NOTES)
    return result


def _add_targets(result: SectionResult, first: int, half: int, last: int) -> None:
    for key in TARGETED:
        ratios = result.ratios[key]
        result.targets.append(
            Target(
                f"time per turn N={last} / N={first}, {key}",
                ratios[f"ms_per_turn_N{last}_vs_N{first}"],
                1.5,
                "<=",
            )
        )
        result.targets.append(
            Target(
                f"stored bytes N={last} / N={half}, {key}",
                ratios[f"bytes_N{last}_vs_N{half}"],
                2.2,
                "<=",
            )
        )


def _add_breakdown(
    result: SectionResult, measured: Mapping[str, Any], sizes: tuple[int, ...], mode: Mode
) -> None:
    result.extra["bytes_by_cause"] = {"at_n": BREAKDOWN_AT[mode]}
    for key in BREAKDOWN_VARIANTS:
        breakdown = measured[key]["breakdown"] or {}
        total = sum(breakdown.values()) or 1
        result.extra["bytes_by_cause"][key] = {
            "bytes": breakdown,
            "share": {cause: round(size / total, 3) for cause, size in breakdown.items()},
        }
    last = sizes[-1]
    base = measured["today"]["points"][last]["bytes"]
    result.extra[f"bytes_saved_at_N{last}_vs_today"] = {
        key: round(1 - value["points"][last]["bytes"] / base, 3)
        for key, value in measured.items()
        if key != "today"
    }
