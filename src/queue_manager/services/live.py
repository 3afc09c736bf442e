"""Live updates cross the bus so that every replica's WebSocket clients see every change.

The engine hands updates to `UpdateRelay.publish`, which never waits: the update is encoded
there, once — as the JSON text every WebSocket client will be sent — and queues up locally; a
background loop sends what piled up (ordered per queue). Another loop feeds what the bus
delivers, from any replica, to this replica's subscribers: the same bytes, with the key the hub
conflates and filters by carried beside them, so nothing is decoded or encoded again on the way.

A bus message is a JSON array: first the keys of its updates (`[event, queue_id, step]` each),
then the updates, one per line:

    [[["step.updated","q",0],["queue.updated","q",null]],
    {"event":"step.updated",...},
    {"event":"queue.updated",...}]

so a reader splits it at its line ends and parses only the first line (orjson never writes a
raw line end: one inside a string is `\\n`). Any JSON reader sees an array whose objects are the
updates; a plain array of updates (without the keys) is read too, decoded.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Protocol

import orjson
import structlog

from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.ports import Bus

log = structlog.get_logger(__name__)


MAX_PER_MESSAGE = 500

#: what an update is about — `(event, queue_id, step)`: the hub keeps the latest update per key
UpdateKey = tuple[Any, Any, Any]

_LINE = b",\n"
_ARROW = "→".encode()
_ARROW_ESCAPED = b"\\u2192"
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _json_escape(match: re.Match[str]) -> str:
    """A non-ASCII character as a JSON escape (`\\u00e9`; outside the BMP a surrogate pair)."""
    code = ord(match.group())
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def encode_update(update: dict[str, Any]) -> bytes:
    """The update as the JSON text a WebSocket client is sent, ASCII only: non-ASCII characters
    escaped (`→` as `\\u2192`), the same JSON value. ASCII text is copied, not transcoded, into
    each client's frame. orjson writes non-ASCII as UTF-8, and only inside strings, where a
    `\\uXXXX` escape is the same character: the arrow of the update's `text` is replaced as
    bytes, any other character (an error message's, say) one by one."""
    data = orjson.dumps(update)
    if data.isascii():
        return data
    # `text` comes last and holds one arrow: found from the end at once
    head, arrow, tail = data.rpartition(_ARROW)
    if arrow:
        data = head + _ARROW_ESCAPED + tail
        if data.isascii():
            return data
    return _NON_ASCII.sub(_json_escape, data.decode()).encode("ascii")


def update_key(update: dict[str, Any]) -> UpdateKey:
    return (update.get("event"), update.get("queue_id"), update.get("step"))


def pack(entries: list[tuple[UpdateKey, bytes]]) -> bytes:
    """One bus message: the keys, then each encoded update on a line of its own."""
    keys = orjson.dumps([key for key, _ in entries])
    return b"[" + keys + _LINE + _LINE.join(payload for _, payload in entries) + b"]"


def unpack(value: bytes) -> list[tuple[UpdateKey, bytes]]:
    """The updates of a bus message, each with its key; its updates' bytes are not decoded."""
    if value.startswith(b"[[") and value.endswith(b"]"):
        lines = value[1:-1].split(_LINE)
        try:
            keys = orjson.loads(lines[0])
            entries = [((k[0], k[1], k[2]), p) for k, p in zip(keys, lines[1:], strict=True)]
            hash(tuple(k for k, _ in entries))  # every key can key the hub's log
        except (orjson.JSONDecodeError, TypeError, LookupError, ValueError):
            pass  # not this framing after all
        else:
            return entries
    # Not this framing (e.g. a replica of an earlier release: a plain array of updates).
    try:
        updates = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(updates, list):
        return []
    return [(update_key(u), encode_update(u)) for u in updates if isinstance(u, dict)]


class Subscribers(Protocol):
    """This replica's WebSocket clients (api/hub.py)."""

    def publish_encoded(self, key: UpdateKey, payload: bytes) -> None:
        """Hand an encoded update to every subscriber without ever waiting for one."""
        ...


class UpdateRelay:
    def __init__(self, bus: Bus, local: Subscribers, *, buffer: int = 10_000) -> None:
        self._bus = bus
        self._local = local
        self._outbox: asyncio.Queue[tuple[UpdateKey, bytes]] = asyncio.Queue(maxsize=buffer)
        self._dropped = 0

    def publish(self, update: dict[str, Any]) -> None:
        try:
            self._outbox.put_nowait((update_key(update), encode_update(update)))
        except asyncio.QueueFull:
            # Live updates are a view, the store is the truth: shed load rather than block.
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("live updates dropped: bus too slow", dropped=self._dropped)

    async def send_loop(self) -> None:
        while True:
            # Whatever piled up while the last send ran goes out as one message.
            pending = [await self._outbox.get()]
            while len(pending) < MAX_PER_MESSAGE and not self._outbox.empty():
                pending.append(self._outbox.get_nowait())
            try:
                await self._bus.send_updates(pack(pending))
            except DependencyUnavailable as exc:
                log.warning("live updates not sent", count=len(pending), reason=exc.detail)

    async def receive_loop(self) -> None:
        async for value in self._bus.updates():
            for key, payload in unpack(value):
                self._local.publish_encoded(key, payload)
