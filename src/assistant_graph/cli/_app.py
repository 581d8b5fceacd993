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

from assistant_graph._budget import Budget
from assistant_graph._catalog import DEFAULT_ASSISTANTS_FOLDER, load_assistants
from assistant_graph._errors import AssistantConfigError
from assistant_graph._example_team import example_assistants
from assistant_graph._thread_guard import DEFAULT_BUSY_TIMEOUT
from assistant_graph.cli._catalog_view import (
    assistant_rows,
    assistants_table,
    mermaid_flowchart,
    plain_list,
)
from assistant_graph.cli._chat import chat_loop
from assistant_graph.cli._demo import check_team, run_demo
from assistant_graph.cli._demo_chat import DEMO_CHAT_BANNER, DEMO_CHAT_TEAM, demo_chat_models
from assistant_graph.cli._failures import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliFailure,
    bad_input,
    print_failure,
)
from assistant_graph.cli._help import FLAG, PlainUsageCommand, PlainUsageGroup
from assistant_graph.cli._mcp import (
    AuthTokenOption,
    ConnectOption,
    HostOption,
    McpServeSettings,
    OnlyOption,
    PortOption,
    Transport,
    TransportOption,
    connect_mcp_servers,
    serve_assistants,
)
from assistant_graph.cli._output import Output, report_turn
from assistant_graph.cli._session import SessionSettings, open_session
from assistant_graph.cli._ui import UiServeSettings, serve_ui

__all__ = ["app", "main"]

HELP = (
    "Run assistants described in YAML: each can call the others as sub-assistants. "
    "The nested activity is shown live on stderr; the answer is printed on stdout."
)
STOPPED = "stopped; the thread keeps every finished step"
RESUME_NEEDS_THREAD = "--resume needs --thread ID (the thread that waits for the answer)"
MESSAGE_AND_RESUME = "give either a MESSAGE or --resume ANSWER, not both"
ASSISTANTS_OK = "{count} assistants OK"
PROBLEMS_FOUND = "{count} {noun} in {folder}"
PROBLEM, PROBLEMS = "problem", "problems"
STDIN_MESSAGE = "-"

app = typer.Typer(
    name="assistant-graph",
    cls=PlainUsageGroup,
    help=HELP,
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold API keys
)

AssistantsOption = Annotated[
    Path,
    typer.Option(
        "--assistants",
        "-a",
        metavar="DIR",
        help="Folder of assistant YAML files (and tools.py).",
    ),
]
ThreadOption = Annotated[
    str | None,
    typer.Option(
        "--thread",
        "-t",
        metavar="ID",
        help="Thread id: continue that conversation (default: new).",
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="ASSISTANT_GRAPH_DB",
        metavar="DB",
        help="Where threads are kept: a SQLite file path (its folder must exist), "
        "sqlite:///PATH, a postgresql:// URL, or :memory: "
        "(default: threads.sqlite in the per-user data folder).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        envvar="ASSISTANT_GRAPH_MODEL",
        metavar="PROVIDER:MODEL",
        help="Use this model (provider:model) for every assistant in this run.",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        metavar=FLAG,
        help="Write the events as JSON Lines on stdout (no tree on stderr).",
    ),
]
TokensOption = Annotated[
    bool,
    typer.Option(
        "--tokens", metavar=FLAG, help="With --json: include 'token' events (streamed text)."
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", metavar=FLAG, help="No live tree and no token usage on stderr."),
]


MaxTokensOption = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        min=1,
        metavar="N",
        help="Stop each run (incomplete, resumable) once it has used N tokens, "
        "sub-assistants included.",
        show_default=False,
    ),
]
MaxCostOption = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        metavar="USD",
        help="Stop each run (incomplete, resumable) once it has spent USD dollars, "
        "sub-assistants included (calls of models with no known price are not counted).",
        show_default=False,
    ),
]
MaxSecondsOption = Annotated[
    float | None,
    typer.Option(
        "--max-seconds",
        metavar="SECONDS",
        help="Stop each run (incomplete, resumable) after SECONDS of wall time; a model "
        "call in progress is cut at that time.",
        show_default=False,
    ),
]
NOT_POSITIVE = "{flag} must be more than 0, got {value:g}"


def _run_wide_budget(
    max_tokens: int | None, max_cost: float | None, max_seconds: float | None
) -> Budget | None:
    """The run-wide limits the flags give (None: no flag given)."""
    for flag, value in (("--max-cost", max_cost), ("--max-seconds", max_seconds)):
        if value is not None and not value > 0:
            raise CliFailure(NOT_POSITIVE.format(flag=flag, value=value))
    if max_tokens is None and max_cost is None and max_seconds is None:
        return None
    return Budget(max_tokens=max_tokens, max_cost_usd=max_cost, max_seconds=max_seconds)


