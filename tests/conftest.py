"""Shared fixtures. Tests never reach the network: only loopback connections are allowed."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from assistant_graph import AssistantCatalog, load_assistants

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_ASSISTANTS = REPO / "assistants"

_LOOPBACK = ("127.", "::1", "localhost")
_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo
_attempts: list[str] = []
"""Network access tried by the running test, refused or not caught by the code under test."""


def _is_loopback(host: object) -> bool:
    return host is None or str(host) in ("", "0.0.0.0") or str(host).startswith(_LOOPBACK)


def _loopback_only_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        _attempts.append(f"a connection to {address[0]}")
        raise RuntimeError(f"tests may not open network connections (tried {address[0]})")
    return _real_connect(self, address)


def _loopback_only_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        _attempts.append(f"a name lookup of {host}")
        raise socket.gaierror(socket.EAI_NONAME, f"tests may not resolve {host}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse, and fail the test on, any connection or name lookup outside loopback, even
    when the code under test catches the error (tiktoken's download did)."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only_connect)
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only_getaddrinfo)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "ASSISTANT_GRAPH_MODEL"):
        monkeypatch.delenv(name, raising=False)
    _attempts.clear()
    yield
    tried, _attempts[:] = list(_attempts), []
    assert not tried, f"the test tried to reach the network: {', '.join(tried)}"


@pytest.fixture
def team() -> AssistantCatalog:
    """The example team in ``assistants/``."""
    return load_assistants(EXAMPLE_ASSISTANTS)


class AssistantFolder:
    """A temporary assistants folder that tests fill with YAML files."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, name: str, **fields: Any) -> Path:
        """Write ``<name>.yaml`` with the given fields over sensible required ones."""
        data = {
            "name": name,
            "description": f"The {name} assistant.",
            "instructions": f"You are {name}.",
            **fields,
        }
        return self.write(f"{name}.yaml", yaml.safe_dump(data, sort_keys=False))

    def write(self, filename: str, text: str) -> Path:
        """Write a file into the folder as given."""
        path = self.path / filename
        path.write_text(text, encoding="utf-8")
        return path

    def load(self, **kwargs: Any) -> AssistantCatalog:
        """Load the folder."""
        return load_assistants(self.path, **kwargs)


@pytest.fixture
def folder(tmp_path: Path) -> AssistantFolder:
    """An empty assistants folder."""
    path = tmp_path / "assistants"
    path.mkdir()
    return AssistantFolder(path)


POSTGRES_URL_VARIABLE = "ASSISTANT_GRAPH_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL database of the ``postgres`` tests, from ``ASSISTANT_GRAPH_TEST_POSTGRES``.

    Tests share it, so each one uses threads of its own (fresh ids). Without the variable
    the tests are skipped, except in CI (``CI=true``), where ``.ci/run`` starts a database
    and a missing one must not pass unnoticed.
    """
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        message = (
            f"no PostgreSQL: set {POSTGRES_URL_VARIABLE}=postgresql://... (.ci/run starts one)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # libpq connects outside Python's sockets, beyond the reach of _no_network.
    host = urlsplit(url).hostname
    if host is not None and not host.startswith(("/", *_LOOPBACK)):
        pytest.fail(f"{POSTGRES_URL_VARIABLE} must name a loopback host or a socket, not {host}")
    return url
