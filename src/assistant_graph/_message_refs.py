"""Lists of messages as references: each message is stored once, by the digest of its bytes.

A checkpoint holds every channel's whole value, and the ``messages`` channel changes at
every step, so with the full history kept a thread's storage grows with the square of its
length (``benchmarks/``). :class:`MessageCodec` replaces every list of messages in a value
(a channel value, a sub-conversation in ``sub_assistant_states`` at any depth, a pending
write) by a small reference, and hands out the rows the references point to:

- a **message row**: the message as the saver's serializer writes it, keyed by the
  16-byte BLAKE2b digest of those bytes;
- a **chunk row**: the digests of :data:`CHUNK` consecutive messages at a fixed boundary
  (messages 0-31, 32-63, ...), keyed by the digest of those digests.

A reference is ``{MARKER: 1, "chunks": [...], "tail": [...]}``: the full chunks, then the
digests of the messages after the last full chunk. It grows by one digest per message
and shrinks by 31 at every chunk boundary, so a checkpoint's reference to a thread of
n messages takes at most ``16 * (n / 32 + 31)`` bytes, and a message once stored is never
written again. Values without references (threads written before) decode as they are.

Two caches make the codec cheap on the hot path, both keyed by content, so never stale:
the digest of each message object already serialized (by identity, dropped when the
object is), and the message decoded from each digest (the latest 16 MB of them); and the
latest lists encoded or read, so that an unchanged list costs nothing again.
A decoded message is shared by the states loaded after it: like LangGraph itself, which
serializes checkpoints in the background while the next step runs, this relies on state
values not being changed in place.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.base import SerializerProtocol

from assistant_graph._errors import CheckpointerError

__all__ = [
    "CHUNK",
    "CHUNK_TYPE",
    "MARKER",
    "MessageCodec",
    "MissingMessageError",
    "Resolution",
    "Row",
    "clear_caches",
    "is_reference",
]

MARKER = "__assistant_graph_messages__"
"""The key that marks a reference to a list of stored messages."""
CHUNK = 32
"""Messages per chunk row."""
CHUNK_TYPE = "assistant_graph/chunk"
"""The ``type`` of a chunk row (a message row has its serializer's type)."""
DIGEST_SIZE = 16
DECODED_CACHE_BYTES = 16 * 1024 * 1024
LISTS = 128
"""Lists kept in each of the list caches (encoded by identity; decoded by reference)."""
"""Serialized bytes of the decoded messages kept for the next load (most recent first)."""

Row = tuple[str, bytes]
"""A stored row: the serializer's type and the bytes."""

MISSING = (
    "thread {thread!r}: {count} stored message(s) referred to by a checkpoint are missing "
    "from assistant_graph_messages (first digest {first}); the thread's message rows were "
    "deleted by something other than assistant_graph"
)


class MissingMessageError(CheckpointerError):
    """A checkpoint refers to a message row that is not in the store (caught as
    :class:`~assistant_graph.CheckpointerError`)."""


def _digest(kind: str, data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE, person=kind.encode()[:16]).digest()


def _is_message_list(value: Any) -> bool:
    """A non-empty list of messages that all have ids.

    A message without an id is left where it is: it is a node's output on its way to
    ``add_messages``, which gives it an id by changing it in place, so its bytes are about
    to change (the write that carries it is small; the checkpoint after it refers to the
    message with its id).
    """
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, BaseMessage) and m.id is not None for m in value)
    )


def is_reference(value: Any) -> bool:
    """Whether ``value`` is a reference written by :meth:`MessageCodec.encode`."""
    return isinstance(value, dict) and MARKER in value


@dataclass(frozen=True)
class _EncodedList:
    """A list of messages encoded once, kept with it (so its id is not reused)."""

    messages: list[BaseMessage]
    length: int
    reference: dict[str, Any]
    digests: frozenset[bytes]
    """Every digest the reference needs stored (messages and chunks)."""


def _list_key(reference: Mapping[str, Any]) -> bytes:
    """What identifies a reference's list: its chunk digests, then its tail's."""
    chunks = b"".join(bytes(c) for c in reference["chunks"])
    return chunks + b"|" + b"".join(bytes(d) for d in reference["tail"])


