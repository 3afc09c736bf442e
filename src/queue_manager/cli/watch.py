"""`queue-manager watch`: live progress from `WS /ws/topic` (docs/api.md).

For one queue the socket is opened first and the state fetched over REST second, so no update
falls between the two; updates older than that state are ignored (see `watch_view`). A dropped
socket is reopened — by the one reconnect loop both forms share — and the state fetched again,
so what happened meanwhile is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
import websockets.exceptions
from rich.live import Live
from rich.text import Text

from queue_manager.cli.client import ApiClient, CliError, Unreachable, connection_problem, ws_url
from queue_manager.cli.watch_board import Board
from queue_manager.cli.watch_render import Display
from queue_manager.cli.watch_view import QueueView

# The service sends a heartbeat at least every 20 s: a socket silent for longer is dead.
IDLE_SECONDS = 45.0
INITIAL_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 5.0

_SOCKET_ERRORS = (OSError, TimeoutError, websockets.exceptions.WebSocketException)


def decode(raw: str | bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def socket_problem(api_url: str, url: str, exc: BaseException) -> CliError:
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return CliError(f"the service refused the WebSocket {url}: HTTP {exc.response.status_code}")
    if isinstance(exc, OSError):
        return connection_problem(api_url, exc)
    if isinstance(exc, TimeoutError):
        return Unreachable(f"queue-manager at {api_url} did not open the WebSocket {url}")
    return CliError(f"WebSocket {url} failed: {exc}")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _connect(url: str, headers: dict[str, str]) -> Any:
    return websockets.connect(
        url,
        additional_headers=headers,
        open_timeout=10,
        max_size=2**20,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
    )


async def follow(
    api_url: str,
    url: str,
    *,
    on_open: Callable[[], Awaitable[bool]],
    on_update: Callable[[dict[str, Any]], bool | Awaitable[bool]],
    notice: Callable[[str], None],
    reconnected: str = "reconnected",
    headers: dict[str, str] | None = None,
) -> None:
    """Feed every update of the socket at `url` to `on_update`, reconnecting when it drops.

    `on_open` runs on each (re)connection, before any update is read; either callback returns
    True when there is nothing more to follow. A failure before the first connection is the
    caller's error (CliError); after it, the loop tells `notice` and reopens with backoff.
    """
    connected = False
    lost = False
    backoff = INITIAL_BACKOFF_SECONDS
    while True:
        try:
            async with _connect(url, headers or {}) as socket:
                done = await on_open()
                if lost:
                    notice(reconnected)
                connected, lost, backoff = True, False, INITIAL_BACKOFF_SECONDS
                while not done:
                    update = decode(await asyncio.wait_for(socket.recv(), IDLE_SECONDS))
                    if update is None or update.get("event") == "heartbeat":
                        continue
                    result = on_update(update)
                    done = await result if inspect.isawaitable(result) else result
                return
        except Unreachable as exc:
            if not connected:
                raise
            problem = exc.message
        except _SOCKET_ERRORS as exc:
            if not connected:
                raise socket_problem(api_url, url, exc) from None
            problem = _describe(exc)
        if not lost:
            notice(f"connection lost ({problem}); reconnecting…")
            lost = True
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


async def watch_queue(api: ApiClient, queue_id: str, display: Display) -> QueueView:
    """Follow one queue until it reaches a terminal status; returns its final view."""
    view: QueueView | None = None

    async def fetch_state() -> bool:
        nonlocal view
        view = QueueView.from_state(await api.get(queue_id))
        display.show(view, None)
        return view.terminal

    def fold(update: dict[str, Any]) -> bool:
        assert view is not None  # fetched on opening
        if view.apply(update):
            display.show(view, update)
        return view.terminal

    await follow(
        api.api_url,
        ws_url(api.api_url, queue_id),
        on_open=fetch_state,
        on_update=fold,
        notice=display.notice,
        headers=api.auth_headers,
    )
    assert view is not None
    return view


async def watch_all(
    api_url: str,
    emit: Callable[[str], None],
    notice: Callable[[str], None],
    headers: dict[str, str] | None = None,
) -> None:
    """Print the `text` of every update of every queue, until cancelled (Ctrl-C)."""

    async def nothing_to_fetch() -> bool:
        return False

    def print_update(update: dict[str, Any]) -> bool:
        emit(str(update.get("text") or json.dumps(update)))
        return False

    await follow(
        api_url,
        ws_url(api_url, None),
        on_open=nothing_to_fetch,
        on_update=print_update,
        notice=notice,
        reconnected="reconnected (updates sent while disconnected were missed)",
        headers=headers,
    )


#: how many top-level queues `watch` without an id reads when it (re)connects
BOARD_QUEUES = 100


async def watch_board(api: ApiClient, live: Live) -> None:
    """Every top-level queue, one row each, redrawn in place until cancelled (Ctrl-C). The
    list is read again on each (re)connection, so nothing missed meanwhile stays wrong."""
    board = Board()

    def redraw() -> None:
        live.update(board.render(live.console.size.height, api.api_url), refresh=True)

    async def fetch_list() -> bool:
        queues, _ = await api.list(top_level=True, limit=BOARD_QUEUES)
        board.load(queues)
        redraw()
        return False

    async def fold(update: dict[str, Any]) -> bool:
        if board.wants(update):
            with contextlib.suppress(CliError):  # gone meanwhile: nothing to show
                board.add(await api.get(str(update["queue_id"])))
        if board.apply(update) or update.get("queue_id") in board.rows:
            redraw()
        return False

    await follow(
        api.api_url,
        ws_url(api.api_url, None),
        on_open=fetch_list,
        on_update=fold,
        notice=lambda text: live.console.print(Text(text, style="yellow")),
        headers=api.auth_headers,
    )
