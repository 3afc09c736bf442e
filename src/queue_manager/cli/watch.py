"""`queue-manager watch`: live progress from `WS /ws/topic` (docs/api.md).

For one queue the socket is opened first and the state fetched over REST second, so no update
falls between the two; updates older than that state are ignored (terminal statuses are sticky,
step statuses only move forward, counters only grow). A dropped socket is reopened and the
state fetched again, so what happened meanwhile is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

import websockets
import websockets.exceptions
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from queue_manager.cli.client import ApiClient, CliError, Unreachable, connection_problem, ws_url
from queue_manager.cli.render import format_time, parse_time, status_text
from queue_manager.domain.models import QueueStatus, StepStatus

# The service sends a heartbeat at least every 20 s: a socket silent for longer is dead.
IDLE_SECONDS = 45.0
MAX_BACKOFF_SECONDS = 5.0

TERMINAL_QUEUE = frozenset(s.value for s in QueueStatus if s.terminal)
_STEP_RANK = {s.value: s.rank for s in StepStatus}
_RUNNING_STEP = frozenset(s.value for s in StepStatus if s.running)
_TERMINAL_STEP = frozenset(s.value for s in StepStatus if s.terminal)

_SOCKET_ERRORS = (OSError, TimeoutError, websockets.exceptions.WebSocketException)


@dataclass
class StepView:
    index: int
    target: str
    type: str
    status: str
    records_written: int = 0
    last_loaded: datetime | None = None
    error_message: str | None = None

    @classmethod
    def from_state(cls, step: dict[str, Any]) -> StepView:
        return cls(
            index=int(step.get("index", 0)),
            target=str(step.get("target", "")),
            type=str(step.get("type", "")),
            status=str(step.get("status", "pending")),
            records_written=_int(step.get("records_written")),
            last_loaded=parse_time(step.get("last_loaded_timestamp")),
            error_message=step.get("error_message"),
        )

    def apply(self, update: dict[str, Any]) -> None:
        if self.status in _TERMINAL_STEP:
            return  # sticky
        status = str(update.get("status") or self.status)
        if _STEP_RANK.get(status, 0) >= _STEP_RANK.get(self.status, 0):
            self.status = status
        self.records_written = max(self.records_written, _int(update.get("records_written")))
        loaded = parse_time(update.get("last_loaded_timestamp"))
        if loaded is not None and (self.last_loaded is None or loaded > self.last_loaded):
            self.last_loaded = loaded
        if update.get("error_message"):
            self.error_message = str(update["error_message"])

    def fraction(self, start: datetime | None, end: datetime | None) -> float | None:
        """How far through the time range the step got; None when it cannot tell."""
        if self.status == "finished":
            return 1.0
        if self.last_loaded is None or start is None or end is None or end <= start:
            return 0.0 if self.status == "pending" else None
        try:
            done = (self.last_loaded - start) / (end - start)
        except TypeError:  # naive against aware
            return None
        return min(1.0, max(0.0, done))


@dataclass
class QueueView:
    id: str
    symbol: str
    status: str
    records_written: int = 0
    start: datetime | None = None
    end: datetime | None = None
    updated_at: datetime | None = None
    error_message: str | None = None
    steps: dict[int, StepView] = field(default_factory=dict)

    @classmethod
    def from_state(cls, queue: dict[str, Any]) -> QueueView:
        steps = [StepView.from_state(s) for s in queue.get("steps") or [] if isinstance(s, dict)]
        return cls(
            id=str(queue.get("id", "")),
            symbol=str(queue.get("symbol", "")),
            status=str(queue.get("status", "pending")),
            records_written=_int(queue.get("records_written")),
            start=parse_time(queue.get("start_time")),
            end=parse_time(queue.get("end_time")),
            updated_at=parse_time(queue.get("updated_at")),
            error_message=queue.get("error_message"),
            steps={s.index: s for s in steps},
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_QUEUE

    def apply(self, update: dict[str, Any]) -> bool:
        """Fold one WebSocket message in; False when it was not about this queue's state."""
        if update.get("queue_id") != self.id or self.terminal:
            return False
        event = update.get("event")
        if event == "step.updated":
            index = update.get("step")
            if not isinstance(index, int):
                return False
            step = self.steps.get(index)
            if step is None:
                step = self.steps[index] = StepView(
                    index=index,
                    target=str(update.get("target", "")),
                    type=str(update.get("type", "")),
                    status="pending",
                )
            step.apply(update)
            return True
        if event == "queue.updated":
            moment = parse_time(update.get("updated_at"))
            if moment is not None and self.updated_at is not None:
                with contextlib.suppress(TypeError):
                    if moment < self.updated_at:
                        return False  # older than the state we fetched
            if moment is not None:
                self.updated_at = moment
            self.status = str(update.get("status") or self.status)
            self.records_written = max(self.records_written, _int(update.get("records_written")))
            if update.get("error_message"):
                self.error_message = str(update["error_message"])
            return True
        return False

    def final_line(self) -> Text:
        line = Text(f"Queue {self.id} ")
        line.append_text(status_text(self.status))
        line.append(f" ({self.records_written} records)")
        if self.error_message:
            line.append(f": {self.error_message}", style="red")
        return line


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def progress_table(view: QueueView) -> RenderableType:
    title = Text.assemble(
        (f"Queue {view.id}", "bold"),
        "  ",
        view.symbol,
        "  ",
        status_text(view.status),
        f"  {view.records_written} records",
    )
    table = Table(header_style="bold", show_edge=False, pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("progress", no_wrap=True)
    table.add_column("", justify="right", no_wrap=True)
    table.add_column("records", justify="right", no_wrap=True)
    table.add_column("loaded up to", no_wrap=True)
    steps = sorted(view.steps.values(), key=lambda s: s.index)
    errors = any(step.error_message for step in steps)
    if errors:
        table.add_column("error", style="red")
    for step in steps:
        fraction = step.fraction(view.start, view.end)
        running = step.status in _RUNNING_STEP
        colour = {"error": "red", "stopped": "yellow", "skipped": "grey50"}.get(step.status)
        bar = ProgressBar(
            total=100.0,
            completed=(fraction or 0.0) * 100.0,
            width=30,
            pulse=fraction is None and running,
            complete_style=colour or "cyan",
            finished_style=colour or "green",
        )
        cells: list[RenderableType] = [
            str(step.index),
            step.target,
            step.type,
            status_text(step.status),
            bar,
            f"{fraction:.0%}" if fraction is not None else "",
            str(step.records_written),
            format_time(step.last_loaded.isoformat()) if step.last_loaded else "",
        ]
        if errors:
            cells.append(step.error_message or "")
        table.add_row(*cells)
    return Group(title, table)


class Display(Protocol):
    def __enter__(self) -> Display: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def show(self, view: QueueView, update: dict[str, Any] | None) -> None: ...

    def notice(self, text: str) -> None: ...


class LiveDisplay:
    """A terminal: progress bars redrawn in place."""

    def __init__(self, console: Console) -> None:
        self._view: QueueView | None = None
        self._live = Live(
            console=console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=False,
        )

    def _render(self) -> RenderableType:
        if self._view is None:
            return Text("connecting…", style="dim")
        return progress_table(self._view)

    def __enter__(self) -> LiveDisplay:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.refresh()
        self._live.stop()

    def show(self, view: QueueView, update: dict[str, Any] | None) -> None:
        self._view = view
        self._live.refresh()

    def notice(self, text: str) -> None:
        self._live.console.print(Text(text, style="yellow"))


class LineDisplay:
    """A pipe or a file: one line per update, the progress table once at the end."""

    def __init__(self, console: Console, errors: Console) -> None:
        self._console = console
        self._errors = errors
        self._view: QueueView | None = None
        self._announced = False

    def __enter__(self) -> LineDisplay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._view is not None and exc_type is None:
            self._console.print(progress_table(self._view))

    def show(self, view: QueueView, update: dict[str, Any] | None) -> None:
        self._view = view
        if update is None:
            if not self._announced:
                self._announced = True
                self._console.print(
                    Text(f"Queue {view.id} {view.symbol}: {view.status}, {len(view.steps)} step(s)")
                )
            return
        text = update.get("text")
        if text:
            self._console.print(Text(str(text)))

    def notice(self, text: str) -> None:
        self._errors.print(Text(text))


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


async def watch_queue(api: ApiClient, queue_id: str, display: Display) -> QueueView:
    """Follow one queue until it reaches a terminal status; returns its final view."""
    url = ws_url(api.api_url, queue_id)
    connected = False
    lost = False
    backoff = 0.5
    while True:
        try:
            async with _connect(url, api.auth_headers) as socket:
                view = QueueView.from_state(await api.get(queue_id))
                if lost:
                    display.notice("reconnected")
                connected, lost, backoff = True, False, 0.5
                display.show(view, None)
                while not view.terminal:
                    update = decode(await asyncio.wait_for(socket.recv(), IDLE_SECONDS))
                    if update is None or update.get("event") == "heartbeat":
                        continue
                    if view.apply(update):
                        display.show(view, update)
                return view
        except Unreachable as exc:
            if not connected:
                raise
            problem = exc.message
        except _SOCKET_ERRORS as exc:
            if not connected:
                raise socket_problem(api.api_url, url, exc) from None
            problem = _describe(exc)
        if not lost:
            display.notice(f"connection lost ({problem}); reconnecting…")
            lost = True
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


async def watch_all(
    api_url: str,
    emit: Callable[[str], None],
    notice: Callable[[str], None],
    headers: dict[str, str] | None = None,
) -> None:
    """Print the `text` of every update of every queue, until cancelled (Ctrl-C)."""
    url = ws_url(api_url, None)
    connected = False
    lost = False
    backoff = 0.5
    while True:
        try:
            async with _connect(url, headers or {}) as socket:
                if lost:
                    notice("reconnected (updates sent while disconnected were missed)")
                connected, lost, backoff = True, False, 0.5
                while True:
                    update = decode(await asyncio.wait_for(socket.recv(), IDLE_SECONDS))
                    if update is None or update.get("event") == "heartbeat":
                        continue
                    emit(str(update.get("text") or json.dumps(update)))
        except _SOCKET_ERRORS as exc:
            if not connected:
                raise socket_problem(api_url, url, exc) from None
            if not lost:
                notice(f"connection lost ({_describe(exc)}); reconnecting…")
                lost = True
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