@dataclass
class _Known:
    """What the process knows about message objects and digests (content-keyed)."""

    digests: dict[int, tuple[weakref.ref[BaseMessage], str | None, bytes, Row]] = field(
        default_factory=dict
    )
    """``id(message)`` -> (the object, its id then, its digest, its row), while it lives."""
    decoded: OrderedDict[bytes, tuple[BaseMessage, int]] = field(default_factory=OrderedDict)
    """digest -> (message, its size), oldest first (a message dropped is read again)."""
    decoded_bytes: int = 0
    chunks: OrderedDict[bytes, tuple[bytes, ...]] = field(default_factory=OrderedDict)
    """chunk digest -> its message digests, most recently used last."""
    encoded: OrderedDict[int, _EncodedList] = field(default_factory=OrderedDict)
    """``id(list)`` -> its reference, for lists encoded again unchanged (a channel a step
    did not change is in every ``SqliteSaver`` checkpoint; a sub-conversation in many)."""
    lists: OrderedDict[bytes, list[BaseMessage]] = field(default_factory=OrderedDict)
    """A reference's key -> its messages, for loads of a list encoded or read before."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep_list(self, key: bytes, messages: list[BaseMessage]) -> None:
        with self.lock:
            self.lists[key] = messages
            self.lists.move_to_end(key)
            if len(self.lists) > LISTS:
                self.lists.popitem(last=False)

    def keep_encoded(self, messages: list[BaseMessage], entry: _EncodedList) -> None:
        with self.lock:
            self.encoded[id(messages)] = entry
            if len(self.encoded) > LISTS:
                self.encoded.popitem(last=False)

    def remember(self, message: BaseMessage, digest: bytes, row: Row) -> None:
        key = id(message)

        def forget(_: object, key: int = key) -> None:
            self.digests.pop(key, None)

        self.digests[key] = (weakref.ref(message, forget), message.id, digest, row)

    def lookup(self, message: BaseMessage) -> tuple[bytes, Row] | None:
        """The digest and row of ``message`` if this object was encoded or decoded before
        (and its id, the one field LangGraph changes in place, is the same)."""
        entry = self.digests.get(id(message))
        if entry is None or entry[0]() is not message or entry[1] != message.id:
            return None
        return entry[2], entry[3]

    def keep_decoded(self, digest: bytes, message: BaseMessage, size: int) -> None:
        with self.lock:
            if digest in self.decoded:
                return
            self.decoded[digest] = (message, size)
            self.decoded_bytes += size
            while self.decoded_bytes > DECODED_CACHE_BYTES and self.decoded:
                _, (_, dropped) = self.decoded.popitem(last=False)
                self.decoded_bytes -= dropped

    def keep_chunk(self, digest: bytes, members: tuple[bytes, ...]) -> None:
        with self.lock:
            self.chunks[digest] = members
            self.chunks.move_to_end(digest)
            if len(self.chunks) > 100_000:
                self.chunks.popitem(last=False)


_KNOWN = _Known()


def clear_caches() -> None:
    """Forget every cached digest, chunk and decoded message (as a new process starts)."""
    global _KNOWN
    _KNOWN = _Known()


class MessageCodec:
    """Encodes message lists in values as references, and decodes them back."""

    def __init__(self, serde: SerializerProtocol) -> None:
        self.serde = serde
        """The saver's serializer: it writes each message row, as it would the message."""

    # --- encoding -------------------------------------------------------------------------

    def encode(
        self, value: Any, rows: dict[bytes, Row], stored: Collection[bytes] = frozenset()
    ) -> Any:
        """``value`` with its message lists as references; the rows they need that are not
        in ``stored`` are added to ``rows``.

        Walks dicts and lists (not other objects); a list whose items are all messages
        with ids becomes a reference.
        """
        if _is_message_list(value):
            return self._reference(value, rows, stored)
        if isinstance(value, dict):
            if not value:
                return value
            return {key: self.encode(item, rows, stored) for key, item in value.items()}
        if isinstance(value, list) and value:
            return [self.encode(item, rows, stored) for item in value]
        return value

    def _reference(
        self, messages: list[BaseMessage], rows: dict[bytes, Row], stored: Collection[bytes]
    ) -> dict[str, Any]:
        cached = _KNOWN.encoded.get(id(messages))
        if (
            cached is not None
            and cached.messages is messages
            and cached.length == len(messages)
            and isinstance(stored, set | frozenset)
            and cached.digests <= stored
        ):
            return cached.reference
        own: dict[bytes, Row] = {}
        digests = [self._message_digest(message, own) for message in messages]
        full = len(digests) - len(digests) % CHUNK
        chunks = []
        for start in range(0, full, CHUNK):
            members = b"".join(digests[start : start + CHUNK])
            chunk = _digest("chunk", members)
            own[chunk] = (CHUNK_TYPE, members)
            chunks.append(chunk)
        reference = {MARKER: 1, "chunks": chunks, "tail": digests[full:]}
        rows.update((d, row) for d, row in own.items() if d not in stored)
        entry = _EncodedList(messages, len(messages), reference, frozenset(own))
        _KNOWN.keep_encoded(messages, entry)
        _KNOWN.keep_list(_list_key(reference), messages)
        return reference

    def _message_digest(self, message: BaseMessage, rows: dict[bytes, Row]) -> bytes:
        known = _KNOWN.lookup(message)
        if known is None:
            row = self.serde.dumps_typed(message)
            digest = _digest(row[0], row[1])
            _KNOWN.remember(message, digest, row)
        else:
            digest, row = known
        rows[digest] = row
        return digest

    # --- decoding -------------------------------------------------------------------------

    def resolution(self, value: Any, thread: str, *, cached_lists: bool = True) -> Resolution:
        """Reading ``value``'s references back: ask :meth:`Resolution.wanted` for the rows
        to read, give them to :meth:`Resolution.supply` (at most two rounds: chunks, then
        messages), then take :meth:`Resolution.value`. ``cached_lists=False`` reads every
        reference's rows (for :meth:`Resolution.digests`, which must name them all)."""
        return Resolution(self.serde, value, thread, cached_lists=cached_lists)


