"""WebSocket fan-out with per-client conflation (docs/api.md, "Live updates").

The hub keeps ONE shared ordered log: key → (seq, encoded update), where the key is what an
update is about — `(event, queue_id, step)`. Updates arrive encoded (services/live.py: encoded
once, where they are made, as ASCII JSON text) with their key beside them; the hub never decodes
one, and a client's frame is those texts joined. Publishing a key again moves it to the end of the
log with a new seq, so the log holds only the latest value of every key, in the order they
were last published. Each client holds only a cursor (the last seq it was sent) and its own
sender task, which sends everything after its cursor. A client that reads slowly therefore skips
intermediate values of a key but always gets its latest one, and different keys keep their
order; terminal states are final, so the latest value of a queue after it ended is its terminal
status and is never lost.

`publish` never awaits and wakes nobody: it arms one flush timer (`flush` seconds). The flush
wakes, once, every idle client with something after its cursor, so 1,000 updates/s cost ~1/flush
wake-ups per client per second rather than one per update, and clients at the same cursor share
one encoded frame. A client still sending when the flush fires is not woken: it looks again when
its send completes, so a slow client paces itself.

A client that asks for acknowledgements (`?ack=1`) answers every frame with a message of its own,
and is sent nothing more while a frame is unanswered. Without it the only backpressure is the
TCP window, and the kernel buffers on both ends (megabytes each, autotuned) plus a client
library's own queue hold seconds of frames before a send blocks: the client reads stale updates
long after newer ones exist here. With it, what the client has not drawn yet waits in the log,
where it conflates, so every frame carries the latest values and its age is one round trip.

Memory: entries every client has passed are evicted at each flush. At most `buffer` keys are kept;
when a client is so far behind that an entry it has not been sent must go, that client is closed
with 1013 (it re-reads the state over REST). A client whose send has been blocked, or whose frame
has gone unanswered, for `idle` seconds is closed with 1013 as well.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from queue_manager.observability.metrics import Metrics
from queue_manager.services.live import UpdateKey, encode_update, update_key

log = structlog.get_logger(__name__)

SLOW_CLIENT_CLOSE = 1013  # "try again later"
GOING_AWAY = 1001
#: most updates in one `?batch=1` frame (and in one round of single-update frames)
MAX_PER_FRAME = 500
#: how long an update may wait to share a wake-up (and a frame) with the next ones
FLUSH_SECONDS = 0.05

_HEARTBEAT = '{"event":"heartbeat"}'
#: seq, the update encoded as JSON text, its queue_id
_Entry = tuple[int, str, Any]


@dataclass(eq=False)
class _Client:
    socket: WebSocket
    queue_id: str | None
    batch: bool
    #: answers every frame (`?ack=1`): nothing more is sent while `unacked` frames are unanswered
    acks: bool
    cursor: int
    #: publishes counted for conflation: the hub's seq (unfiltered) or its queue's count
    mark: int
    last_sent: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: loop time the current send began (with acks: the unanswered one); None while not sending
    busy_since: float | None = None
    unacked: int = 0
    #: sent since `mark` was last taken (a filtered client syncs only when caught up)
    sent_since: int = 0
    heartbeat_due: bool = False
    #: why the server ends this client: "idle", "behind", "shutdown"
    closing: str | None = None
    sender: asyncio.Task[None] | None = None


class Hub:
    def __init__(
        self,
        metrics: Metrics,
        *,
        heartbeat: float,
        buffer: int,
        idle: float = 60.0,
        flush: float = FLUSH_SECONDS,
    ) -> None:
        self._metrics = metrics
        self._heartbeat = heartbeat
        self._buffer = buffer
        self._idle = idle
        self._flush = flush
        self._clients: set[_Client] = set()
        self._log: OrderedDict[UpdateKey, _Entry] = OrderedDict()
        self._seq = 0
        #: the newest seq evicted while some client had not been sent it
        self._lost = 0
        #: publishes per queue id that a filtered client follows (for the conflation count)
        self._watched: dict[str, int] = {}
        #: frames built for the log as it stands at seq `_frames_head`, by (cursor, filter, batch)
        self._frames: dict[tuple[int, str | None, bool], tuple[list[str], int, int]] = {}
        self._frames_head = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._conflated = metrics.websocket_conflated

    @property
    def clients(self) -> int:
        return len(self._clients)

    # -- publishing ------------------------------------------------------------------------

    def publish(self, update: dict[str, Any]) -> None:
        """An update not encoded yet (the relay hands over `publish_encoded`)."""
        if self._clients:
            self.publish_encoded(update_key(update), encode_update(update))

    def publish_encoded(self, key: UpdateKey, payload: bytes) -> None:
        """`payload`: the update as ASCII JSON text (`encode_update`); `key`: what it is about,
        `(event, queue_id, step)`, the queue id being what a filtered client follows."""
        if not self._clients:
            return
        queue_id = key[1]
        self._seq += 1
        entries = self._log
        entries.pop(key, None)
        # ASCII bytes to str: a copy, once per update, shared by every client's frame
        entries[key] = (self._seq, payload.decode(), queue_id)
        if queue_id in self._watched:
            self._watched[queue_id] += 1
        if len(entries) > self._buffer:
            seq = entries.popitem(last=False)[1][0]
            self._lost = max(self._lost, seq)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self._flush, self._on_flush)

    def _on_flush(self) -> None:
        self._flush_handle = None
        head = self._seq
        for client in self._clients:
            if client.busy_since is None and client.cursor < head:
                client.wake.set()
        self._evict()

    def _evict(self) -> None:
        """Drop the entries every client has been sent."""
        floor = min((c.cursor for c in self._clients), default=self._seq)
        entries = self._log
        while entries:
            first = next(iter(entries.values()))
            if first[0] > floor:
                break
            entries.popitem(last=False)

    def _frames_for(self, client: _Client) -> tuple[list[str], int, int]:
        """The frames that bring `client` forward from its cursor, the seq they reach and how
        many updates they hold; shared by every client at the same cursor and filter."""
        if self._frames_head != self._seq:
            self._frames.clear()
            self._frames_head = self._seq
        cache_key = (client.cursor, client.queue_id, client.batch)
        cached = self._frames.get(cache_key)
        if cached is not None:
            return cached
        cursor, wanted = client.cursor, client.queue_id
        newer: list[_Entry] = []
        for entry in reversed(self._log.values()):
            if entry[0] <= cursor:
                break
            if wanted is None or entry[2] == wanted:
                newer.append(entry)
        newer.reverse()
        upto = self._seq
        if len(newer) > MAX_PER_FRAME:
            newer = newer[:MAX_PER_FRAME]
            upto = newer[-1][0]
        payloads = [e[1] for e in newer]
        if client.batch:
            frames = ["[" + ",".join(payloads) + "]"] if payloads else []
        else:
            frames = payloads
        result = (frames, upto, len(payloads))
        self._frames[cache_key] = result
        return result

    # -- serving one client ----------------------------------------------------------------

    async def serve(
        self,
        socket: WebSocket,
        queue_id: str | None,
        *,
        subprotocol: str | None = None,
        batch: bool = False,
        ack: bool = False,
    ) -> None:
        if subprotocol is None:
            await socket.accept()
        else:
            await socket.accept(subprotocol=subprotocol)
        loop = asyncio.get_running_loop()
        if queue_id is not None:
            self._watched[queue_id] = self._watched.get(queue_id, 0)
        mark = self._seq if queue_id is None else self._watched[queue_id]
        client = _Client(socket, queue_id, batch, ack, self._seq, mark, loop.time())
        self._clients.add(client)
        self._metrics.websocket_clients.set(len(self._clients))
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep())
        reader = asyncio.create_task(self._drain_incoming(client))
        client.sender = asyncio.create_task(self._send_loop(client))
        try:
            await asyncio.wait({client.sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (client.sender, reader):
                task.cancel()
            await asyncio.gather(client.sender, reader, return_exceptions=True)
            self._forget(client)
        if client.closing in ("idle", "behind"):
            reason = f"client too slow ({client.closing})"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.close(code=SLOW_CLIENT_CLOSE, reason=reason), 1.0)

    def _forget(self, client: _Client) -> None:
        if client not in self._clients:
            return
        self._clients.discard(client)
        self._metrics.websocket_clients.set(len(self._clients))
        if client.queue_id is not None and not any(
            c.queue_id == client.queue_id for c in self._clients
        ):
            self._watched.pop(client.queue_id, None)
        if not self._clients:
            self._log.clear()
            self._frames.clear()
            if self._keeper is not None:
                self._keeper.cancel()
                self._keeper = None

    def _drop(self, client: _Client, reason: str) -> None:
        if client.closing is not None:
            return
        client.closing = reason
        self._metrics.websocket_dropped.labels(reason=reason).inc()
        self._forget(client)
        # Its sender may be stuck in a send that will never complete: cancel it outright.
        if client.sender is not None:
            client.sender.cancel()
        log.warning("slow websocket client disconnected", queue_id=client.queue_id, reason=reason)

    async def _send_loop(self, client: _Client) -> None:
        try:
            while True:
                if client.closing == "shutdown":
                    with contextlib.suppress(Exception):
                        await client.socket.close(code=GOING_AWAY, reason="server shutting down")
                    return
                if client.busy_since is not None:
                    pass  # with acks: a frame is unanswered
                elif client.cursor < self._seq:
                    if self._lost > client.cursor:
                        self._drop(client, "behind")
                        return
                    frames, upto, count = self._frames_for(client)
                    self._account(client, upto, count)
                    client.cursor = upto
                    if frames:
                        await self._send(client, frames)
                    if client.acks:
                        continue  # the answer may have come during the send
                    if client.cursor < self._seq:
                        if count >= MAX_PER_FRAME:
                            continue  # a backlog: keep going as fast as the socket allows
                        self._schedule_flush()  # arrived while sending: with the next flush
                elif client.heartbeat_due:
                    client.heartbeat_due = False
                    await self._send(client, [f"[{_HEARTBEAT}]" if client.batch else _HEARTBEAT])
                    continue
                client.wake.clear()
                await client.wake.wait()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    async def _send(self, client: _Client, frames: list[str]) -> None:
        loop = asyncio.get_running_loop()
        client.busy_since = loop.time()
        if client.acks:
            client.unacked += len(frames)
        for frame in frames:
            await client.socket.send_text(frame)
        client.last_sent = loop.time()
        if not client.acks:
            client.busy_since = None

    def _account(self, client: _Client, upto: int, count: int) -> None:
        """Count the updates this client will never get: published after its cursor, replaced
        by a newer value of their key before it was sent."""
        skipped = 0
        if client.queue_id is None:
            skipped = (upto - client.cursor) - count
        else:
            client.sent_since += count
            if upto == self._seq:  # caught up: every publish of its queue so far is accounted
                published = self._watched.get(client.queue_id, client.mark)
                skipped = published - client.mark - client.sent_since
                client.mark, client.sent_since = published, 0
        if skipped > 0:
            self._conflated.inc(skipped)

    async def _keep(self) -> None:
        """While clients are connected: heartbeats, the idle rule, eviction."""
        loop = asyncio.get_running_loop()
        every = min(1.0, self._heartbeat / 2, self._idle / 4)
        while self._clients:
            await asyncio.sleep(every)
            now = loop.time()
            for client in list(self._clients):
                since = client.busy_since
                if since is not None:
                    if now - since >= self._idle:
                        self._drop(client, "idle")
                elif now - client.last_sent >= self._heartbeat and not client.heartbeat_due:
                    client.heartbeat_due = True
                    client.wake.set()
            self._evict()

    async def _drain_incoming(self, client: _Client) -> None:
        """Reading is how a disconnect is noticed; with acks, each message answers one frame
        (whatever it holds: text or binary, an answer too many is ignored)."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await client.socket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if client.acks and client.unacked:
                    client.unacked -= 1
                    if not client.unacked:
                        client.busy_since = None
                        client.wake.set()

    async def close(self) -> None:
        for client in list(self._clients):
            client.closing = "shutdown"
            client.wake.set()
