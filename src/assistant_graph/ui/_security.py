"""What keeps the page's server to its person: the access token, the host check, CSRF
protection, the response headers, and secrets kept out of everything sent.

* **Where it listens.** Loopback by default; any other address only with a token
  (:func:`check_exposure`, as ``assistant-graph mcp`` does).
* **Who may ask.** With a token, every request and stream must carry it: the page's first
  visit has it in the address (``/?token=...``), which sets an ``HttpOnly``,
  ``SameSite=Strict`` cookie and redirects to the address without it; programs send
  ``Authorization: Bearer <token>``. Without a token, only requests whose ``Host`` is a
  loopback name are served, so a web page whose own name resolves to 127.0.0.1 (DNS
  rebinding) cannot read the page or its CSRF token.
* **Cross-site requests.** Every state-changing request (``POST``) must carry the CSRF
  token the page got in its HTML (``X-CSRF-Token``; another site cannot read it, and a
  custom header cannot be sent cross-site without a CORS preflight, which this server
  never grants), be JSON, and come from the page's own origin when the browser says.
* **What the page runs.** A Content Security Policy allows the package's own script and
  style only (no inline script), so even a mistake in rendering could not run a reply.
* **Secrets.** Every JSON body and stream message passes :func:`redact_secrets` (the
  CLI's rule: values of environment variables named ``*API_KEY``, ``*TOKEN``,
  ``*SECRET``, ``*PASSWORD``), and the access token itself is never put in a page.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import URL, Headers, QueryParams
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from assistant_graph.cli._failures import redact_secrets

__all__ = [
    "CSRF_HEADER",
    "TOKEN_COOKIE",
    "TOKEN_ENV",
    "Guard",
    "check_exposure",
    "is_loopback",
    "redact_secrets",
]

TOKEN_ENV = "ASSISTANT_GRAPH_UI_TOKEN"
"""The environment variable ``ui --token`` falls back to."""
TOKEN_COOKIE = "assistant_graph_ui"
"""The cookie that carries the access token after the first visit."""
TOKEN_QUERY = "token"
"""The query parameter of the first visit's address."""
CSRF_HEADER = "x-csrf-token"
"""The header every state-changing request carries the page's CSRF token in."""
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_LOOPBACK_WITHOUT_TOKEN = (
    "listening on {host} reaches beyond this machine: give an access token (--token or "
    "{env}); the page is then opened as http://HOST:PORT/?token=<token>"
)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)
UNAUTHORIZED = "this page needs its access token: open it with ?token=<token>"
WRONG_HOST = "this server answers only to loopback names (localhost, 127.0.0.1)"
CROSS_SITE = "refused: a state-changing request must come from this page (CSRF token, JSON)"

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) stays on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without an access token.

    Raises:
        ValueError: ``host`` is not a loopback address and there is no ``token``.
    """
    if not token and not is_loopback(host):
        raise ValueError(NO_LOOPBACK_WITHOUT_TOKEN.format(host=host, env=TOKEN_ENV))


@dataclass
class Guard:
    """ASGI middleware applying the rules of this module to every request of ``app``."""

    app: ASGIApp
    """The application it guards."""
    token: str | None = None
    """The access token, or None to serve loopback names only."""
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """The CSRF token the page is given."""

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, _with_security_headers(send))

    def _refusal(self, scope: MutableMapping[str, Any]) -> Response | None:
        headers = Headers(scope=scope)
        query = QueryParams(scope.get("query_string", b""))
        if self.token is None:
            if not is_loopback(_hostname(headers.get("host", ""))):
                return PlainTextResponse(WRONG_HOST, status_code=421)
        elif query.get(TOKEN_QUERY) is not None:
            return self._first_visit(scope, query)
        elif not self._authorized(headers):
            return PlainTextResponse(
                UNAUTHORIZED, status_code=401, headers={"www-authenticate": "Bearer"}
            )
        if scope["method"] not in SAFE_METHODS and not self._same_site(headers):
            return JSONResponse({"error": CROSS_SITE}, status_code=403)
        return None

    def _authorized(self, headers: Headers) -> bool:
        assert self.token is not None
        bearer = headers.get("authorization", "")
        cookie = _cookies(headers).get(TOKEN_COOKIE, "")
        return _same(bearer, f"Bearer {self.token}") or _same(cookie, self.token)

    def _first_visit(self, scope: MutableMapping[str, Any], query: QueryParams) -> Response:
        """A visit with ``?token=``: set the cookie and go to the address without it."""
        assert self.token is not None
        if not _same(query[TOKEN_QUERY], self.token):
            return PlainTextResponse(UNAUTHORIZED, status_code=401)
        rest = urlencode([(key, value) for key, value in query.multi_items() if key != TOKEN_QUERY])
        url = URL(scope=scope).replace(query=rest)
        response = RedirectResponse(str(url.path) + (f"?{rest}" if rest else ""), status_code=303)
        response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        return response

    def _same_site(self, headers: Headers) -> bool:
        if not _same(headers.get(CSRF_HEADER, ""), self.csrf_token):
            return False
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return False
        origin = headers.get("origin")  # browsers send it; other clients need not
        return origin is None or urlsplit(origin).netloc == headers.get("host", "")


def _with_security_headers(
    send: Callable[[Any], Awaitable[None]],
) -> Callable[[Any], Awaitable[None]]:
    async def sending(message: Any) -> None:
        if message["type"] == "http.response.start":
            names = {name for name, _ in message.get("headers", [])}
            extra = [(name, value) for name, value in SECURITY_HEADERS if name not in names]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _hostname(host: str) -> str:
    """The name in a ``Host`` header, without the port (``[::1]:8765`` gives ``::1``)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cookies(headers: Headers) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            cookies[name] = value
    return cookies
