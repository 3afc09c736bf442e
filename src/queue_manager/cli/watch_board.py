"""`queue-manager watch` without an id: one row per top-level queue, kept current from the
WebSocket updates of every queue and redrawn in place (rich Live).

A backfill's children are folded into their parent's row (its children's progress, which the
parent's own updates carry), so a backfill of a thousand chunks is one row, not a thousand.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from queue_manager.cli.render import (
    format_time,
    parse_time,
    pipeline_text,
    printable,
    range_text,
    status_text,
)
from queue_manager.cli.watch_view import as_int as _int
from queue_manager.domain.models import QueueStatus, StepStatus

#: the dashboard's and the CLI's short id
SHORT_ID = 8


@dataclass
class BoardRow:
    id: str
    symbol: str
    pipeline: str
    time_range: str
    status: str
    records_written: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    error_message: str | None = None
    #: step index -> status; a backfill's parent has none
    steps: dict[int, str] = field(default_factory=dict)
    #: a backfill's parent: its children, and how many of them stand in each status
    children: int | None = None
    progress: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_state(cls, queue: dict[str, Any]) -> BoardRow:
        backfill = queue.get("backfill")
        steps = [s for s in queue.get("steps") or [] if isinstance(s, dict)]
        return cls(
            id=str(queue.get("id", "")),
            symbol=str(queue.get("symbol", "")),
            pipeline=pipeline_text(queue),
            time_range=range_text(queue),
            status=str(queue.get("status", "")),
            records_written=_int(queue.get("records_written")),
            created_at=parse_time(queue.get("created_at")),
            updated_at=parse_time(queue.get("updated_at")),
            error_message=queue.get("error_message"),
            steps={_int(s.get("index")): str(s.get("status", "")) for s in steps},
            children=_int(backfill.get("children")) if isinstance(backfill, dict) else None,
            progress=dict(backfill.get("progress") or {}) if isinstance(backfill, dict) else {},
        )

    def apply(self, update: dict[str, Any]) -> None:
        moment = parse_time(update.get("updated_at"))
        if moment is not None and self.updated_at is not None:
            with contextlib.suppress(TypeError):
                if moment < self.updated_at:
                    return  # older than what the row shows
        if update.get("event") == "step.updated" and isinstance(update.get("step"), int):
            if not _terminal_step(self.steps.get(update["step"])):
                self.steps[update["step"]] = str(update.get("status", ""))
            return
        if update.get("event") != "queue.updated" or _terminal_queue(self.status):
            return
        if moment is not None:
            self.updated_at = moment
        self.status = str(update.get("status") or self.status)
        self.records_written = max(self.records_written, _int(update.get("records_written")))
        if update.get("error_message"):
            self.error_message = str(update["error_message"])
        if isinstance(update.get("progress"), dict):
            self.progress = dict(update["progress"])

    @property
    def done(self) -> str:
        if self.children is not None:
            return f"{self.progress.get('finished', 0)}/{self.children} children"
        finished = sum(1 for s in self.steps.values() if s == StepStatus.FINISHED.value)
        return f"{finished}/{len(self.steps)} steps"


def _terminal_queue(status: str) -> bool:
    try:
        return QueueStatus(status).terminal
    except ValueError:
        return False


def _terminal_step(status: str | None) -> bool:
    try:
        return status is not None and StepStatus(status).terminal
    except ValueError:
        return False


@dataclass
class Board:
    rows: dict[str, BoardRow] = field(default_factory=dict)
    #: ids known to be a backfill's children: folded into their parent, never fetched again
    children: set[str] = field(default_factory=set)

    def load(self, queues: list[dict[str, Any]]) -> None:
        self.rows = {row.id: row for row in map(BoardRow.from_state, queues)}

    def wants(self, update: dict[str, Any]) -> bool:
        """An update about a queue not shown yet, which is no backfill's child: fetch it."""
        queue_id = update.get("queue_id")
        if not isinstance(queue_id, str) or queue_id in self.rows or queue_id in self.children:
            return False
        if update.get("parent"):
            self.children.add(queue_id)
            return False
        return True

    def add(self, queue: dict[str, Any]) -> None:
        if queue.get("parent"):
            self.children.add(str(queue.get("id")))
            return
        row = BoardRow.from_state(queue)
        self.rows[row.id] = row

    def apply(self, update: dict[str, Any]) -> bool:
        row = self.rows.get(str(update.get("queue_id")))
        if row is None:
            return False
        row.apply(update)
        return True

    def render(self, height: int | None = None, url: str = "") -> RenderableType:
        """Newest first; as many rows as the terminal holds (the rest counted below)."""
        ordered = sorted(
            self.rows.values(),
            key=lambda r: (r.created_at.timestamp() if r.created_at else 0.0, r.id),
            reverse=True,
        )
        room = max(1, (height or 40) - 5)
        shown, hidden = ordered[:room], len(ordered) - room
        running = sum(1 for r in ordered if not _terminal_queue(r.status))
        title = Text.assemble(
            ("Queues", "bold"),
            f"  {len(ordered)} shown, {running} not ended",
            (f"  {printable(url)}" if url else "", "dim"),
            ("  (Ctrl-C to stop)", "dim"),
        )
        table = Table(header_style="bold", show_edge=False, pad_edge=False)
        table.add_column("id", no_wrap=True)
        table.add_column("symbol", no_wrap=True)
        table.add_column("pipeline", overflow="ellipsis", no_wrap=True, max_width=40)
        table.add_column("time range", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("done", justify="right", no_wrap=True)
        table.add_column("records", justify="right", no_wrap=True)
        table.add_column("updated", no_wrap=True)
        table.add_column("error", style="red", overflow="ellipsis", no_wrap=True, max_width=40)
        for row in shown:
            table.add_row(
                printable(row.id[:SHORT_ID]),
                printable(row.symbol),
                printable(row.pipeline),
                printable(row.time_range),
                status_text(row.status),
                row.done,
                str(row.records_written),
                format_time(row.updated_at.isoformat()) if row.updated_at else "",
                printable(row.error_message or ""),
            )
        parts: list[RenderableType] = [title, table]
        if hidden > 0:
            parts.append(Text(f"… and {hidden} older", style="dim"))
        if not ordered:
            parts.append(Text("No queues yet: rows appear as queues start.", style="dim"))
        return Group(*parts)
