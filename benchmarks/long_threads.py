"""3. Long threads: time per turn and stored bytes against the number of turns N.

One thread: every turn the user asks for a revision; the ``proxy`` delegates to the
``writer``, resuming the same sub-conversation (turn 1 opens it), and answers. After N
turns the proxy's conversation holds 4N messages and the writer's 2N. Ideally a turn
costs the same at N = 80 as at N = 10, and storage grows linearly.

Every variant of :mod:`benchmarks.storage_variants` runs the same thread; each ends with a
check that the thread reloads whole (the writer saw its full sub-conversation on the last
turn, and the stored state holds 4N proxy messages and 2N writer messages).
"""

from __future__ import annotations

import math
import re
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from assistant_graph import AssistantCatalog, build_assistant_graph
from benchmarks.harness import Mode, SectionResult, Target, median, ratio, time_call
from benchmarks.policies import DelegateOnce, last_uid, scripted, sub_assistant_call
from benchmarks.storage_breakdown import storage_breakdown
from benchmarks.storage_variants import (
    ChannelBlobSqliteSaver,
    StorageVariant,
    applied,
    prune_thread,
)

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
BREAKDOWN_VARIANTS = ("before_f", "baseline")
"""Variants whose stored bytes are attributed to causes (see :mod:`storage_breakdown`)."""
WINDOW = 5
LOAD_SAMPLES = 5
"""Thread loads (``get_state``) timed at each N; their median is reported."""
"""Turns whose median time is reported as the time per turn at N (the last ones up to N)."""
THREAD_ID = "long-thread"
DRAFT = (
    "Mars is the fourth planet from the Sun, a cold desert world about half the size of "
    "Earth, with the tallest volcano and the deepest canyon in the Solar System. "
) * 3
REPLY = "Here is the revised text; tell me what to change next."

_DELTAS = frozenset({"delta_messages", "delta_sub_states"})
_ECG = _DELTAS | {"trim_send"}
_STEPS = "per-step checkpoints (mid-run crash recovery)"
_SNAP = "snapshots every 1000"
VARIANTS = (
    StorageVariant(
        "before_f",
        "before (f): artifacts carry the sub-conversation",
        fixes=frozenset({"keep_artifact_state"}),
    ),
    StorageVariant("baseline", "this library today (f), SqliteSaver"),
    StorageVariant("memory", "this library today (f), InMemorySaver", saver="memory"),
    StorageVariant("a", "(a) durability='exit'", durability="exit", loses=_STEPS),
    StorageVariant("b", "(b) SQLite values per (channel, version)", saver="sqlite_blobs"),
    StorageVariant("c", "(c) messages as DeltaChannel", fixes=frozenset({"delta_messages"})),
    StorageVariant("d", "(d) prune to the latest checkpoint", prune="keep_latest", loses="history"),
    StorageVariant("d_sub", "(d') prune finished sub-assistant runs", prune="subgraphs"),
    StorageVariant("e", "(e) trimmed Send payload", fixes=frozenset({"trim_send"})),
    StorageVariant("e+c", "(e)+(c)", fixes=frozenset({"trim_send", "delta_messages"})),
    StorageVariant("e+c+g", "(e)+(c)+(g) sub-conversations written once", fixes=_ECG),
    StorageVariant(
        "e+c+g+d_sub",
        f"(e)+(c)+(g)+(d'), {_SNAP}",
        fixes=_ECG,
        prune="subgraphs",
        snapshot_frequency=1000,
    ),
    StorageVariant(
        "e+c+g+a",
        f"(e)+(c)+(g)+(a), {_SNAP}",
        fixes=_ECG,
        durability="exit",
        snapshot_frequency=1000,
        loses=_STEPS,
    ),
    StorageVariant(
        "c+g+a",
        f"(c)+(g)+(a), {_SNAP}",
        fixes=_DELTAS,
        durability="exit",
        snapshot_frequency=1000,
        loses=_STEPS,
    ),
    StorageVariant(
        "e+c+g+a/100",
        "(e)+(c)+(g)+(a), snapshots every 100",
        fixes=_ECG,
        durability="exit",
        loses=_STEPS,
    ),
    StorageVariant(
        "e+c+g+a/memory",
        f"(e)+(c)+(g)+(a), {_SNAP}, InMemorySaver",
        saver="memory",
        fixes=_ECG,
        durability="exit",
        snapshot_frequency=1000,
        loses=_STEPS,
    ),
    StorageVariant(
        "e+d",
        "(e)+(d): per-step checkpoints while a run lasts, then only the latest",
        fixes=frozenset({"trim_send"}),
        prune="keep_latest",
        loses="history",
    ),
    StorageVariant(
        "e+a+d",
        "(e)+(a)+(d)",
        fixes=frozenset({"trim_send"}),
        durability="exit",
        prune="keep_latest",
        loses="history",
    ),
)
"""The variants measured, the unchanged library first."""
RECOMMENDED = "e+d"
"""Meets the storage target and keeps per-step checkpoints (crash recovery mid-run)."""
FASTEST = "e+c+g+a"
"""Meets the storage target with the least time growth, but checkpoints only at run end."""
QUICK_VARIANTS = ("before_f", "baseline", "memory", "b", "e+c+g+d_sub", RECOMMENDED, FASTEST)
NOTES = (
    "bytes: serialized payload in the store (SQLite: checkpoint, metadata, writes and blob "
    "columns; InMemorySaver: its byte strings); the JSON also has the SQLite file size.",
    "ms/turn at N: median of the turns N-4..N, zero-latency scripted model; every run "
    "loads the thread first ('load ms': get_state), which grows with N in every variant.",
    "per-step durability (LangGraph's default; the crash-recovery guarantee needs it) "
    "stores the resumed sub-conversation in every Send payload and sub-assistant input: "
    "with history kept no per-step variant is linear; pruning to the latest checkpoint "
    "after each completed run (d) is, and so is (a), which checkpoints only at run end.",
)
TIMING_REPEATS = {"quick": 1, "full": 5}
"""Runs of the recommended and fastest variants' threads; time per turn is their median."""


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


