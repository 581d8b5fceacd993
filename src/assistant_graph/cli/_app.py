"""The ``assistant-graph`` command line (typer): run, chat, list, validate, graph, demo.

Each command is a thin layer: it reads its options, opens a
:class:`~assistant_graph.cli._session.Session` and hands the rest to the modules that
render (:mod:`.render`), report (:mod:`.output`) and talk with the person
(:mod:`.human_input`, :mod:`.chat`). Expected failures become one ``error:`` line on
stderr and an exit code (:mod:`.failures`), never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from assistant_graph._catalog import DEFAULT_ASSISTANTS_FOLDER, load_assistants
from assistant_graph._errors import AssistantConfigError
from assistant_graph._thread_guard import DEFAULT_BUSY_TIMEOUT
from assistant_graph.cli._catalog_view import (
    assistant_rows,
    assistants_table,
    mermaid_flowchart,
    plain_list,
)
from assistant_graph.cli._chat import chat_loop
from assistant_graph.cli._demo import run_demo
from assistant_graph.cli._failures import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliFailure,
    bad_input,
    print_failure,
)
from assistant_graph.cli._output import Output, report_turn
from assistant_graph.cli._session import SessionSettings, open_session

__all__ = ["app", "main"]

HELP = (
    "Run assistants described in YAML: each can call the others as sub-assistants. "
    "The nested activity is shown live on stderr; the answer is printed on stdout."
)
STOPPED = "stopped; the thread keeps every finished step"
RESUME_NEEDS_THREAD = "--resume needs --thread ID (the thread that waits for the answer)"
MESSAGE_AND_RESUME = "give either a MESSAGE or --resume ANSWER, not both"
ASSISTANTS_OK = "{count} assistants OK"
PROBLEMS_FOUND = "{count} problem(s) in {folder}"
STDIN_MESSAGE = "-"

app = typer.Typer(
    name="assistant-graph",
    help=HELP,
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold API keys
)

AssistantsOption = Annotated[
    Path,
    typer.Option("--assistants", "-a", help="Folder of assistant YAML files (and tools.py)."),
]
ThreadOption = Annotated[
    str | None,
    typer.Option("--thread", "-t", help="Thread id: continue that conversation (default: new)."),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="ASSISTANT_GRAPH_DB",
        help="Where threads are kept: a SQLite file, a postgresql:// URL, or :memory: "
        "(default: threads.sqlite in the per-user data folder).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        envvar="ASSISTANT_GRAPH_MODEL",
        help="Use this model (provider:model) for every assistant in this run.",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Write the events as JSON Lines on stdout (no tree on stderr)."),
]
TokensOption = Annotated[
    bool, typer.Option("--tokens", help="With --json: include 'token' events (streamed text).")
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No live tree and no token usage on stderr.")
]


class IfBusyChoice(StrEnum):
    """What ``run`` and ``chat`` do when another run holds the thread."""

    reject = "reject"
    wait = "wait"


IfBusyOption = Annotated[
    IfBusyChoice,
    typer.Option(
        "--if-busy",
        help="When another run is in progress on the thread: 'reject' (exit 4 at once, "
        "nothing run) or 'wait' for it to finish (up to --busy-timeout).",
        case_sensitive=False,
    ),
]
BusyTimeoutOption = Annotated[
    float,
    typer.Option("--busy-timeout", min=0, help="Seconds --if-busy wait waits at most."),
]
KeepHistoryOption = Annotated[
    bool,
    typer.Option(
        "--keep-history",
        help="Keep every checkpoint of the thread (by default a finished run keeps only the "
        "latest, so threads grow linearly).",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version())
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Run assistants described in YAML, nested as sub-assistants, from the command line."""


