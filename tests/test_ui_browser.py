"""The web page in real browsers: Debian's headless Chromium and Firefox ESR, both driven by
Playwright, against ``assistant-graph ui --demo`` started as its own process.

Every scenario runs in each browser (``[chromium]``, ``[firefox]``). Playwright drives
Chromium over CDP and the stock Firefox over WebDriver BiDi (its ``moz-firefox`` channel), so
neither browser is one of Playwright's downloads. Each scenario saves screenshots under its
temporary folder (``pytest --basetemp DIR`` keeps them somewhere known). Without a browser its
tests skip, except in CI (``CI=true``), where ``.ci/run`` installs both and a missing browser
must fail.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    BrowserContext,
    Error,
    Locator,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from assistant_graph.ui import create_app
from assistant_graph.ui._demo import DEMO_RETRY, demo_catalog, demo_models
from tests.conftest import AssistantFolder
from tests.loopback import free_port
from tests.ui_support import TRIP, budget_team, cost, serving, waiting_thread_run_elsewhere

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("ASSISTANT_GRAPH_TEST_CHROMIUM", "/usr/bin/chromium"))
FIREFOX = Path(os.environ.get("ASSISTANT_GRAPH_TEST_FIREFOX", "/usr/bin/firefox-esr"))
# As root, without a sandbox; nothing in the background may reach outside hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Firefox's own test switch: it refuses any connection that is not to a local address. It
# also lets a release build take the Remote Settings server below, the dummy Firefox's test
# harness uses, which turns off the blocklist and certificate updates it would otherwise look
# up (firefox.settings.services.mozilla.com) at every start.
FIREFOX_ENV = {"MOZ_DISABLE_NONLOCAL_CONNECTIONS": "1"}
FIREFOX_PREFS: dict[str, str | float | bool] = {
    "services.settings.server": "data:,#remote-settings-dummy/v1"
}
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
TIMEOUT_MS = 20_000
SIZES = "How many times larger is Jupiter's radius than Earth's?"
XSS_IMG = '<img src=x onerror="window.__xss = 1">'
XSS_SCRIPT = "<script>window.__xss = 2</script>"


def _installed(executable: Path, package: str) -> Path:
    if not executable.exists():
        message = f"no {package} at {executable}: apt-get install {package} (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return executable


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``assistant-graph ui --demo`` in a process of its own, threads in a SQLite file."""
    folder = tmp_path_factory.mktemp("ui-demo")
    port = free_port()
    command = [
        sys.executable, "-m", "assistant_graph.cli", "ui", "--demo",
        "--port", str(port), "--db", str(folder / "threads.sqlite"),
    ]  # fmt: skip
    log = folder / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ui --demo did not start: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module", params=["chromium", "firefox"])
def browser(request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A fresh browser context at 1280 px in each browser in turn."""
    with sync_playwright() as playwright:
        if request.param == "chromium":
            with _chromium(playwright) as context:
                yield context
        else:
            with _firefox(playwright) as context:
                yield context


@contextmanager
def _chromium(playwright: Playwright) -> Iterator[BrowserContext]:
    executable = _installed(CHROMIUM, "chromium")
    with tempfile.TemporaryDirectory() as profile:
        # A persistent context on a fresh, empty profile folder, as the flags want.
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(executable),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
        )
        yield context
        context.close()


@contextmanager
def _firefox(playwright: Playwright) -> Iterator[BrowserContext]:
    executable = _installed(FIREFOX, "firefox-esr")
    # WebDriver BiDi, which Firefox speaks itself. Playwright writes it a fresh profile whose
    # preferences keep updates, telemetry, safe browsing and other background services off
    # the network; FIREFOX_ENV and FIREFOX_PREFS close what it leaves open.
    browser = playwright.firefox.launch(
        channel="moz-firefox",
        executable_path=str(executable),
        headless=True,
        firefox_user_prefs=FIREFOX_PREFS,
        env={**os.environ, **FIREFOX_ENV},
    )
    context = browser.new_context(viewport=VIEWPORT)
    yield context
    context.close()
    browser.close()


@contextmanager
def opened(browser: BrowserContext, url: str, shots: Path) -> Iterator[Page]:
    """A new tab on ``url``; no script error, dialog or console error may happen in it."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "pageerror",
        lambda error: (
            problems.append(f"page error: {error}") if not _playwrights_own(error) else None
        ),
    )
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.goto(url)
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.screenshot(path=str(shots / "last.png"), full_page=True)
    page.close()
    assert problems == []


