"""Where the time of one turn at N = 80 goes.

The thread of :mod:`benchmarks.long_threads` is run to N - k turns and saved; a child
process then reopens it and runs the last k turns under a sampling profiler. LangGraph
runs tool calls and checkpoint writes on worker threads, so the profiler must see every
thread: py-spy (``pip install py-spy``) does, and is used when installed. Otherwise
pyinstrument profiles the caller's thread only (worker threads show up as waiting), and
the section says so.

Each sample is attributed to the deepest frame of a known kind (checkpoint serialization,
SQLite, ``add_messages``, pydantic, this library, LangChain, LangGraph); samples of idle
threads are dropped. A few functions are also reported by inclusive share ("hot spots").
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.harness import Mode, SectionResult, loopback_only, ratio
from benchmarks.long_threads import VARIANTS, LongThread

__all__ = ["CATEGORIES", "run"]

TURN = {"quick": 4, "full": 80}
PROFILED_TURNS = {"quick": 2, "full": 6}
RATE_HZ = 1000
PROFILED_VARIANTS = ("today", "once", "compact")
MARKER = "_profiled_turns"
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("checkpoint serialization", ("langgraph/checkpoint/serde", "ormsgpack", "msgpack")),
    ("SQLite saver and sqlite3", ("langgraph/checkpoint/sqlite", "sqlite3")),
    ("add_messages reducer", ("langgraph/graph/message.py",)),
    ("pydantic", ("pydantic",)),
    ("scripted model (benchmark stand-in)", ("assistant_graph/testing", "benchmarks/")),
    ("message store (store_messages_once)", ("assistant_graph/_message_",)),
    ("assistant_graph (nodes, tool, input building)", ("assistant_graph/",)),
    ("langchain_core (runnables, callbacks, tools)", ("langchain_core/", "langchain/")),
    ("langgraph engine (pregel, channels)", ("langgraph/",)),
)
"""Kinds of code, by a fragment of the file path; the first match wins."""
OTHER = "other (threads, stdlib)"
NO_PROFILER = "no profiler installed: pip install 'assistant-graph[bench]' (py-spy, pyinstrument)"
HOT_SPOTS = {
    "checkpoint writes (SqliteSaver.put, put_writes)": r"SqliteSaver\.put(_writes)? ",
    "thread load (SqliteSaver.get_tuple)": r"SqliteSaver\.get_tuple ",
    "message store: encoding (MessageStoreSaver.put, put_writes)": r"MessageStoreSaver\.put",
    "message store: reading back (MessageStoreSaver._resolve)": r"MessageStoreSaver\._resolve ",
    "compact_thread (its get_state and DELETEs)": r"compact_thread ",
    "serialize (dumps_typed)": r"JsonPlusSerializer\.dumps_typed ",
    "deserialize (loads_typed)": r"JsonPlusSerializer\.loads_typed ",
    "add_messages": r"^add_messages ",
    "tool input parsing (BaseTool._to_args_and_kwargs)": r"BaseTool\._to_args_and_kwargs ",
    "sub-assistant call prepare/finish": r"AssistantSubgraphCallTool\._(prepare|finish) ",
    "prompt building (_AssistantSteps._prompt)": r"_AssistantSteps\._prompt ",
    "scripted model reply": r"ScriptedChatModel\._reply ",
}
_IDLE_FUNCTIONS = {
    "wait",
    "acquire",
    "_wait_for_tstate_lock",
    "select",
    "poll",
    "sleep",
    "result",
    "_worker",
}
_IDLE_FILES = ("threading.py", "queue.py", "selectors.py", "_base.py", "thread.py")


def _category(frame: str) -> str | None:
    for name, fragments in CATEGORIES:
        if any(fragment in frame for fragment in fragments):
            return name
    return None


def _is_idle(leaf: str) -> bool:
    name = leaf.split(" (", 1)[0].rsplit(".", 1)[-1]
    return name in _IDLE_FUNCTIONS and (leaf.endswith(")") and any(f in leaf for f in _IDLE_FILES))


def attribute_samples(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str]]:
    """Busy samples of the profiled turns: total, by category, by hot spot (inclusive).

    Reads py-spy's raw format (``frame;frame;... count``, root first). Samples of the
    main thread outside the profiled turns (start-up, imports) are dropped; worker
    threads only run during turns.
    """
    total, categories, hot = 0, Counter[str](), Counter[str]()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        frames = [frame for frame in stack.split(";") if frame]
        main_thread = any("<module>" in frame for frame in frames[:3])
        if (
            not frames
            or _is_idle(frames[-1])
            or (main_thread and not any(MARKER in f for f in frames))
        ):
            continue
        samples = int(count)
        total += samples
        kind = OTHER
        for frame in frames:
            kind = _category(frame) or kind
        categories[kind] += samples
        for label, pattern in HOT_SPOTS.items():
            if any(re.search(pattern, frame) for frame in frames):
                hot[label] += samples
    return total, categories, hot


def _profiled_turns(thread: LongThread, turns: int) -> float:
    """Run the profiled turns; wall milliseconds per turn."""
    start = time.perf_counter()
    for _ in range(turns):
        thread.turn()
    return 1000 * (time.perf_counter() - start) / turns


def _child(key: str, folder: str, done: int, turns: int) -> None:
    """In the profiled process: reopen the saved thread and run its last turns."""
    variant = next(v for v in VARIANTS if v.key == key)
    with loopback_only(), LongThread(variant, Path(folder)) as thread:
        thread.turns = done
        print(json.dumps({"ms_per_turn": _profiled_turns(thread, turns)}))


def _py_spy() -> str | None:
    found = shutil.which("py-spy")
    sibling = Path(sys.executable).with_name("py-spy")
    return found or (str(sibling) if sibling.exists() else None)


def _profile_py_spy(key: str, turn: int, turns: int, folder: Path, py_spy: str) -> dict[str, Any]:
    variant = next(v for v in VARIANTS if v.key == key)
    with LongThread(variant, folder) as thread:
        for _ in range(turn - turns):
            thread.turn()
    raw = folder / f"{key}.raw"
    command = [py_spy, "record", "--full-filenames", "--nonblocking", "-r", str(RATE_HZ)]
    command += ["-f", "raw", "-o", str(raw), "--", sys.executable, "-m", __name__]
    command += [key, str(folder), str(turn - turns), str(turns)]
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=repo, timeout=900)
    if done.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed ({done.returncode}): {done.stderr[-2000:]}")
    [reported] = [line for line in done.stdout.splitlines() if line.startswith("{")]
    wall = json.loads(reported)["ms_per_turn"]
    total, categories, hot = attribute_samples(raw.read_text(encoding="utf-8").splitlines())
    thread.path.unlink(missing_ok=True)
    return _summary(wall, total, categories, hot, turns, RATE_HZ)


def _summary(
    wall_ms: float, total: int, categories: Counter[str], hot: Counter[str], turns: int, rate: float
) -> dict[str, Any]:
    per_turn = 1000 / rate / turns
    return {
        "wall_ms_per_turn": round(wall_ms, 2),
        "busy_cpu_ms_per_turn": round(total * per_turn, 2),
        "cpu_ms_by_category": {k: round(v * per_turn, 2) for k, v in categories.most_common()},
        "share_by_category": {k: ratio(v, total) for k, v in categories.most_common()},
        "hot_spots_share": {k: ratio(hot[k], total) for k in HOT_SPOTS},
    }


def _profile_pyinstrument(key: str, turn: int, turns: int, folder: Path) -> dict[str, Any]:
    """Fallback without py-spy: the caller's thread only (waits on workers count as idle)."""
    from pyinstrument import Profiler

    variant = next(v for v in VARIANTS if v.key == key)
    with LongThread(variant, folder) as thread:
        for _ in range(turn - turns):
            thread.turn()
        profiler = Profiler(interval=1 / RATE_HZ)
        profiler.start()
        wall = _profiled_turns(thread, turns)
        session = profiler.stop()
    thread.path.unlink(missing_ok=True)
    lines: list[str] = []

    def walk(frame: Any, path: list[str]) -> None:
        label = f"{frame.function} ({frame.file_path})"
        here = [*path, label]
        own = frame.time - sum(child.time for child in frame.children)
        if own > 0:
            lines.append(f"{';'.join(here)} {round(own * RATE_HZ)}")
        for child in frame.children:
            walk(child, here)

    root = session.root_frame()
    if root is not None:
        walk(root, [])
    total, categories, hot = attribute_samples(lines)
    return _summary(wall, total, categories, hot, turns, RATE_HZ)