class IfBusyChoice(StrEnum):
    """What ``run`` and ``chat`` do when another run holds the thread."""

    reject = "reject"
    wait = "wait"


IfBusyOption = Annotated[
    IfBusyChoice,
    typer.Option(
        "--if-busy",
        metavar="reject|wait",
        help="When another run is in progress on the thread: 'reject' (exit 4 at once, "
        "nothing run) or 'wait' for it to finish (up to --busy-timeout).",
        case_sensitive=False,
    ),
]
BusyTimeoutOption = Annotated[
    float,
    typer.Option(
        "--busy-timeout", min=0, metavar="SECONDS", help="Seconds --if-busy wait waits at most."
    ),
]
KeepHistoryOption = Annotated[
    bool,
    typer.Option(
        "--keep-history",
        metavar=FLAG,
        help="Keep every checkpoint of the thread. By default a finished run keeps only the "
        "latest (SQLite files and PostgreSQL), so a thread's storage grows with its length, "
        "not its square.",
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
            "--version",
            metavar=FLAG,
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Run assistants described in YAML, nested as sub-assistants, from the command line."""


@app.command(cls=PlainUsageCommand, epilog=EXIT_CODES_HELP)
def run(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The assistant to run.")],
    message: Annotated[
        str | None,
        typer.Argument(metavar="MESSAGE", help="Your message ('-' reads it from stdin)."),
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
            metavar="ANSWER",
            help="Answer the thread's pending input requests: plain text for all, or a "
            'JSON object {"<request id>": answer, ...}.',
        ),
    ] = None,
    quiet: QuietOption = False,
    keep_history: KeepHistoryOption = False,
    if_busy: IfBusyOption = IfBusyChoice.reject,
    busy_timeout: BusyTimeoutOption = DEFAULT_BUSY_TIMEOUT,
    max_tokens: MaxTokensOption = None,
    max_cost: MaxCostOption = None,
    max_seconds: MaxSecondsOption = None,
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
        budget = _run_wide_budget(max_tokens, max_cost, max_seconds)
        text = sys.stdin.read().strip() if message == STDIN_MESSAGE else message
        settings = SessionSettings(
            assistants,
            thread,
            db,
            model or None,
            keep_history,
            wait_if_busy=if_busy is IfBusyChoice.wait,
            busy_timeout=busy_timeout,
            budget=budget,
        )
        with bad_input(), open_session(settings, name) as session:
            turn_input = session.next_input(text, resume)
            output.announce(session, input_is_retry=turn_input is None)
            code = report_turn(session, session.turn(turn_input, output.renderer(name)), output)
    raise typer.Exit(code)


@app.command(cls=PlainUsageCommand, epilog=EXIT_CODES_HELP)
def chat(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The assistant to chat with.")],
    assistants: Annotated[
        Path | None,
        typer.Option(
            "--assistants",
            "-a",
            metavar="DIR",
            help="Folder of assistant YAML files (and tools.py) (default: assistants; "
            "with --demo, the example team).",
            show_default=False,
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            metavar=FLAG,
            help="Chat with the example team on scripted models: no API key, no model "
            "server, nothing sent anywhere.",
        ),
    ] = False,
    thread: ThreadOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    json_output: JsonOption = False,
    tokens: TokensOption = False,
    quiet: QuietOption = False,
    keep_history: KeepHistoryOption = False,
    if_busy: IfBusyOption = IfBusyChoice.reject,
    busy_timeout: BusyTimeoutOption = DEFAULT_BUSY_TIMEOUT,
    max_tokens: MaxTokensOption = None,
    max_cost: MaxCostOption = None,
    max_seconds: MaxSecondsOption = None,
) -> None:
    """Chat with assistant NAME: one run per line you type, until /exit or end of input.

    Questions the assistants ask (and approvals they need) are asked inline; /help lists
    the chat's commands. With --demo, no key is needed: the example team answers on
    scripted models.
    """
    output = Output(json=json_output, tokens=tokens, quiet=quiet)
    with _guard(output):
        budget = _run_wide_budget(max_tokens, max_cost, max_seconds)
        default = example_assistants() if demo else Path(DEFAULT_ASSISTANTS_FOLDER)
        settings = SessionSettings(
            assistants or default,
            thread,
            db,
            demo_chat_models() if demo else model or None,
            keep_history,
            wait_if_busy=if_busy is IfBusyChoice.wait,
            busy_timeout=busy_timeout,
            default_assistants=default,
            demo=demo,
            budget=budget,
        )
        with bad_input(), open_session(settings, name) as session:
            if demo:
                check_team(session.catalog, settings.assistants, DEMO_CHAT_TEAM)
                output.note(DEMO_CHAT_BANNER)
            code = chat_loop(session, output)
    raise typer.Exit(code)


@app.command("list", cls=PlainUsageCommand)
def list_assistants(assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER)) -> None:
    """List the assistants: description, whether callable, tools and sub-assistants."""
    with _guard(Output()), bad_input():
        rows = assistant_rows(load_assistants(assistants))
    console = Console(highlight=False)
    if console.is_terminal:
        console.print(assistants_table(rows))
    else:
        typer.echo("\n".join(plain_list(rows)))


@app.command(cls=PlainUsageCommand)
def validate(
    assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER), connect: ConnectOption = False
) -> None:
    """Check the assistants folder; list every problem as 'file: field: message'."""
    try:
        catalog = load_assistants(assistants)
        servers = connect_mcp_servers(catalog) if connect else []
    except AssistantConfigError as error:
        for problem in error.problems:
            typer.echo(str(problem))
        count = len(error.problems)
        noun = PROBLEM if count == 1 else PROBLEMS
        typer.echo(PROBLEMS_FOUND.format(count=count, noun=noun, folder=assistants), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(ASSISTANTS_OK.format(count=len(catalog)))
    for line in servers:
        typer.echo(line)


@app.command("mcp", cls=PlainUsageCommand)
def mcp(
    assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER),
    transport: TransportOption = Transport.stdio,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    only: OnlyOption = None,
    db: DbOption = None,
    model: ModelOption = None,
    keep_history: KeepHistoryOption = False,
    auth_token: AuthTokenOption = None,
) -> None:
    """Serve the callable assistants (or --only these) as MCP tools, until stopped.

    Each tool takes a message and an optional conversation_id (from an earlier result)
    and answers with the assistant's answer and the conversation id.
    """
    settings = McpServeSettings(
        assistants, transport, host, port, only or [], db, model or None, keep_history, auth_token
    )
    with _guard(Output()), bad_input():
        serve_assistants(settings)


@app.command(cls=PlainUsageCommand)
def graph(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The assistant at the top of the chart.")
    ],
    assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER),
) -> None:
    """Print a Mermaid flowchart of NAME, the assistants it can reach, and their tools."""
    with _guard(Output()), bad_input():
        chart = mermaid_flowchart(load_assistants(assistants), name)
    typer.echo(chart, nl=False)


@app.command(cls=PlainUsageCommand)
def demo(
    assistants: Annotated[
        Path | None,
        typer.Option(
            "--assistants",
            "-a",
            metavar="DIR",
            help="Folder of the team to run (default: the example team, which ships with "
            "the package).",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
    tokens: TokensOption = False,
    quiet: QuietOption = False,
) -> None:
    """Run the example team in two turns: on OpenAI if OPENAI_API_KEY is set, otherwise
    offline on scripted models (it says so)."""
    output = Output(json=json_output, tokens=tokens, quiet=quiet)
    with _guard(output), bad_input():
        code = run_demo(assistants or example_assistants(), output)
    raise typer.Exit(code)


@app.command("ui", cls=PlainUsageCommand)
def ui(
    assistants: AssistantsOption = Path(DEFAULT_ASSISTANTS_FOLDER),
    db: DbOption = None,
    model: ModelOption = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="HOST",
            help="The address to listen on (any other than loopback needs --token).",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, metavar="PORT", help="The port.")
    ] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="ASSISTANT_GRAPH_UI_TOKEN",
            metavar="TOKEN",
            help="Access token every request must carry; open the page as "
            "http://HOST:PORT/?token=TOKEN. Needed to listen beyond loopback.",
            show_envvar=True,
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            metavar=FLAG,
            help="Serve the example team on scripted models: no API key, nothing sent "
            "anywhere (threads in memory unless --db is given).",
        ),
    ] = False,
    keep_history: KeepHistoryOption = False,
) -> None:
    """Open a local web page to watch and steer the assistants: threads, the live
    delegation tree of each turn, a timeline, questions and approvals, failed runs."""
    settings = UiServeSettings(
        assistants, db, model or None, host, port, token or None, demo, keep_history
    )
    with _guard(Output()), bad_input():
        serve_ui(settings)


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