# Before each screenshot in Firefox, Playwright adds and removes a `<style>body {}</style>`
# to settle animations. The page's CSP refuses inline style, and Firefox reports that as a
# page error naming the refused style's hash. Only that refusal is Playwright's own.
_SCREENSHOT_STYLE = base64.b64encode(hashlib.sha256(b"body {}").digest()).decode()


def _playwrights_own(error: Error) -> bool:
    return "blocked an inline style" in error.message and _SCREENSHOT_STYLE in error.message


@pytest.fixture
def page(browser: BrowserContext, server: str, tmp_path: Path) -> Iterator[Page]:
    with opened(browser, server, tmp_path) as page:
        yield page


def _start(page: Page, suggestion: str) -> None:
    page.get_by_role("button", name=suggestion).click()


def _status(page: Page) -> Locator:
    return page.locator("#thread-status")


def test_the_tree_fills_in_live_three_levels_deep_with_parallel_calls(
    page: Page, server: str, tmp_path: Path
) -> None:
    _start(page, SIZES)
    running = page.locator('.node[data-path="proxy>researcher"][data-status="running"]')
    expect(running).to_have_count(2)  # live: two researchers at work at once
    page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
    expect(_status(page)).to_have_text("done")
    page.screenshot(path=str(tmp_path / "tree.png"), full_page=True)
    researchers = page.locator('.node[data-path="proxy>researcher"]')
    expect(researchers).to_have_count(3)
    calculator = page.locator('.node[data-path="proxy>researcher>calculator"]')
    expect(calculator).to_have_count(1)
    expect(calculator.locator(".badge").first).to_have_text("done")
    expect(calculator).to_contain_text('calculate(expression="69911 / 6371")')
    # Tokens and cost as the events carry them: the calculator's own, and the turn's.
    thread = page.evaluate("location.hash").removeprefix("#thread=")
    final = httpx.get(f"{server}api/threads/{thread}").json()["turns"][-1]["records"][-1]
    spent = final["event"]["usage"]
    own = spent["by_path"]["proxy>researcher>calculator"]
    assert own["cost_usd"] > 0
    expect(calculator.locator(".usage").first).to_have_text(_usage_label(own))
    root = page.locator('.node[data-path="proxy"] > .node-head .usage.rolled')
    expect(root).to_have_text(f"Σ {_usage_label(spent['total'])}")
    ratio = researchers.nth(2)
    ratio.locator("details.input > summary").first.click()
    expect(ratio.locator(".forwarded")).to_contain_text("forwards the results of: call_")
    expect(ratio.locator(".exact-input").first).to_contain_text("Jupiter's mean radius is 69911 km")
    rows = page.locator(".timeline-row")
    expect(rows).to_have_count(5)
    turn = re.compile(re.escape(f" · {_usage_label(spent['total'])}") + "$")
    expect(rows.first.locator(".bar-call")).to_have_attribute("title", turn)
    expect(page.locator(".timeline .bar-model").first).to_be_visible()


def _usage_label(usage: dict[str, Any]) -> str:
    """Tokens and cost as the page writes them."""
    tokens = f"{usage['input_tokens']} in, {usage['output_tokens']} out"
    return f"{usage['total_tokens']} tokens ({tokens}) · ${usage['cost_usd']:.6f}"


