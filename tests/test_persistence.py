"""``open_checkpointer``: one string names where threads are kept, and it is always closed."""

from __future__ import annotations

import sqlite3
import sys
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from assistant_graph import AssistantCatalog, build_assistant_graph
from assistant_graph._message_store import MessageStoreSaver, base_saver
from assistant_graph._persistence import (
    CheckpointerError,
    default_database_path,
    describe_database,
    open_checkpointer,
)
from assistant_graph.testing import ScriptedModels

from .test_compaction import delegate_to_writer

CONFIG: RunnableConfig = {"configurable": {"thread_id": "kept"}}


def remember(saver: Any, team: AssistantCatalog, text: str, answer: str) -> list[str]:
    """Run the proxy once on the thread ``kept`` and return the thread's message texts."""
    graph = build_assistant_graph(
        "proxy", team, model=ScriptedModels({"proxy": [answer]}), checkpointer=saver
    )
    result = graph.invoke({"messages": [HumanMessage(text)]}, CONFIG)
    return [str(message.content) for message in result["messages"]]


def test_memory_keeps_threads_in_an_in_memory_saver() -> None:
    with open_checkpointer(":memory:") as saver:
        assert isinstance(saver, MessageStoreSaver)
        assert isinstance(base_saver(saver), InMemorySaver)
    with open_checkpointer(":memory:", messages_once=False) as saver:
        assert isinstance(saver, InMemorySaver)


def test_a_path_opens_sqlite_and_threads_survive_reopening(
    tmp_path: Path, team: AssistantCatalog
) -> None:
    db = tmp_path / "threads.sqlite"

    with open_checkpointer(db) as saver:
        assert isinstance(base_saver(saver), SqliteSaver)
        remember(saver, team, "First", "One.")
    with open_checkpointer(str(db)) as saver:
        texts = remember(saver, team, "Second", "Two.")

    assert texts == ["First", "One.", "Second", "Two."]


def test_closing_folds_the_write_ahead_log_into_the_database_file(
    tmp_path: Path, team: AssistantCatalog
) -> None:
    db = tmp_path / "threads.sqlite"

    with open_checkpointer(db) as saver:
        remember(saver, team, "Hello", "Hi.")
        assert Path(f"{db}-wal").exists()

    assert not Path(f"{db}-wal").exists()
    with sqlite3.connect(db) as connection:
        [(count,)] = connection.execute("select count(*) from checkpoints").fetchall()
    assert count > 0


def test_the_connection_is_closed_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), open_checkpointer(tmp_path / "t.sqlite") as saver:
        connection = base_saver(saver).conn
        raise RuntimeError("boom")

    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("select 1")


def test_no_db_means_the_per_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    expected = tmp_path / "data" / "assistant-graph" / "threads.sqlite"

    with open_checkpointer(None) as saver:
        assert isinstance(base_saver(saver), SqliteSaver)

    assert default_database_path() == expected
    assert expected.is_file()
    assert describe_database(None) == str(expected)


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(CheckpointerError, match="it is a folder"), open_checkpointer(tmp_path):
        pass


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database, just some text " * 100)

    expected = r"cannot open the SQLite database .*junk"
    with pytest.raises(CheckpointerError, match=expected), open_checkpointer(junk):
        pass


def test_postgres_without_the_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.postgres", None)

    url = "postgresql://user:secret@db.example/threads"
    with pytest.raises(CheckpointerError) as raised, open_checkpointer(url):
        pass

    assert str(raised.value) == (
        "a postgresql:// database needs the optional extra 'postgres': "
        "pip install 'assistant-graph[postgres]'"
    )


class FakePostgresSaver:
    """Stands in for ``PostgresSaver``: records how it is opened, set up and closed."""

    log: ClassVar[list[str]] = []

    @classmethod
    @contextmanager
    def from_conn_string(cls, url: str) -> Iterator[FakePostgresSaver]:
        cls.log.append(f"open {url}")
        try:
            yield cls()
        finally:
            cls.log.append("close")

    def setup(self) -> None:
        self.log.append("setup")


def test_a_postgres_url_opens_sets_up_and_closes_postgres_saver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("langgraph.checkpoint.postgres")
    module.PostgresSaver = FakePostgresSaver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.postgres", module)
    FakePostgresSaver.log = []
    url = "postgresql://user:secret@db.example:5432/threads"

    with pytest.raises(RuntimeError), open_checkpointer(url, messages_once=False) as saver:
        assert isinstance(saver, FakePostgresSaver)
        raise RuntimeError("the run failed")

    assert FakePostgresSaver.log == [f"open {url}", "setup", "close"]


def test_a_postgres_connection_failure_never_shows_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Refusing:
        @staticmethod
        def from_conn_string(url: str) -> Any:
            raise ConnectionError(f"could not connect to {url}")

    module = types.ModuleType("langgraph.checkpoint.postgres")
    module.PostgresSaver = Refusing  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.postgres", module)

    url = "postgresql://user:hunter22@db.example/threads"
    with pytest.raises(CheckpointerError) as raised, open_checkpointer(url):
        pass

    assert "hunter22" not in str(raised.value)
    assert "postgresql://user:***@db.example/threads" in str(raised.value)
    assert raised.value.__cause__ is None


def test_describe_database_hides_passwords() -> None:
    assert (
        describe_database("postgresql://me:pw@host:5432/db") == "postgresql://me:***@host:5432/db"
    )
    assert describe_database("postgres://host/db") == "postgres://host/db"
    assert describe_database("threads.sqlite") == "threads.sqlite"


@pytest.mark.postgres
def test_a_thread_on_postgres_is_continued_over_a_new_connection(
    postgres_url: str, team: AssistantCatalog
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": f"persistence-{uuid.uuid4()}"}}

    def models() -> ScriptedModels:
        return ScriptedModels(
            {"proxy": [delegate_to_writer] * 2, "writer": [lambda c: f"part {len(c.messages)}"]}
        )

    with open_checkpointer(postgres_url) as saver:
        assert isinstance(base_saver(saver), PostgresSaver)
        graph = build_assistant_graph("proxy", team, model=models(), checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("turn 0")]}, config)
    # As a second process would: a new connection, a new graph, new models.
    with open_checkpointer(postgres_url) as saver:
        second = models()
        graph = build_assistant_graph("proxy", team, model=second, checkpointer=saver)
        result = graph.invoke({"messages": [HumanMessage("turn 1")]}, config)
        saver.delete_thread(config["configurable"]["thread_id"])

    # The writer's conversation of the first connection, resumed by its uid.
    [resumed] = second.calls("writer")
    assert [m.content for m in resumed.messages[1:]] == ["more", "part 2", "more"]
    assert [m.content for m in result["messages"] if m.type in ("human", "ai") and m.content] == [
        "turn 0",
        "ok",
        "turn 1",
        "ok",
    ]
    assert len(result["sub_assistant_states"]) == 1
