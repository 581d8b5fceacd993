"""The web page's server, over real HTTP on loopback: threads, events, answers, failures,
the thread store shared with the CLI, and its security rules."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.runnables import RunnableConfig
from starlette.applications import Starlette
from starlette.routing import Mount

from assistant_graph import build_assistant_graph, load_assistants, open_checkpointer, stream_events
from assistant_graph.testing import ScriptedModels, ai, call_sub_assistant, call_tool
from assistant_graph.ui import create_app
from assistant_graph.ui._demo import DEMO_RETRY, demo_catalog, demo_models
from assistant_graph.ui._history import turn_events
from assistant_graph.ui._threads import thread_config
from tests.conftest import AssistantFolder
from tests.ui_support import (
    TRIP,
    Page,
    budget_team,
    cost,
    events,
    kinds,
    serving,
    waiting_thread_run_elsewhere,
)

SIZES = "How many times larger is Jupiter's radius than Earth's?"
WRITE = "Write one sentence about the Moon."
FAIL = "Look up Mars, and fail once on the way."


def demo_app(db: Path, **options: Any) -> Any:
    """The demo team on instant scripted models, threads in ``db``."""
    return create_app(
        demo_catalog(),
        model=demo_models(latency=0.0),
        retry=DEMO_RETRY,
        db=db,
        **options,
    )


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with (
        serving(demo_app(tmp_path / "threads.sqlite")) as url,
        httpx.Client(base_url=url) as client,
    ):
        yield Page.open(client)


class TestTheDelegationTree:
    def test_a_turn_streams_every_call_three_levels_deep_in_order(self, page: Page) -> None:
        view = page.settle(page.start(SIZES))
        assert view["status"] == "done"
        seen = kinds(view)
        assert seen[0] == ("run_start", "proxy") and seen[-1] == ("final", "proxy")
        starts = [i for i, kind in enumerate(seen) if kind[0] == "sub_assistant_start"]
        ends = [i for i, kind in enumerate(seen) if kind[0] == "sub_assistant_end"]
        assert starts[1] < ends[0]  # the first two researchers ran at the same time
        assert seen[starts[3]] == ("sub_assistant_start", "proxy>researcher>calculator")
        assert starts[2] < starts[3] < ends[2] < ends[3]  # the calculator inside the third
        assert sorted(seen) == sorted(
            [
                ("run_start", "proxy"),
                ("agent_message", "proxy"),
                ("tool_call", "proxy"),
                ("tool_call", "proxy"),
                ("sub_assistant_start", "proxy>researcher"),
                ("sub_assistant_start", "proxy>researcher"),
                ("tool_call", "proxy>researcher"),
                ("tool_call", "proxy>researcher"),
                ("tool_result", "proxy>researcher"),
                ("tool_result", "proxy>researcher"),
                ("agent_message", "proxy>researcher"),
                ("agent_message", "proxy>researcher"),
                ("sub_assistant_end", "proxy>researcher"),
                ("sub_assistant_end", "proxy>researcher"),
                ("tool_result", "proxy"),
                ("tool_result", "proxy"),
                ("agent_message", "proxy"),
                ("tool_call", "proxy"),
                ("sub_assistant_start", "proxy>researcher"),
                ("tool_call", "proxy>researcher"),
                ("sub_assistant_start", "proxy>researcher>calculator"),
                ("tool_call", "proxy>researcher>calculator"),
                ("tool_result", "proxy>researcher>calculator"),
                ("agent_message", "proxy>researcher>calculator"),
                ("sub_assistant_end", "proxy>researcher>calculator"),
                ("tool_result", "proxy>researcher"),
                ("agent_message", "proxy>researcher"),
                ("sub_assistant_end", "proxy>researcher"),
                ("tool_result", "proxy"),
                ("agent_message", "proxy"),
                ("final", "proxy"),
            ]
        )

    def test_every_event_carries_the_time_it_arrived(self, page: Page) -> None:
        view = page.settle(page.start(SIZES))
        times = [record["ts"] for record in view["turns"][-1]["records"]]
        assert all(isinstance(ts, int) for ts in times)
        assert times == sorted(times)

    def test_a_sub_assistant_shows_the_exact_input_with_forwarded_contexts(
        self, page: Page
    ) -> None:
        view = page.settle(page.start(SIZES))
        starts = [e for e in events(view) if e["type"] == "sub_assistant_start"]
        ratio = starts[2]
        assert ratio["message"].startswith("How many times larger")
        assert "Context from earlier tool results:" in ratio["input"]
        assert "Jupiter's mean radius is 69911 km" in ratio["input"]
        assert "Earth's mean radius is 6371 km" in ratio["input"]

    def test_tokens_are_reported_per_call_and_for_the_turn(self, page: Page) -> None:
        view = page.settle(page.start(SIZES))
        ends = [e for e in events(view) if e["type"] == "sub_assistant_end"]
        assert all(end["usage"]["total"]["total_tokens"] > 0 for end in ends)
        final = events(view)[-1]
        assert set(final["usage"]["by_path"]) == {
            "proxy",
            "proxy>researcher",
            "proxy>researcher>calculator",
        }

    def test_a_sub_conversation_opens_by_its_uid(self, page: Page) -> None:
        thread = page.start(SIZES)
        view = page.settle(thread)
        uid = next(
            e["subgraph_uid"]
            for e in events(view)
            if e["type"] == "sub_assistant_end" and e["assistant"] == "calculator"
        )
        transcript = page.client.get(f"/api/threads/{thread}/conversations/{uid}").json()
        assert transcript["assistant"] == "calculator"
        assert [m["role"] for m in transcript["messages"]] == [
            "user",
            "assistant",
            "tool",
            "assistant",
        ]
        assert transcript["messages"][0]["text"] == "69911 / 6371"
        assert transcript["messages"][-1]["text"] == "10.9733"

    def test_an_unknown_uid_is_a_404(self, page: Page) -> None:
        thread = page.start(SIZES)
        page.settle(thread)
        response = page.client.get(f"/api/threads/{thread}/conversations/calculator-nothere")
        assert response.status_code == 404
        assert "no sub-conversation 'calculator-nothere'" in response.json()["error"]

    def test_a_watcher_sees_the_events_of_the_next_turn_as_they_happen(self, page: Page) -> None:
        thread = page.start(SIZES)
        page.settle(thread)
        page.messages.clear()
        with page.client.stream("GET", f"/api/threads/{thread}/stream") as response:
            lines = response.iter_lines()
            from tests.ui_support import server_sent

            stream = server_sent(lines)
            first_kind, first = next(stream)
            assert first_kind == "snapshot" and len(first["turns"]) == 1
            sent = page.post(
                f"/api/threads/{thread}/messages", {"message": "Tell me about the Moon"}
            )
            assert sent.status_code == 202
            seen = []
            for kind, data in stream:
                if kind == "event":
                    seen.append(data["event"]["type"])
                if kind == "snapshot" and data["status"] != "running":
                    break
        assert seen[0] == "run_start"
        assert seen[-1] == "final"
        assert "sub_assistant_start" in seen


class TestTheThreadList:
    def test_lists_threads_newest_first_with_assistant_status_and_last_message(
        self, page: Page
    ) -> None:
        first = page.start(SIZES)
        page.settle(first)
        second = page.start(TRIP)
        page.settle(second)
        threads = page.client.get("/api/threads").json()["threads"]
        assert [t["thread_id"] for t in threads] == [second, first]
        assert [t["status"] for t in threads] == ["waiting", "done"]
        assert {t["assistant"] for t in threads} == {"proxy"}
        assert threads[1]["last_message"].startswith("Jupiter's radius is 10.9733 times")

    def test_a_thread_the_cli_ran_is_listed_and_its_turn_told_from_the_thread(
        self, tmp_path: Path
    ) -> None:
        db = tmp_path / "threads.sqlite"
        catalog = demo_catalog()
        with open_checkpointer(db) as saver:
            graph = build_assistant_graph(
                "proxy", catalog, model=demo_models(latency=0.0), checkpointer=saver
            )
            config: RunnableConfig = {"configurable": {"thread_id": "from-cli"}}
            streamed = [e.to_dict() for e in stream_events(graph, SIZES, config)]
        with serving(demo_app(db)) as url, httpx.Client(base_url=url) as client:
            page = Page.open(client)
            threads = client.get("/api/threads").json()["threads"]
            assert [(t["thread_id"], t["status"]) for t in threads] == [("from-cli", "done")]
            view = client.get("/api/threads/from-cli").json()
        turn = view["turns"][0]
        assert turn["recorded"] is False
        assert all(record["ts"] is None for record in turn["records"])
        told = [
            (e["type"], e["path"], e.get("input"), e.get("content"))
            for e in events(view)
            if e["type"] not in ("final", "token")
        ]
        ran = [
            (e["type"], e["path"], e.get("input"), e.get("content"))
            for e in streamed
            if e["type"] not in ("final", "token")
        ]
        # Told from the thread: the same calls and results, each call whole in turn
        # (the run interleaved the parallel ones).
        assert sorted(told, key=str) == sorted(ran, key=str)
        assert events(view)[-1]["usage"] == streamed[-1]["usage"]  # costs by path included
        assert page.csrf

    def test_a_thread_is_listed_as_of_its_own_state_not_its_sub_conversations(
        self, tmp_path: Path
    ) -> None:
        db = tmp_path / "threads.sqlite"
        with serving(demo_app(db)) as url, httpx.Client(base_url=url) as client:
            page = Page.open(client)
            thread = page.settle(page.start(TRIP))["thread_id"]
            threads = client.get("/api/threads").json()["threads"]
        with open_checkpointer(db) as saver:
            root = saver.get_tuple(thread_config(thread))
            newest = next(iter(saver.list(None)))
        assert root is not None
        # Waiting in two sub-assistants: their checkpoints, in the same thread, are newer.
        assert newest.config["configurable"]["checkpoint_ns"].startswith("tools:")
        assert newest.checkpoint["ts"] > root.checkpoint["ts"]
        assert [(t["thread_id"], t["status"], t["updated"]) for t in threads] == [
            (thread, "waiting", root.checkpoint["ts"])
        ]


class TestTheHumanInTheLoop:
    def test_two_questions_from_parallel_sub_assistants_are_answered_at_once(
        self, page: Page
    ) -> None:
        thread = page.start(TRIP)
        view = page.settle(thread)
        assert view["status"] == "waiting"
        pending = view["pending"]
        assert sorted((p["path"][-1], p["question"]) for p in pending) == [
            ("researcher", "Which planet?"),
            ("writer", "Who is the postcard for?"),
        ]
        answers = {p["id"]: "Mars" if p["path"][-1] == "researcher" else "Ada" for p in pending}
        assert page.post(f"/api/threads/{thread}/answers", {"answers": answers}).status_code == 202
        view = page.settle(thread)
        assert view["status"] == "done"
        final = events(view)[-1]
        assert "Mars' mean radius is 3389.5 km" in final["content"]
        assert "Dear Ada" in final["content"]
        assert len(view["turns"]) == 1  # the answers continue the same turn

    def test_questions_asked_before_the_server_started_are_shown_where_they_were_asked(
        self, tmp_path: Path
    ) -> None:
        db = tmp_path / "threads.sqlite"
        thread = waiting_thread_run_elsewhere(db)
        with serving(demo_app(db)) as url, httpx.Client(base_url=url) as client:
            page = Page.open(client)
            view = client.get(f"/api/threads/{thread}").json()
            assert view["status"] == "waiting" and view["turns"][0]["recorded"] is False
            opened_by = {
                e["name"].removeprefix("sub_assistant__"): e["id"]
                for e in events(view)
                if e["type"] == "tool_call" and e["name"].startswith("sub_assistant__")
            }
            asked = {e["path"][-1]: e for e in events(view) if e["type"] == "input_request"}
            # Each request at the call that opened the sub-assistant that asked it.
            assert {
                name: (e["parent_tool_call_id"], e["question"]) for name, e in asked.items()
            } == {
                "researcher": (opened_by["researcher"], "Which planet?"),
                "writer": (opened_by["writer"], "Who is the postcard for?"),
            }
            assert {e["id"] for e in asked.values()} == {p["id"] for p in view["pending"]}
            # The interrupts themselves name the call, for any client that reads them.
            assert {p["parent_tool_call_id"] for p in view["pending"]} == set(opened_by.values())
            answers = {asked["researcher"]["id"]: "Mars", asked["writer"]["id"]: "Ada"}
            response = page.post(f"/api/threads/{thread}/answers", {"answers": answers})
            assert response.status_code == 202
            view = page.settle(thread)
        assert view["status"] == "done"
        assert "Dear Ada" in events(view)[-1]["content"]

    def test_a_question_from_two_levels_down_is_answered_after_a_restart(
        self, folder: AssistantFolder, tmp_path: Path
    ) -> None:
        folder.add("boss", sub_assistants=["lead"])
        folder.add("lead", callable=True, sub_assistants=["worker"])
        folder.add("worker", callable=True, ask_user=True)
        catalog = folder.load()
        models = ScriptedModels(
            {
                "boss": [ai(tool_calls=[call_sub_assistant("lead", "Plan it.")]), "Planned."],
                "lead": [ai(tool_calls=[call_sub_assistant("worker", "Ask.")]), "Asked."],
                "worker": [ai(tool_calls=[call_tool("ask_user", question="Which one?")]), "Mars."],
            }
        )
        db = tmp_path / "threads.sqlite"
        with open_checkpointer(db) as saver:
            graph = build_assistant_graph("boss", catalog, model=models, checkpointer=saver)
            list(stream_events(graph, "Plan.", {"configurable": {"thread_id": "deep"}}))
        app = create_app(catalog, model=models, db=db)
        with serving(app) as url, httpx.Client(base_url=url) as client:
            page = Page.open(client)
            view = client.get("/api/threads/deep").json()
            [asked] = [e for e in events(view) if e["type"] == "input_request"]
            assert asked["path"] == ["boss", "lead", "worker"]
            assert asked["question"] == "Which one?"
            assert asked["parent_tool_call_id"]  # the lead's call, told on its own node
            response = page.post("/api/threads/deep/answers", {"answers": {asked["id"]: "Mars"}})
            assert response.status_code == 202
            view = page.settle("deep")
        assert view["status"] == "done"
        assert models.calls("worker")[-1].messages[-1].content == "Mars"

    def test_a_request_recorded_without_its_callers_id_is_placed_by_the_open_call(self) -> None:
        # Requests made before interrupts carried parent_tool_call_id.
        replies = [
            ai(tool_calls=[call_sub_assistant("researcher", "Which planet?", id="call_r")]),
        ]
        request = {"id": "q1", "kind": "question", "question": "Which planet?"}
        told = turn_events(
            "proxy",
            replies,
            status="interrupted",
            pending=[{**request, "path": ["proxy", "researcher"]}],
        )
        [asked] = [e for e in told if e["type"] == "input_request"]
        assert asked["parent_tool_call_id"] == "call_r"
        assert told[-1]["type"] == "final"

    def test_answering_one_of_two_leaves_the_other_pending(self, page: Page) -> None:
        thread = page.start(TRIP)
        pending = page.settle(thread)["pending"]
        researcher = next(p for p in pending if p["path"][-1] == "researcher")
        page.post(f"/api/threads/{thread}/answers", {"answers": {researcher["id"]: "Mars"}})
        view = page.settle(thread)
        assert view["status"] == "waiting"
        assert [p["path"][-1] for p in view["pending"]] == ["writer"]

    def test_a_rejected_approval_reaches_the_model_with_its_reason(self, page: Page) -> None:
        thread = page.start(WRITE)
        view = page.settle(thread)
        (approval,) = view["pending"]
        assert approval["kind"] == "approval" and approval["tool"] == "word_count"
        answer = {approval["id"]: {"approved": "no", "reason": "not today"}}
        page.post(f"/api/threads/{thread}/answers", {"answers": answer})
        view = page.settle(thread)
        result = next(
            e for e in events(view) if e["type"] == "tool_result" and e["name"] == "word_count"
        )
        assert result["status"] == "error"
        assert "did not approve this call to word_count: not today" in result["content"]
        assert "The words were not counted" in events(view)[-1]["content"]

    def test_answers_are_refused_when_they_do_not_fit_the_thread(self, page: Page) -> None:
        thread = page.start(TRIP)
        page.settle(thread)
        unknown = page.post(f"/api/threads/{thread}/answers", {"answers": {"nope": "x"}})
        assert unknown.status_code == 400
        assert "not pending requests" in unknown.json()["error"]
        empty = page.post(f"/api/threads/{thread}/answers", {"answers": {}})
        assert empty.status_code == 400
        message = page.post(f"/api/threads/{thread}/messages", {"message": "hello"})
        assert message.status_code == 409
        assert "waiting for input (2 pending)" in message.json()["error"]
        done = page.start(SIZES)
        page.settle(done)
        nothing = page.post(f"/api/threads/{done}/answers", {"answers": {"a": "b"}})
        assert nothing.status_code == 409
        assert "not waiting for any input" in nothing.json()["error"]


class TestCostsAndBudgets:
    def test_each_call_and_the_turn_cost_their_tokens_at_the_models_list_price(
        self, page: Page
    ) -> None:
        view = page.settle(page.start(SIZES))
        ends = {
            ">".join(e["path"]): e["usage"]
            for e in events(view)
            if e["type"] == "sub_assistant_end"
        }
        final = events(view)[-1]["usage"]
        # The calculator's one call, by hand: 41 words in, 5 out (the scripted model counts
        # words), at $0.15 and $0.60 per million tokens (openai:gpt-4o-mini).
        calculator = final["by_path"]["proxy>researcher>calculator"]
        assert (calculator["input_tokens"], calculator["output_tokens"]) == (41, 5)
        assert calculator["cost_usd"] == pytest.approx(cost(41, 5)) == pytest.approx(9.15e-6)
        assert ends["proxy>researcher>calculator"]["by_path"]["calculator"] == calculator
        for usage in final["by_path"].values():
            assert usage["cost_usd"] == pytest.approx(
                cost(usage["input_tokens"], usage["output_tokens"])
            )
        costs = [usage["cost_usd"] for usage in final["by_path"].values()]
        assert final["total"]["cost_usd"] == pytest.approx(sum(costs))
        # The researcher that asked the calculator: its own calls, then with the calculator's.
        asking = next(
            usage for usage in ends.values() if "researcher>calculator" in usage["by_path"]
        )
        own = asking["by_path"]["researcher"]["cost_usd"]
        assert own == pytest.approx(cost(*_tokens(asking["by_path"]["researcher"])))
        assert asking["total"]["cost_usd"] == pytest.approx(own + calculator["cost_usd"])

    def test_an_unknown_price_stays_unknown_and_a_budget_that_ran_out_is_named(
        self, tmp_path: Path, folder: AssistantFolder
    ) -> None:
        catalog, models = budget_team(folder)
        app = create_app(catalog, model=models, db=tmp_path / "t.db")
        with serving(app) as url, httpx.Client(base_url=url) as client:
            page = Page.open(client)
            view = page.settle(page.start("Note A, then B.", assistant="boss"))
        assert view["status"] == "incomplete"
        [end] = [e for e in events(view) if e["type"] == "sub_assistant_end"]
        assert end["returning_incomplete"] is True
        assert end["budget_exhausted"] == {"kind": "tokens", "limit": 250, "used": 280}
        worker = end["usage"]["by_path"]["worker"]
        assert (worker["total_tokens"], worker["cost_usd"]) == (280, None)
        assert end["usage"]["total"]["cost_usd"] is None
        final = events(view)[-1]
        assert final["status"] == "incomplete"
        assert final["budget_exhausted"] == {"kind": "tokens", "limit": 1350, "used": 1380}
        assert final["usage"]["by_path"]["boss"]["cost_usd"] == pytest.approx(cost(1000, 100))
        assert final["usage"]["by_path"]["boss>worker"]["cost_usd"] is None
        assert final["usage"]["total"]["cost_usd"] is None

    def test_a_turn_told_from_the_thread_has_the_costs_and_budgets_the_run_streamed(
        self, tmp_path: Path, folder: AssistantFolder
    ) -> None:
        db = tmp_path / "threads.sqlite"
        catalog, models = budget_team(folder)
        with open_checkpointer(db) as saver:
            graph = build_assistant_graph("boss", catalog, model=models, checkpointer=saver)
            config: RunnableConfig = {"configurable": {"thread_id": "from-cli"}}
            streamed = [e.to_dict() for e in stream_events(graph, "Note A, then B.", config)]
        with (
            serving(create_app(catalog, model=models, db=db)) as url,
            httpx.Client(base_url=url) as client,
        ):
            view = client.get("/api/threads/from-cli").json()
        assert view["status"] == "incomplete" and view["turns"][0]["recorded"] is False
        told = events(view)
        spent = ("usage", "budget_exhausted", "returning_incomplete", "status")
        for kind in ("sub_assistant_end", "final"):
            [ran] = [e for e in streamed if e["type"] == kind]
            [again] = [e for e in told if e["type"] == kind]
            assert {key: again.get(key) for key in spent} == {key: ran.get(key) for key in spent}
            assert ran["budget_exhausted"] is not None


def _tokens(usage: dict[str, Any]) -> tuple[int, int]:
    return usage["input_tokens"], usage["output_tokens"]


class TestFailures:
    def test_a_failure_shows_where_it_happened_and_continuing_retries_the_step(
        self, page: Page
    ) -> None:
        thread = page.start(FAIL)
        view = page.settle(thread)
        assert view["status"] == "failed"
        error = next(e for e in events(view) if e["type"] == "error")
        assert error["path"] == ["proxy", "researcher"]
        assert error["error_type"] == "ModelCallError"
        assert "503 Service Unavailable" in error["message"]
        assert [e["type"] for e in events(view)].count("retry") == 1
        message = page.post(f"/api/threads/{thread}/messages", {"message": "hello"})
        assert message.status_code == 409 and "continue it first" in message.json()["error"]
        assert page.post(f"/api/threads/{thread}/retry", {}).status_code == 202
        view = page.settle(thread)
        assert view["status"] == "done"
        assert events(view)[-1]["content"].startswith("The researcher found: Mars' mean radius")
        assert [e["input"] for e in events(view) if e["type"] == "run_start"] == [
            "message",
            "retry",
        ]

    def test_there_is_nothing_to_continue_after_a_finished_run(self, page: Page) -> None:
        thread = page.start(SIZES)
        page.settle(thread)
        response = page.post(f"/api/threads/{thread}/retry", {})
        assert response.status_code == 409
        assert "no failed run to continue" in response.json()["error"]

    def test_a_thread_held_by_another_run_is_refused_at_once(self, tmp_path: Path) -> None:
        db = tmp_path / "threads.sqlite"
        with serving(demo_app(db)) as url, httpx.Client(base_url=url) as client:
            page = Page.open(client)
            thread = page.start(SIZES)
            page.settle(thread)
            with open_checkpointer(db) as saver:
                graph = build_assistant_graph(
                    "proxy", demo_catalog(), model=demo_models(), checkpointer=saver
                )
                with graph.thread_guard.hold({"configurable": {"thread_id": thread}}):  # type: ignore[attr-defined]
                    response = page.post(f"/api/threads/{thread}/messages", {"message": "hi"})
        assert response.status_code == 409
        assert f"a run is in progress on thread '{thread}'" in response.json()["error"]


class TestBadRequests:
    def test_unknown_threads_and_assistants_are_named(self, page: Page) -> None:
        assert page.client.get("/api/threads/nothere").status_code == 404
        assert page.client.get("/api/threads/nothere/stream").status_code == 404
        response = page.post("/api/threads", {"assistant": "nobody", "message": "hi"})
        assert response.status_code == 400
        assert "no assistant named 'nobody'" in response.json()["error"]

    def test_an_empty_message_or_a_body_that_is_not_an_object_is_refused(self, page: Page) -> None:
        assert page.post("/api/threads", {"assistant": "proxy", "message": "  "}).status_code == 400
        response = page.post("/api/threads", ["proxy"])
        assert response.status_code == 400 and "JSON object" in response.json()["error"]

    def test_a_model_that_cannot_be_made_says_why(self, tmp_path: Path) -> None:
        app = create_app(
            load_assistants(Path(__file__).parents[1] / "assistants"), db=tmp_path / "t.db"
        )
        with serving(app) as url, httpx.Client(base_url=url) as client:
            response = Page.open(client).post(
                "/api/threads", {"assistant": "proxy", "message": "hi"}
            )
        assert response.status_code == 400
        assert "cannot run proxy" in response.json()["error"]
        assert "OPENAI_API_KEY" in response.json()["error"]


class TestSecurity:
    def test_the_page_gets_a_csrf_token_and_a_strict_content_security_policy(
        self, page: Page
    ) -> None:
        response = page.client.get("/")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert len(page.csrf) >= 32 and page.csrf in response.text
        assert page.client.get("/static/app.js").status_code == 200

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"x-csrf-token": "wrong"},
            {"origin": "http://evil.example"},
            {"content-type": "text/plain"},
        ],
        ids=["no-token", "wrong-token", "other-origin", "not-json"],
    )
    def test_state_changing_requests_from_elsewhere_are_refused(
        self, page: Page, headers: dict[str, str]
    ) -> None:
        sent = {"content-type": "application/json", "x-csrf-token": page.csrf, **headers}
        if headers == {}:
            del sent["x-csrf-token"]
        response = page.client.post(
            "/api/threads", content=b'{"assistant": "proxy", "message": "hi"}', headers=sent
        )
        assert response.status_code == 403
        assert page.client.get("/api/threads").json()["threads"] == []

    def test_a_request_for_another_host_name_is_refused_without_a_token(self, page: Page) -> None:
        response = page.client.get("/", headers={"host": "evil.example:8765"})
        assert response.status_code == 421
        assert "csrf-token" not in response.text

    def test_with_a_token_every_request_and_stream_needs_it(self, tmp_path: Path) -> None:
        app = demo_app(tmp_path / "t.db", token="s3cret-token")
        with serving(app) as url, httpx.Client(base_url=url) as client:
            assert client.get("/").status_code == 401
            assert client.get("/api/threads").status_code == 401
            assert client.get("/api/threads/x/stream").status_code == 401
            assert client.get("/?token=wrong").status_code == 401
            first = client.get("/?token=s3cret-token")
            assert first.status_code == 303 and first.headers["location"] == "/"
            cookie = first.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie
            page = client.get("/")  # the cookie is sent from now on
            assert page.status_code == 200 and "s3cret-token" not in page.text
            bearer = httpx.get(
                f"{url}/api/threads", headers={"authorization": "Bearer s3cret-token"}
            )
            assert bearer.status_code == 200

    def test_no_api_key_reaches_the_page(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = "sk-test-0123456789abcdef"
        monkeypatch.setenv("OPENAI_API_KEY", key)

        def leaky(call: Any) -> Any:
            raise ValueError(f"the server refused key {key}")

        folder = tmp_path / "team"
        folder.mkdir()
        (folder / "proxy.yaml").write_text(
            "name: proxy\ndescription: d\ninstructions: i\nsub_assistants: [helper]\n"
        )
        (folder / "helper.yaml").write_text(
            "name: helper\ndescription: d\ninstructions: i\ncallable: true\n"
        )
        models = ScriptedModels(
            {
                "proxy": [
                    ai(f"I will ask ({key})", tool_calls=[call_sub_assistant("helper", key)])
                ],
                "helper": [leaky],
            }
        )
        app = create_app(folder, model=models, db=tmp_path / "t.db")
        with serving(app) as url, httpx.Client(base_url=url) as client:
            page = Page.open(client)
            thread = page.start(f"my key is {key}")
            view = page.settle(thread)
            listed = client.get("/api/threads").text
            every = [client.get("/").text, client.get("/api/config").text, listed]
            every += [client.get(f"/api/threads/{thread}").text]
        sent = "\n".join([*every, *(str(data) for _, data in page.messages)])
        assert view["status"] == "failed"
        assert key not in sent
        assert "the server refused key ***" in sent


class TestMounting:
    def test_the_app_works_mounted_in_another_asgi_app(self, tmp_path: Path) -> None:
        outer = Starlette(routes=[Mount("/agents", app=demo_app(tmp_path / "t.db"))])
        with serving(outer) as url, httpx.Client(base_url=f"{url}/agents") as client:
            assert 'href="static/style.css"' in client.get("/").text  # relative: works mounted
            page = Page.open(client)
            view = page.settle(page.start(SIZES))
        assert view["status"] == "done"


class TestTheCommand:
    def test_listening_beyond_loopback_needs_a_token(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from typer.testing import CliRunner

        from assistant_graph.cli import app

        monkeypatch.delenv("ASSISTANT_GRAPH_UI_TOKEN", raising=False)
        result = CliRunner().invoke(app, ["ui", "--demo", "--host", "0.0.0.0"])
        assert result.exit_code == 2
        assert "listening on 0.0.0.0 reaches beyond this machine" in result.output
        assert "--token" in result.output

    def test_without_the_extra_the_command_names_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from typer.testing import CliRunner

        from assistant_graph.cli import app

        monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
        result = CliRunner().invoke(app, ["ui", "--demo"])
        assert result.exit_code == 2
        assert "pip install 'assistant-graph[ui]'" in result.output


@pytest.mark.postgres
def test_threads_on_postgresql_are_listed_and_continued(postgres_url: str) -> None:
    app = create_app(
        demo_catalog(), model=demo_models(latency=0.0), retry=DEMO_RETRY, db=postgres_url
    )
    with serving(app) as url, httpx.Client(base_url=url) as client:
        page = Page.open(client)
        thread = page.start(TRIP)
        pending = page.settle(thread)["pending"]
        answers = {p["id"]: "Mars" for p in pending}
        page.post(f"/api/threads/{thread}/answers", {"answers": answers})
        view = page.settle(thread)
        listed = {t["thread_id"]: t["status"] for t in client.get("/api/threads").json()["threads"]}
    assert view["status"] == "done"
    assert listed[thread] == "done"