@contextmanager
def _saver(kind: str, path: Path) -> Iterator[tuple[BaseCheckpointSaver[Any], Any]]:
    if kind == "memory":
        yield InMemorySaver(), None
        return
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        saver_class = ChannelBlobSqliteSaver if kind == "sqlite_blobs" else SqliteSaver
        saver = saver_class(connection)
        saver.setup()
        yield saver, connection
    finally:
        connection.close()


def _payload_bytes(value: Any) -> int:
    """Bytes of every serialized payload held in an ``InMemorySaver``'s dicts."""
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_payload_bytes(item) for item in value.values())
    if isinstance(value, tuple | list):
        return sum(_payload_bytes(item) for item in value)
    return 0


def stored_bytes(saver: BaseCheckpointSaver[Any], connection: Any, path: Path) -> dict[str, int]:
    """Payload bytes of the store, and for SQLite the database file's size."""
    if connection is None:
        memory: Any = saver
        total = sum(_payload_bytes(part) for part in (memory.storage, memory.writes, memory.blobs))
        return {"bytes": total}
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    queries = [
        "SELECT sum(length(checkpoint) + length(metadata)) FROM checkpoints",
        "SELECT sum(length(value)) FROM writes",
    ] + (["SELECT sum(length(blob)) FROM blobs"] if "blobs" in tables else [])
    total = sum(connection.execute(query).fetchone()[0] or 0 for query in queries)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [path, path.with_name(path.name + "-wal")]
    return {"bytes": total, "file_bytes": sum(f.stat().st_size for f in files if f.exists())}


