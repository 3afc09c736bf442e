"""What `queue-manager watch` shows of one queue, kept current from WebSocket updates.

Updates are folded in by the domain's own rules, read off its status types: terminal statuses
are sticky, a step only moves to a higher rank, counters only grow — and an update older than
the state fetched over REST is ignored.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.text import Text

from queue_manager.cli.render import parse_time, printable, status_text
from queue_manager.domain.models import QueueStatus, StepStatus


def _step_status(value: Any, default: StepStatus) -> StepStatus:
    try:
        return StepStatus(value)
    except ValueError:
        return default


def _queue_status(value: Any, default: QueueStatus) -> QueueStatus:
    try:
        return QueueStatus(value)
    except ValueError:
        return default


def as_int(value: Any) -> int:
    """A count from an update: anything that is not one counts as 0."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass
class StepView:
    index: int
    target: str
    type: str
    status: StepStatus
    records_written: int = 0
    last_loaded: datetime | None = None
    error_message: str | None = None
    attempts: int = 0
    retry_at: datetime | None = None

    @classmethod
    def from_state(cls, step: dict[str, Any]) -> StepView:
        return cls(
            index=int(step.get("index", 0)),
            target=str(step.get("target", "")),
            type=str(step.get("type", "")),
            status=_step_status(step.get("status"), StepStatus.PENDING),
            records_written=as_int(step.get("records_written")),
            last_loaded=parse_time(step.get("last_loaded_timestamp")),
            error_message=step.get("error_message"),
            attempts=as_int(step.get("attempts")),
            retry_at=parse_time(step.get("retry_at")),
        )

    def apply(self, update: dict[str, Any]) -> None:
        if self.status.terminal:
            return
        status = _step_status(update.get("status"), self.status)
        attempts = as_int(update.get("attempts"))
        if attempts > self.attempts:  # a relaunch: its status starts over
            self.attempts = attempts
            self.status = status
            self.error_message = None
        elif status is StepStatus.RETRYING or status.rank >= self.status.rank:
            self.status = status
        if "retry_at" in update:
            self.retry_at = parse_time(update.get("retry_at"))
        self.records_written = max(self.records_written, as_int(update.get("records_written")))
        loaded = parse_time(update.get("last_loaded_timestamp"))
        if loaded is not None and (self.last_loaded is None or loaded > self.last_loaded):
            self.last_loaded = loaded
        if update.get("error_message"):
            self.error_message = str(update["error_message"])

    def fraction(self, start: datetime | None, end: datetime | None) -> float | None:
        """How far through the time range the step got; None when it cannot tell."""
        if self.status is StepStatus.FINISHED:
            return 1.0
        if self.last_loaded is None or start is None or end is None or end <= start:
            return 0.0 if self.status is StepStatus.PENDING else None
        try:
            done = (self.last_loaded - start) / (end - start)
        except TypeError:  # naive against aware
            return None
        return min(1.0, max(0.0, done))


@dataclass
class QueueView:
    id: str
    symbol: str
    status: QueueStatus
    records_written: int = 0
    start: datetime | None = None
    end: datetime | None = None
    updated_at: datetime | None = None
    error_message: str | None = None
    steps: dict[int, StepView] = field(default_factory=dict)
    #: a backfill's parent (it has no steps): its children, how many stand in each status
    children: int | None = None
    progress: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_state(cls, queue: dict[str, Any]) -> QueueView:
        steps = [StepView.from_state(s) for s in queue.get("steps") or [] if isinstance(s, dict)]
        backfill = queue.get("backfill")
        if not isinstance(backfill, dict):
            backfill = None
        return cls(
            children=as_int(backfill.get("children")) if backfill else None,
            progress={str(k): as_int(v) for k, v in (backfill.get("progress") or {}).items()}
            if backfill
            else {},
            id=str(queue.get("id", "")),
            symbol=str(queue.get("symbol", "")),
            status=_queue_status(queue.get("status"), QueueStatus.PENDING),
            records_written=as_int(queue.get("records_written")),
            start=parse_time(queue.get("start_time")),
            end=parse_time(queue.get("end_time")),
            updated_at=parse_time(queue.get("updated_at")),
            error_message=queue.get("error_message"),
            steps={s.index: s for s in steps},
        )

    @property
    def terminal(self) -> bool:
        return self.status.terminal

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
                    status=StepStatus.PENDING,
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
            self.status = _queue_status(update.get("status"), self.status)
            self.records_written = max(self.records_written, as_int(update.get("records_written")))
            if update.get("error_message"):
                self.error_message = str(update["error_message"])
            if isinstance(update.get("progress"), dict):
                self.progress = {str(k): as_int(v) for k, v in update["progress"].items()}
            return True
        return False

    def final_line(self) -> Text:
        line = Text(f"Queue {printable(self.id)} ")
        line.append_text(status_text(self.status))
        line.append(f" ({self.records_written} records)")
        if self.error_message:
            line.append(f": {printable(self.error_message)}", style="red")
        return line