def test_a_sub_conversation_opens_by_its_uid(page: Page, tmp_path: Path) -> None:
    _start(page, SIZES)
    expect(_status(page)).to_have_text("done")
    calculator = page.locator('.node[data-path="proxy>researcher>calculator"]')
    calculator.locator("button.uid").click()
    dialog = page.locator("dialog#transcript")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#transcript-title")).to_contain_text("with calculator")
    expect(dialog.locator(".message")).to_have_count(4)
    expect(dialog).to_contain_text("69911 / 6371 = 10.9733")
    page.screenshot(path=str(tmp_path / "transcript.png"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_two_questions_from_parallel_sub_assistants_answered_at_once(
    page: Page, tmp_path: Path
) -> None:
    _start(page, TRIP)
    _answer_the_trips_questions_at_their_nodes(page, tmp_path / "waiting.png")
    answer = page.locator(".answer-box")
    expect(answer).to_contain_text("Mars' mean radius is 3389.5 km")
    expect(answer).to_contain_text("Dear Ada")
    expect(page.locator(".item.request.is-pending")).to_have_count(0)


def test_questions_asked_before_the_server_started_are_answered_at_their_nodes(
    browser: BrowserContext, tmp_path: Path
) -> None:
    thread = waiting_thread_run_elsewhere(tmp_path / "threads.sqlite")
    app = create_app(
        demo_catalog(),
        model=demo_models(latency=0.0),
        retry=DEMO_RETRY,
        db=tmp_path / "threads.sqlite",
    )
    with serving(app) as url, opened(browser, f"{url}/#thread={thread}", tmp_path) as page:
        _answer_the_trips_questions_at_their_nodes(page, tmp_path / "waiting-since-before.png")
        expect(page.locator(".answer-box")).to_contain_text("Dear Ada")


def _answer_the_trips_questions_at_their_nodes(page: Page, screenshot: Path) -> None:
    """The researcher's and the writer's questions wait at their nodes; answer both at once
    and see the run finish."""
    expect(_status(page)).to_have_text("waiting for input")
    expect(page.locator("#pending-count")).to_contain_text("2 request(s)")
    researcher = page.locator('.node[data-path="proxy>researcher"] .item.request.is-pending')
    writer = page.locator('.node[data-path="proxy>writer"] .item.request.is-pending')
    expect(researcher).to_contain_text("Which planet?")
    expect(writer).to_contain_text("Who is the postcard for?")
    page.screenshot(path=str(screenshot), full_page=True)
    researcher.get_by_label("Your answer").fill("Mars")
    writer.get_by_label("Your answer").fill("Ada")
    page.get_by_role("button", name="Send answers").click()
    expect(_status(page)).to_have_text("done")


def test_a_rejected_approval_tells_the_model_why(page: Page, tmp_path: Path) -> None:
    _start(page, "Write one sentence about the Moon.")
    request = page.locator('.node[data-path="proxy>writer"] .item.request.is-pending')
    expect(request).to_contain_text("wants approval")
    expect(request).to_contain_text("word_count")
    request.get_by_label("Reject").check()
    request.get_by_label("Reason (optional)").fill("not today")
    page.get_by_role("button", name="Send answers").click()
    expect(_status(page)).to_have_text("done")
    writer = page.locator('.node[data-path="proxy>writer"]')
    expect(writer.locator(".tool-result.is-error")).to_contain_text(
        "did not approve this call to word_count: not today"
    )
    expect(page.locator(".answer-box")).to_contain_text("The words were not counted")
    page.screenshot(path=str(tmp_path / "rejected.png"), full_page=True)


def test_a_failure_shows_at_its_node_and_the_run_continues(page: Page, tmp_path: Path) -> None:
    _start(page, "Look up Mars, and fail once on the way.")
    expect(_status(page)).to_have_text("failed")
    researcher = page.locator('.node[data-path="proxy>researcher"]')
    expect(researcher.locator(".badge").first).to_have_text("failed")
    expect(researcher.locator(".item.error")).to_contain_text("503 Service Unavailable")
    expect(researcher.locator(".item.retry")).to_contain_text("retry 1/2")
    expect(page.locator("#composer-send")).to_be_disabled()
    page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
    page.get_by_role("button", name="Continue this run").click()
    expect(_status(page)).to_have_text("done")
    expect(page.locator(".answer-box")).to_contain_text("The researcher found: Mars' mean radius")
    expect(page.locator("#failure-bar")).to_be_hidden()


def test_replies_with_markup_are_shown_as_text(page: Page, tmp_path: Path) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(f"{XSS_IMG}{XSS_SCRIPT}")
    box.press("Enter")  # the keyboard alone starts a thread
    expect(_status(page)).to_have_text("done")
    answer = page.locator(".answer-box")
    expect(answer).to_contain_text(f"No fact about '{XSS_IMG}{XSS_SCRIPT}'")
    tool = page.locator('.node[data-path="proxy>researcher"] .tool-result')
    expect(tool).to_contain_text(XSS_IMG)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#turns img, #turns script").count() == 0
    page.screenshot(path=str(tmp_path / "markup.png"), full_page=True)


def test_the_page_is_usable_from_the_keyboard_alone(page: Page, tmp_path: Path) -> None:
    _tab_to(page, page.get_by_label("Message", exact=True))
    page.keyboard.type(TRIP)
    page.keyboard.press("Enter")
    expect(_status(page)).to_have_text("waiting for input")
    for node, answer in (("researcher", "Mars"), ("writer", "Ada")):
        request = page.locator(f'.node[data-path="proxy>{node}"] .item.request.is-pending')
        _tab_to(page, request.get_by_label("Your answer"))
        page.keyboard.type(answer)
    page.keyboard.press("Enter")  # sends both answers
    expect(_status(page)).to_have_text("done")
    expect(page.locator(".answer-box")).to_contain_text("Dear Ada")
    _tab_to(page, page.locator('.node[data-path="proxy>writer"] button.uid'))
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#transcript")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#transcript-title")).to_contain_text("with writer")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def _tab_to(page: Page, target: Locator, presses: int = 100) -> None:
    """Press Tab until ``target`` has the focus (it must be reachable from the keyboard)."""
    element = target.element_handle()
    for _ in range(presses):
        if page.evaluate("(element) => document.activeElement === element", element):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{presses} presses of Tab never reached {target}")


def test_a_narrow_window_needs_no_sideways_scrolling(page: Page, tmp_path: Path) -> None:
    page.set_viewport_size({"width": 420, "height": 900})
    _start(page, SIZES)
    expect(_status(page)).to_have_text("done")
    page.screenshot(path=str(tmp_path / "narrow.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_unknown_cost_and_a_budget_that_ran_out_show_at_their_nodes(
    browser: BrowserContext, folder: AssistantFolder, tmp_path: Path
) -> None:
    catalog, models = budget_team(folder)
    app = create_app(catalog, model=models, db=tmp_path / "threads.sqlite")
    with serving(app) as url, opened(browser, url, tmp_path) as page:
        box = page.get_by_label("Message", exact=True)
        box.fill("Note A, then B.")
        box.press("Enter")
        expect(_status(page)).to_have_text("incomplete")
        page.screenshot(path=str(tmp_path / "budget.png"), full_page=True)
        boss = page.locator('.node[data-path="boss"] > .node-head')
        worker = page.locator('.node[data-path="boss>worker"] > .node-head')
        expect(worker.locator(".badge")).to_have_text("incomplete: 280 of 250 tokens")
        expect(boss.locator(".badge")).to_have_text("incomplete: 1,380 of 1,350 tokens")
        expect(worker.locator(".usage")).to_have_text("280 tokens (250 in, 30 out) · cost unknown")
        expect(boss.locator(".usage").first).to_have_text(
            f"1100 tokens (1000 in, 100 out) · ${cost(1000, 100):.6f}"
        )
        expect(boss.locator(".usage.rolled")).to_have_text(
            "Σ 1380 tokens (1250 in, 130 out) · cost unknown"
        )