def run(mode: Mode) -> SectionResult:
    """Profile the last turns of today's library, with and without compaction."""
    turn, turns = TURN[mode], PROFILED_TURNS[mode]
    py_spy = _py_spy()
    if py_spy is None and importlib.util.find_spec("pyinstrument") is None:
        return _skipped(turn)
    with tempfile.TemporaryDirectory(prefix="assistant-graph-bench-") as folder:
        profiles = {
            key: _profile_py_spy(key, turn, turns, Path(folder), py_spy)
            if py_spy
            else _profile_pyinstrument(key, turn, turns, Path(folder))
            for key in PROFILED_VARIANTS
        }
    result = SectionResult(
        name="turn_profile",
        title=f"Profile of a turn at N={turn}: share of busy CPU samples",
        params={
            "n": turn,
            "profiled_turns": turns,
            "rate_hz": RATE_HZ,
            "profiler": "py-spy (all threads)" if py_spy else "pyinstrument (caller thread)",
        },
        extra=profiles,
    )
    if not py_spy:
        result.notes.append("py-spy is not installed: pyinstrument saw only the caller's thread.")
    kinds = [name for name, _ in CATEGORIES] + [OTHER] + list(HOT_SPOTS)
    for kind in kinds:
        row: dict[str, Any] = {"where": kind if kind in HOT_SPOTS else f"kind: {kind}"}
        for key, profile in profiles.items():
            shares = (
                profile["hot_spots_share"] if kind in HOT_SPOTS else profile["share_by_category"]
            )
            row[f"{key} share"] = shares.get(kind) or 0.0
        result.rows.append(row)
    result.rows.append(
        {
            "where": "wall ms per turn",
            **{f"{k} share": p["wall_ms_per_turn"] for k, p in profiles.items()},
        }
    )
    result.ratios = {
        f"{key}_serialization_share": profile["share_by_category"].get("checkpoint serialization")
        or 0.0
        for key, profile in profiles.items()
    }
    for key in PROFILED_VARIANTS[1:]:
        result.ratios[f"today_over_{key}_wall"] = ratio(
            profiles["today"]["wall_ms_per_turn"], profiles[key]["wall_ms_per_turn"]
        )
    return result


def _skipped(turn: int) -> SectionResult:
    result = SectionResult(
        name="turn_profile",
        title=f"Profile of a turn at N={turn}: skipped",
        rows=[{"where": "skipped", "why": NO_PROFILER}],
        ratios={f"{key}_serialization_share": None for key in PROFILED_VARIANTS},
    )
    result.notes.append(NO_PROFILER)
    return result


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
