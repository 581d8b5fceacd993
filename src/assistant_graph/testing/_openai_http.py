"""The HTTP side of the scripted OpenAI server: connections, endpoints, sending answers.

Private to :mod:`assistant_graph.testing`. :class:`ScriptedHTTPServer` serves each
connection in a daemon thread on 127.0.0.1 and tracks the connections, so the server can
end and join them when it stops. Its request handler parses each request, asks the owning
:class:`~assistant_graph.testing._openai_server.ScriptedOpenAIServer` for the answer, and
sends it as JSON, as server-sent events in chunked encoding (optionally dropped part-way),
or as an OpenAI-style error with ``retry-after-ms`` and, for answers a script could not
give, ``x-should-retry: false``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from assistant_graph.testing._openai_scripts import ChatRequest, ImageRequest, ScriptedReply
from assistant_graph.testing._openai_wire import (
    JSON_CONTENT_TYPE,
    MALFORMED_JSON,
    SSE_CONTENT_TYPE,
    SSE_DONE,
    completion_body,
    error_body,
    image_body,
    stream_chunks,
)

if TYPE_CHECKING:
    from assistant_graph.testing._openai_server import ScriptedOpenAIServer

__all__ = ["HOST", "SCRIPTED_FAILURE", "THREAD_NAME", "Failure", "ScriptedHTTPServer"]

HOST = "127.0.0.1"
_CHAT_PATH = "/v1/chat/completions"
_IMAGES_PATH = "/v1/images/generations"
_MODELS_PATH = "/v1/models"
THREAD_NAME = "scripted-openai-server"
_RETRY_AFTER_MS = "10"
SCRIPTED_FAILURE = "Scripted failure: status {status} (request #{number} for route key {key!r})."
_BAD_BODY = "Request body is not a JSON object: {error}"
_UNKNOWN_ENDPOINT = "Unknown endpoint {method} {path}; the scripted server answers {known}."
_HANDLER_CRASHED = "The scripted server failed while answering a request: {error!r}"


@dataclass(frozen=True)
class Failure:
    """An error answer decided by the server rather than by a script."""

    status: int
    message: str
    should_retry: bool = True


class ScriptedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections, so `stop()` can end and join them.

    `ThreadingHTTPServer` joins only non-daemon request threads on close, and a request
    thread waits on its keep-alive connection for as long as the client keeps it pooled
    (langchain-openai caches its HTTP clients), so the server shuts those connections down
    itself and joins their threads.
    """

    daemon_threads = True  # a server a test forgot to stop must not block interpreter exit

    def __init__(self, owner: ScriptedOpenAIServer) -> None:
        self.owner = owner
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__((HOST, 0), _Handler)

    def server_bind(self) -> None:
        """Bind without `HTTPServer`'s reverse DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection in its own daemon thread, and remember both."""
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"{THREAD_NAME}-{self.server_port}-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection and join the threads that served them."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record unexpected failures; a client that hung up is no failure of the script."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            self.owner._fail(_HANDLER_CRASHED.format(error=error))


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into calls on the owning `ScriptedOpenAIServer`, and back."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the OpenAI SDK expects
    server: ScriptedHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: tests read `server.requests`, not stderr."""

    def do_GET(self) -> None:
        """Answer `GET /v1/models`."""
        if self._path() == _MODELS_PATH:
            self._send_json(200, self.server.owner._models_body())
        else:
            self._send_unknown_endpoint()

    def do_POST(self) -> None:
        """Answer chat completions and image generations."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self._path()
        if path not in (_CHAT_PATH, _IMAGES_PATH):
            self._send_unknown_endpoint()
            return
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError(f"expected an object, got {type(body).__name__}")
        except ValueError as error:
            failure = self.server.owner._fail(_BAD_BODY.format(error=error))
            self._send_error(dataclasses.replace(failure, status=400))
            return
        if path == _CHAT_PATH:
            self._answer_chat(body)
        else:
            self._answer_image(body)

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _answer_chat(self, body: dict[str, Any]) -> None:
        owner = self.server.owner
        request, number, answer = owner._decide_chat(body, dict(self.headers.items()))
        if isinstance(answer, Failure):
            self._send_error(answer)
            return
        time.sleep(answer.delay)
        completion_id = f"chatcmpl-scripted-{number}"
        if answer.status != 200:
            key = request.route_key
            message = SCRIPTED_FAILURE.format(status=answer.status, number=number, key=key)
            self._send_error(Failure(status=answer.status, message=message))
        elif request.stream:
            self._send_stream(answer, request, completion_id)
        elif answer.malformed:
            self._send_bytes(200, MALFORMED_JSON, JSON_CONTENT_TYPE)
        else:
            self._send_json(200, completion_body(answer, request, completion_id))

    def _answer_image(self, body: dict[str, Any]) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = ImageRequest(
            model=str(body.get("model", "")),
            prompt=str(body.get("prompt", "")),
            raw=body,
            headers=headers,
        )
        png = self.server.owner._record_image(request)
        self._send_json(200, image_body(request, png))

    def _send_unknown_endpoint(self) -> None:
        known = f"POST {_CHAT_PATH}, POST {_IMAGES_PATH}, GET {_MODELS_PATH}"
        message = _UNKNOWN_ENDPOINT.format(method=self.command, path=self.path, known=known)
        failure = self.server.owner._fail(message)
        self._send_error(dataclasses.replace(failure, status=404))

    def _send_error(self, failure: Failure) -> None:
        headers = [("retry-after-ms", _RETRY_AFTER_MS)]
        if not failure.should_retry:
            headers.append(("x-should-retry", "false"))
        self._send_json(failure.status, error_body(failure.status, failure.message), headers)

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), JSON_CONTENT_TYPE, headers)

    def _send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_stream(self, answer: ScriptedReply, request: ChatRequest, cid: str) -> None:
        """Send the reply as server-sent events, in HTTP chunked transfer encoding."""
        events = [
            b"data: " + json.dumps(c).encode() + b"\n\n"
            for c in stream_chunks(answer, request, cid)
        ]
        if answer.malformed:
            events.insert(1, b"data: " + MALFORMED_JSON + b"\n\n")
        self.send_response(200)
        self.send_header("Content-Type", SSE_CONTENT_TYPE)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        limit = answer.drop_after_chunks
        for event in events if limit is None else events[:limit]:
            self._write_chunk(event)
        if limit is not None:
            # Closing without the terminating empty chunk makes the client see a broken body.
            self.close_connection = True
            return
        self._write_chunk(SSE_DONE)
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