class LongThread:
    """One thread of one variant, run turn by turn (use as a context manager)."""

    def __init__(self, variant: StorageVariant, folder: Path) -> None:
        self.variant = variant
        self.path = folder / (re.sub(r"[^\w+.-]", "_", variant.key) + ".sqlite")
        self.writer = _Writer()
        self.turns = 0
        self.config = {"configurable": {"thread_id": THREAD_ID}}

    def __enter__(self) -> LongThread:
        self._patches = applied(self.variant.fixes, self.variant.snapshot_frequency)
        self._patches.__enter__()
        self._saver_cm = _saver(self.variant.saver, self.path)
        self.saver, self.connection = self._saver_cm.__enter__()

        def model(schema: Any) -> Any:
            if schema.name == "writer":
                return scripted(self.writer)  # type: ignore[arg-type]
            return scripted(proxy_policy())

        self.graph = build_assistant_graph(
            "proxy", thread_catalog(), model=model, checkpointer=self.saver
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._saver_cm.__exit__(*exc_info)
        self._patches.__exit__(*exc_info)

    def turn(self) -> float:
        """Run one turn (and the variant's pruning); seconds it took."""
        self.turns += 1
        message = HumanMessage(f"Turn {self.turns}: please revise the text once more.")
        options = {"durability": self.variant.durability} if self.variant.durability else {}
        seconds = time_call(
            lambda: self.graph.invoke({"messages": [message]}, self.config, **options)
        )
        if self.variant.prune and self.connection is not None:
            seconds += time_call(
                lambda: prune_thread(self.connection, THREAD_ID, self.variant.prune)
            )
        return seconds

    def load_ms(self) -> float:
        """Milliseconds to load the thread's state, as every run does first (median)."""
        times = [time_call(lambda: self.graph.get_state(self.config)) for _ in range(LOAD_SAMPLES)]
        return round(1000 * median(times), 2)

    def stored(self) -> dict[str, int]:
        """What the store holds now."""
        return stored_bytes(self.saver, self.connection, self.path)

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
                points[turn] = {
                    **thread.stored(),
                    "ms_per_turn": round(1000 * median(window), 2),
                    "load_ms": thread.load_ms(),
                }
            if turn == breakdown_at and thread.connection is not None:
                breakdown = storage_breakdown(thread.connection)
        whole = thread.reloads_whole()
    thread.path.unlink(missing_ok=True)
    return {"points": points, "reloads_whole": whole, "breakdown": breakdown}


def _median_times(measured: dict[str, Any], again: list[dict[str, Any]]) -> None:
    """Replace the time per turn at each N by its median over repeated runs of the thread."""
    for n, point in measured["points"].items():
        runs = [point["ms_per_turn"], *(other["points"][n]["ms_per_turn"] for other in again)]
        point["ms_per_turn"] = round(median(runs), 2)


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
    row[f"bytes N={last}/N={half}"] = ratio(points[last]["bytes"], points[half]["bytes"])
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
    keys = {v.key for v in VARIANTS} if mode == "full" else set(QUICK_VARIANTS)
    variants = [variant for variant in VARIANTS if variant.key in keys]
    result = SectionResult(
        name="long_threads",
        title="3. Long threads: time per turn and stored bytes against N turns",
        params={
            "n": list(sizes),
            "window_turns": WINDOW,
            "recommended": RECOMMENDED,
            "fastest": FASTEST,
        },
    )
    measured: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="assistant-graph-bench-") as folder:
        for variant in variants:
            at = BREAKDOWN_AT[mode] if variant.key in BREAKDOWN_VARIANTS else None
            measured[variant.key] = measure_variant(variant, sizes, Path(folder), at)
            if variant.key in (RECOMMENDED, FASTEST):
                again = [
                    measure_variant(variant, sizes, Path(folder))
                    for _ in range(1, TIMING_REPEATS[mode])
                ]
                _median_times(measured[variant.key], again)
    result.params["thread_runs_of_recommended_and_fastest"] = TIMING_REPEATS[mode]
    first, half, last = sizes[0], sizes[-2], sizes[-1]
    for variant in variants:
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
    for key in (*BREAKDOWN_VARIANTS, RECOMMENDED, FASTEST):
        ratios = result.ratios.get(key)
        if ratios is None:
            continue
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
        breakdown = (measured.get(key) or {}).get("breakdown") or {}
        total = sum(breakdown.values()) or 1
        result.extra["bytes_by_cause"][key] = {
            "bytes": breakdown,
            "share": {cause: round(size / total, 3) for cause, size in breakdown.items()},
        }
    last = sizes[-1]
    for reference in BREAKDOWN_VARIANTS:
        if reference not in measured:
            continue
        base = measured[reference]["points"][last]["bytes"]
        result.extra[f"bytes_saved_at_N{last}_vs_{reference}"] = {
            key: round(1 - value["points"][last]["bytes"] / base, 3)
            for key, value in measured.items()
            if key != reference
        }
