"""Serving assistants as MCP tools, for any MCP client: ``create_mcp_server``, ``serve_mcp``.

Each served assistant is one tool, named like the assistant and described by its
``description``. The tool takes the message and, to continue an earlier conversation
with that assistant, the ``conversation_id`` an earlier result gave; it answers with the
assistant's answer and the conversation id (as text, and as structured content of the
shape :class:`AssistantReply`). A conversation is a thread of the checkpointer, so it
survives restarts; sub-assistants, step budgets, approvals and questions work as in
``assistant-graph run``. An assistant that waits for the person (``ask_user``, an
approval) answers at once, saying so and how to answer: call the tool again with the
conversation id and the answer as the message.

The official ``mcp`` SDK (FastMCP) does the protocol and the transports; this module
only maps tool calls to runs. Runs are the synchronous API (``stream_events``) on worker
threads, so a finished conversation is compacted as the CLI compacts it.

Example:
    ```python
    from assistant_graph import load_assistants, open_checkpointer
    from assistant_graph.mcp_server import create_mcp_server, serve_mcp

    with open_checkpointer("threads.sqlite") as saver:
        server = create_mcp_server(load_assistants("assistants"), checkpointer=saver)
        serve_mcp(server, transport="stdio")
    ```
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Interrupt
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from assistant_graph._catalog import AssistantCatalog
from assistant_graph._compaction import compact_thread
from assistant_graph._event_stream import stream_events
from assistant_graph._graph import build_assistant_graph
from assistant_graph._mcp_config import AUTH_TOKEN_ENV
from assistant_graph._models import ModelOverride
from assistant_graph.events import ErrorEvent, FinalEvent

__all__ = [
    "AUTH_TOKEN_ENV",
    "AssistantReply",
    "PendingRequest",
    "check_exposure",
    "create_mcp_server",
    "serve_mcp",
]

SERVER_NAME = "assistant-graph"
HTTP_PATH = "/mcp"
MESSAGE_HELP = (
    "Your message to the assistant: the task and everything it needs to know. When the "
    "assistant waits for your input, your answer."
)
CONVERSATION_HELP = (
    "To continue an earlier conversation with this assistant, the conversation_id its "
    "result gave; leave it out to start a new conversation."
)
FOOTER = "[conversation_id: {id} (pass it as conversation_id to continue this conversation)]"
WAITING = "{name} is waiting for your input before it can go on:"
REQUEST_LINE = "- [{id}] {path} {verb}: {question}"
HOW_TO_ANSWER = (
    'To answer, call {name} again with conversation_id "{id}" and your answer as the '
    "message (approvals: yes, or no with the reason). With several requests, one answer "
    'goes to all of them, or answer each with a JSON object {{"<request id>": "answer"}}.'
)
UNKNOWN_CONVERSATION = (
    "no conversation {id!r} with {name}: pass a conversation_id that a result of {name} "
    "gave, or none to start a new conversation"
)
RETRY_FIRST = (
    "the last run of conversation {id!r} failed before it finished; call {name} with this "
    "conversation_id and an empty message to retry it, then send your message"
)
RUN_FAILED = "the run failed: {message}"
NO_LOOPBACK_WITHOUT_TOKEN = (
    "serving on {host} reaches beyond this machine: give an auth token (--auth-token or "
    "{env}) that clients must send as 'Authorization: Bearer <token>'"
)
STARTED = "serving {count} assistant(s) as MCP tools ({names}) over {where}"
FINISHED_STATUSES = ("completed", "incomplete")


class PendingRequest(BaseModel):
    """A question or an approval an assistant waits for."""

    id: str = Field(description="The request id (to answer several requests one by one).")
    """The request id."""
    kind: str = Field(description="question or approval.")
    """``question`` or ``approval``."""
    question: str = Field(description="What the assistant asks.")
    """The text of the request."""
    path: list[str] = Field(description="The assistants from the called one to the asker.")
    """Who asks: the assistant names from the called one down."""


class AssistantReply(BaseModel):
    """The structured result of a served assistant's tool."""

    answer: str = Field(description="The assistant's answer (empty while it waits).")
    """The assistant's answer."""
    conversation_id: str = Field(description="Pass it back to continue this conversation.")
    """The conversation, to continue it."""
    status: Literal["completed", "incomplete", "waiting_for_input"] = Field(
        description="completed; incomplete (out of steps, continue it to go on); or "
        "waiting_for_input (answer the pending requests)."
    )
    """How the run ended."""
    pending: list[PendingRequest] = Field(
        default_factory=list, description="What the assistant waits for."
    )
    """The requests to answer, when waiting for input."""