@app.command(epilog=EXIT_CODES_HELP)
def run(
    name: Annotated[str, typer.Argument(help="The assistant to run.")],
    message: Annotated[
        str | None, typer.Argument(help="Your message ('-' reads it from stdin).")
    ] = None,
    assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER),
    thread: ThreadOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    json_output: JsonOption = False,
    tokens: TokensOption = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Answer the thread's pending input requests: plain text for all, or a "
            'JSON object {"<request id>": answer, ...}.',
        ),
    ] = None,
    quiet: QuietOption = False,
    keep_history: KeepHistoryOption = False,
    if_busy: IfBusyOption = IfBusyChoice.reject,
    busy_timeout: BusyTimeoutOption = DEFAULT_BUSY_TIMEOUT,
) -> None:
    """Run assistant NAME on MESSAGE and print its answer.

    Without MESSAGE on a thread whose last run failed, retry that run.
    """
    output = Output(json=json_output, tokens=tokens, quiet=quiet)
    with _guard(output):
        if resume is not None and thread is None:
            raise CliFailure(RESUME_NEEDS_THREAD)
        if resume is not None and message is not None:
            raise CliFailure(MESSAGE_AND_RESUME)
        text = sys.stdin.read().strip() if message == STDIN_MESSAGE else message
        settings = SessionSettings(
            assistants,
            thread,
            db,
            model or None,
            keep_history,
            wait_if_busy=if_busy is IfBusyChoice.wait,
            busy_timeout=busy_timeout,
        )
        with bad_input(), open_session(settings, name) as session:
            turn_input = session.next_input(text, resume)
            output.announce(session, input_is_retry=turn_input is None)
            code = report_turn(session, session.turn(turn_input, output.renderer(name)), output)
    raise typer.Exit(code)


@app.command(epilog=EXIT_CODES_HELP)
def chat(
    name: Annotated[str, typer.Argument(help="The assistant to chat with.")],
    assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER),
    thread: ThreadOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    json_output: JsonOption = False,
    tokens: TokensOption = False,
    quiet: QuietOption = False,
    keep_history: KeepHistoryOption = False,
    if_busy: IfBusyOption = IfBusyChoice.reject,
    busy_timeout: BusyTimeoutOption = DEFAULT_BUSY_TIMEOUT,
) -> None:
    """Chat with assistant NAME: one run per line you type, until /exit or end of input.

    Questions the assistants ask (and approvals they need) are asked inline.
    """
    output = Output(json=json_output, tokens=tokens, quiet=quiet)
    with _guard(output):
        settings = SessionSettings(
            assistants,
            thread,
            db,
            model or None,
            keep_history,
            wait_if_busy=if_busy is IfBusyChoice.wait,
            busy_timeout=busy_timeout,
        )
        with bad_input(), open_session(settings, name) as session:
            code = chat_loop(session, output)
    raise typer.Exit(code)


@app.command("list")
def list_assistants(assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER)) -> None:
    """List the assistants: description, whether callable, tools and sub-assistants."""
    with _guard(Output()), bad_input():
        rows = assistant_rows(load_assistants(assistants))
    console = Console(highlight=False)
    if console.is_terminal:
        console.print(assistants_table(rows))
    else:
        typer.echo("\n".join(plain_list(rows)))


@app.command()
def validate(assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER)) -> None:
    """Check the assistants folder; list every problem as 'file: field: message'."""
    try:
        catalog = load_assistants(assistants)
    except AssistantConfigError as error:
        for problem in error.problems:
            typer.echo(str(problem))
        typer.echo(PROBLEMS_FOUND.format(count=len(error.problems), folder=assistants), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(ASSISTANTS_OK.format(count=len(catalog)))


@app.command()
def graph(
    name: Annotated[str, typer.Argument(help="The assistant at the top of the chart.")],
    assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER),
) -> None:
    """Print a Mermaid flowchart of NAME, the assistants it can reach, and their tools."""
    with _guard(Output()), bad_input():
        chart = mermaid_flowchart(load_assistants(assistants), name)
    typer.echo(chart, nl=False)


@app.command()
def demo(
    assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER),
    json_output: JsonOption = False,
    tokens: TokensOption = False,
    quiet: QuietOption = False,
) -> None:
    """Run the example team in two turns: on OpenAI if OPENAI_API_KEY is set, otherwise
    offline on scripted models (it says so)."""
    output = Output(json=json_output, tokens=tokens, quiet=quiet)
    with _guard(output), bad_input():
        code = run_demo(assistants, output)
    raise typer.Exit(code)


@contextmanager
def _guard(output: Output) -> Iterator[None]:
    """Report expected failures as ``error:`` lines and exit codes; Ctrl-C exits 130."""
    try:
        yield
    except CliFailure as failure:
        print_failure(failure, output.err)
        raise typer.Exit(failure.code) from None
    except KeyboardInterrupt:
        output.err.write(f"\n{STOPPED}\n")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _version() -> str:
    try:
        return version("assistant-graph")
    except PackageNotFoundError:
        return "unknown"


def main() -> None:
    """Entry point of the ``assistant-graph`` console script."""
    app()
