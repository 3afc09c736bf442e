"""How `queue-manager watch` draws a queue: progress bars redrawn in place on a terminal, one
line per update on a pipe or a file."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from queue_manager.cli.render import format_time, printable, status_text
from queue_manager.cli.watch_view import QueueView, StepView
from queue_manager.domain.models import QueueStatus, StepStatus

_BAR_COLOURS = {StepStatus.ERROR: "red", StepStatus.STOPPED: "yellow", StepStatus.SKIPPED: "grey50"}


def children_progress(children: int, progress: Mapping[str, int]) -> RenderableType:
    """A backfill's parent: one bar of its children that ended, and the count in each status."""
    ended = sum(n for status, n in progress.items() if _ended(status))
    bar = ProgressBar(total=float(children or 1), completed=float(ended), width=40)
    counts = ", ".join(f"{n} {status}" for status, n in progress.items() if n) or "none yet"
    line = Text.assemble(f"{ended}/{children} children ended  ", (counts, "dim"))
    grid = Table.grid(padding=(0, 2))
    grid.add_row(bar, line)
    return grid


def _ended(status: str) -> bool:
    try:
        return QueueStatus(status).terminal
    except ValueError:
        return False


def progress_table(view: QueueView) -> RenderableType:
    if view.children is not None:
        head = Text.assemble(
            (f"Backfill {printable(view.id)}", "bold"),
            "  ",
            printable(view.symbol),
            "  ",
            status_text(view.status),
            f"  {view.records_written} records",
        )
        return Group(head, children_progress(view.children, view.progress))
    title = Text.assemble(
        (f"Queue {printable(view.id)}", "bold"),
        "  ",
        printable(view.symbol),
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
    retried = any(step.attempts > 1 or step.status is StepStatus.RETRYING for step in steps)
    if retried:
        table.add_column("attempt", justify="right", no_wrap=True)
    errors = any(step.error_message for step in steps)
    if errors:
        table.add_column("error", style="red")
    for step in steps:
        fraction = step.fraction(view.start, view.end)
        running = step.status.running
        colour = _BAR_COLOURS.get(step.status)
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
            printable(step.target),
            printable(step.type),
            _status(step),
            bar,
            f"{fraction:.0%}" if fraction is not None else "",
            str(step.records_written),
            format_time(step.last_loaded.isoformat()) if step.last_loaded else "",
        ]
        if retried:
            cells.append(str(max(step.attempts, 1)))
        if errors:
            cells.append(printable(step.error_message))
        table.add_row(*cells)
    return Group(title, table)


def _status(step: StepView) -> Text:
    text = status_text(step.status)
    if step.status is StepStatus.RETRYING and step.retry_at is not None:
        text.append(f" until {format_time(step.retry_at.isoformat())}")
    return text


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
        self._live.console.print(Text(printable(text), style="yellow"))


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
                    Text(
                        f"Queue {printable(view.id)} {printable(view.symbol)}: {view.status}, "
                        f"{len(view.steps)} step(s)"
                    )
                )
            return
        text = update.get("text")
        if text:
            self._console.print(Text(printable(text)))

    def notice(self, text: str) -> None:
        self._errors.print(Text(printable(text)))