def create_mcp_server(
    catalog: AssistantCatalog,
    *,
    checkpointer: BaseCheckpointSaver[Any],
    assistants: Sequence[str] | None = None,
    model: ModelOverride = None,
    keep_history: bool = False,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> FastMCP:
    """An MCP server (FastMCP) with one tool per served assistant.

    Args:
        catalog: The assistants.
        checkpointer: Where conversations are kept (a sync saver, e.g. from
            :func:`~assistant_graph.open_checkpointer`).
        assistants: The assistants to serve (any, callable or not); default: every
            ``callable`` assistant.
        model: Replaces every assistant's model (as in ``build_assistant_graph``).
        keep_history: Keep every checkpoint instead of compacting finished conversations.
        host: For the HTTP transport: where it will listen (loopback turns on the SDK's
            DNS-rebinding protection).
        port: For the HTTP transport: its port.

    Raises:
        MissingConfigError: An assistant in ``assistants`` does not exist.
        AssistantConfigError: A graph cannot be built (model, MCP servers of its own).
        ValueError: There is no assistant to serve.
    """
    names = list(assistants) if assistants is not None else _callable(catalog)
    if not names:
        raise ValueError("no assistant to serve: mark some callable, or name them")
    server = FastMCP(
        SERVER_NAME, host=host, port=port, streamable_http_path=HTTP_PATH, log_level="WARNING"
    )
    for name in names:
        graph = build_assistant_graph(name, catalog, model=model, checkpointer=checkpointer)
        served = _ServedAssistant(name, graph, keep_history)
        server.add_tool(
            served.tool_function(),
            name=name,
            description=" ".join(catalog[name].description.split()),
        )
    return server


def serve_mcp(
    server: FastMCP,
    *,
    transport: Literal["stdio", "streamable-http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    auth_token: str | None = None,
) -> None:
    """Serve until stopped: over stdio, or streamable HTTP at ``http://host:port/mcp``.

    Raises:
        ValueError: HTTP on a host that is not loopback without an ``auth_token``.
    """
    names = sorted(tool.name for tool in anyio.run(server.list_tools))
    if transport == "stdio":
        _say(STARTED.format(count=len(names), names=", ".join(names), where="stdio"))
        server.run("stdio")
        return
    check_exposure(host, auth_token)
    import uvicorn

    app: Any = server.streamable_http_app()
    if auth_token is not None:
        app = _BearerToken(app, auth_token)
    where = f"streamable HTTP on http://{host}:{port}{HTTP_PATH}"
    _say(STARTED.format(count=len(names), names=", ".join(names), where=where))
    uvicorn.run(app, host=host, port=port, log_level="warning")


def check_exposure(host: str, auth_token: str | None) -> None:
    """Refuse to serve HTTP beyond this machine without a token.

    Raises:
        ValueError: ``host`` is not a loopback address and there is no ``auth_token``.
    """
    if auth_token is None and not _is_loopback(host):
        raise ValueError(NO_LOOPBACK_WITHOUT_TOKEN.format(host=host, env=AUTH_TOKEN_ENV))


@dataclass(frozen=True)
class _ServedAssistant:
    """One assistant as a tool: each call is one run on the conversation's thread."""

    name: str
    graph: CompiledStateGraph[Any, Any, Any, Any]
    keep_history: bool

    def tool_function(self) -> Any:
        """The function FastMCP makes the tool of (its signature is the input schema)."""

        async def call(
            message: Annotated[str, Field(description=MESSAGE_HELP)],
            conversation_id: Annotated[str | None, Field(description=CONVERSATION_HELP)] = None,
        ) -> Annotated[CallToolResult, AssistantReply]:
            return await anyio.to_thread.run_sync(self.turn, message, conversation_id)

        return call

    def turn(self, message: str, conversation_id: str | None) -> CallToolResult:
        """One run: start or continue the conversation, and report how it ended.

        Raises:
            ToolError: An unknown conversation, a failed run, a busy conversation.
        """
        thread = conversation_id or f"{self.name}-{uuid.uuid4().hex[:12]}"
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        run_input = self._input(message, conversation_id, config)
        final: FinalEvent | None = None
        for event in stream_events(self.graph, run_input, config):
            if isinstance(event, ErrorEvent):
                raise ToolError(RUN_FAILED.format(message=event.message))
            if isinstance(event, FinalEvent):
                final = event
        if final is None:  # stream_events always ends with one
            raise ToolError(RUN_FAILED.format(message="no final event"))
        if final.status in FINISHED_STATUSES and not self.keep_history:
            compact_thread(self.graph, config, finished=True)
        return self._reply(final, thread, config)

    def _input(self, message: str, conversation_id: str | None, config: RunnableConfig) -> Any:
        if conversation_id is None:
            return message
        state = self.graph.get_state(config)
        if not conversation_id.startswith(f"{self.name}-") or not state.values:
            raise ToolError(UNKNOWN_CONVERSATION.format(id=conversation_id, name=self.name))
        if state.interrupts:
            return _resume(message, state.interrupts)
        if state.next:
            if message.strip():
                raise ToolError(RETRY_FIRST.format(id=conversation_id, name=self.name))
            return None
        return message

    def _reply(self, final: FinalEvent, thread: str, config: RunnableConfig) -> CallToolResult:
        if final.status == "interrupted":
            pending = [_pending(item) for item in self.graph.get_state(config).interrupts]
            reply = AssistantReply(
                answer="", conversation_id=thread, status="waiting_for_input", pending=pending
            )
            text = self._waiting_text(reply)
        else:
            status: Literal["completed", "incomplete"] = (
                "incomplete" if final.status == "incomplete" else "completed"
            )
            reply = AssistantReply(answer=final.content, conversation_id=thread, status=status)
            text = f"{final.content}\n\n{FOOTER.format(id=thread)}"
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structuredContent=reply.model_dump(mode="json"),
        )

    def _waiting_text(self, reply: AssistantReply) -> str:
        lines = [WAITING.format(name=self.name)]
        for request in reply.pending:
            verb = "wants approval" if request.kind == "approval" else "asks"
            path = " > ".join(request.path) or self.name
            lines.append(
                REQUEST_LINE.format(id=request.id, path=path, verb=verb, question=request.question)
            )
        lines.append(HOW_TO_ANSWER.format(name=self.name, id=reply.conversation_id))
        return "\n".join(lines)


def _pending(item: Interrupt) -> PendingRequest:
    value = item.value if isinstance(item.value, Mapping) else {"question": str(item.value)}
    return PendingRequest(
        id=item.id,
        kind=str(value.get("kind") or "question"),
        question=" ".join(str(value.get("question", "")).split()),
        path=[str(part) for part in value.get("path") or []],
    )


def _resume(message: str, pending: Sequence[Interrupt]) -> Command[Any]:
    """The answers: a JSON object of request ids to answers, or one answer for all."""
    ids = [item.id for item in pending]
    try:
        parsed = json.loads(message)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed and set(parsed) <= set(ids):
        return Command(resume=parsed)
    return Command(resume=dict.fromkeys(ids, message))


def _callable(catalog: AssistantCatalog) -> list[str]:
    return [name for name in catalog if catalog[name].callable]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _say(text: str) -> None:
    """Report on stderr (stdout carries the protocol over stdio)."""
    print(text, file=sys.stderr, flush=True)


class _BearerToken:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)