class Resolution:
    """The references of one value being read back (see :meth:`MessageCodec.resolution`)."""

    def __init__(
        self, serde: SerializerProtocol, value: Any, thread: str, *, cached_lists: bool = True
    ) -> None:
        self.serde = serde
        self.source = value
        self.thread = thread
        self.references = list(_references_in(value))
        self.known_lists: dict[int, list[BaseMessage]] = {}
        """Lists read or written before, by ``id(reference)`` (their rows need no reading)."""
        for ref in self.references if cached_lists else ():
            known = _KNOWN.lists.get(_list_key(ref))
            if known is not None:
                self.known_lists[id(ref)] = known
        self.members: dict[bytes, tuple[bytes, ...]] = {}
        self.messages: dict[bytes, BaseMessage] = {}
        self._lists: list[list[bytes]] | None = None
        """Per reference, its message digests (once the chunks are read)."""
        self._stage = "chunks" if self.references else "done"
        self._pending: set[bytes] = set()

    def wanted(self) -> set[bytes]:
        """The digests whose rows are needed next (empty: everything is resolved)."""
        if self._stage == "chunks":
            self._pending = self._missing_chunks()
            if self._pending:
                return self._pending
            self._stage = "messages"
        if self._stage == "messages":
            self._pending = self._missing_messages()
            if self._pending:
                return self._pending
            self._stage = "done"
        return set()

    def supply(self, rows: Mapping[bytes, Row]) -> None:
        """The rows of :meth:`wanted`'s digests.

        Raises:
            MissingMessageError: If one of them is not among ``rows``.
        """
        lost = self._pending - rows.keys()
        if lost:
            first = min(lost).hex()
            raise MissingMessageError(
                MISSING.format(thread=self.thread, count=len(lost), first=first)
            )
        for digest in self._pending:
            kind, data = rows[digest]
            if self._stage == "chunks":
                split = tuple(data[i : i + DIGEST_SIZE] for i in range(0, len(data), DIGEST_SIZE))
                self.members[digest] = split
                _KNOWN.keep_chunk(digest, split)
            else:
                message = self.serde.loads_typed((kind, data))
                self.messages[digest] = message
                _KNOWN.remember(message, digest, (kind, data))
                _KNOWN.keep_decoded(digest, message, len(data))
        self._pending = set()

    @property
    def reading_chunks(self) -> bool:
        """Whether :meth:`wanted` asks for chunk rows (the first round)."""
        return self._stage == "chunks"

    def _to_read(self) -> list[dict[str, Any]]:
        """The references whose lists are not known: their rows are read."""
        return [ref for ref in self.references if id(ref) not in self.known_lists]

    def _digest_lists(self) -> list[list[bytes]]:
        if self._lists is None:
            self._lists = [_message_digests(ref, self.members) for ref in self._to_read()]
        return self._lists

    def digests(self) -> set[bytes]:
        """Every digest the references name (chunks and messages); needs the chunks read."""
        found = set(self.members)
        for digests in self._digest_lists():
            found.update(digests)
        return found

    def value(self) -> Any:
        """The value with every reference replaced by its messages."""
        if not self.references:
            return self.source
        messages = self.messages
        built = dict(self.known_lists)
        for ref, digests in zip(self._to_read(), self._digest_lists(), strict=True):
            built[id(ref)] = [messages[d] for d in digests]
            _KNOWN.keep_list(_list_key(ref), built[id(ref)])
        # A copy each: the cached list stays as it was, whatever the caller does with its own.
        return _replaced(self.source, lambda ref: list(built[id(ref)]))

    def _missing_chunks(self) -> set[bytes]:
        wanted = {bytes(c) for ref in self._to_read() for c in ref["chunks"]}
        for chunk in wanted:
            cached = _KNOWN.chunks.get(chunk)
            if cached is not None:
                self.members[chunk] = cached
        return wanted - self.members.keys()

    def _missing_messages(self) -> set[bytes]:
        wanted = {d for digests in self._digest_lists() for d in digests}
        decoded = _KNOWN.decoded
        for digest in wanted:
            cached = decoded.get(digest)
            if cached is not None:
                self.messages[digest] = cached[0]
        return wanted - self.messages.keys()


def _message_digests(
    ref: Mapping[str, Any], members: Mapping[bytes, tuple[bytes, ...]]
) -> list[bytes]:
    digests = [d for chunk in ref["chunks"] for d in members[bytes(chunk)]]
    return digests + [bytes(d) for d in ref["tail"]]


def _references_in(value: Any) -> Iterable[dict[str, Any]]:
    if is_reference(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references_in(item)


def _replaced(value: Any, resolve: Callable[[dict[str, Any]], list[BaseMessage]]) -> Any:
    if is_reference(value):
        return resolve(value)
    if isinstance(value, dict):
        return {key: _replaced(item, resolve) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, resolve) for item in value]
    return value
