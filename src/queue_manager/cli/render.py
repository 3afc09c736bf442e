"""Rich rendering of queues and steps for the CLI."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from queue_manager.cli.durations import ran_seconds, span_text

# Wide enough that a queue id never wraps when the output goes to a pipe or a file.
_PIPE_WIDTH = 200

STATUS_STYLES = {
    "queued": "magenta",
    "pending": "dim",
    "launching": "cyan",
    "started": "cyan",
    "loading": "bold cyan",
    "finished": "bold green",
    "stopping": "yellow",
    "stopped": "yellow",
    "skipped": "dim",
    "error": "bold red",
    "retrying": "bold magenta",
}


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else _PIPE_WIDTH
    # No markup nor emoji codes: text from the service is printed as it is, never read as
    # "[bold]" or ":smile:" (a "[/]" in an error message would even stop the command).
    return Console(
        file=stream,
        width=width,
        highlight=False,
        soft_wrap=False,
        markup=False,
        emoji=False,
    )


#: what a terminal acts on rather than shows: C0 and C1 controls, DEL, and the Unicode controls
#: that reorder text or break lines (bidi marks, overrides and isolates, line and paragraph
#: separators)
_CONTROLS = r"\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(rf"[\x00-\x1f{_CONTROLS}]")
#: the same but newlines and tabs, for a log
_UNSAFE_IN_LINES = re.compile(rf"[\x00-\x08\x0b-\x1f{_CONTROLS}]")


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any, *, lines: bool = False) -> str:
    """Text that came from outside (the service, a worker, a user) made safe for a terminal:
    each control character shown as its escape (`\\x1b`, `\\n`, `\\u202e`) instead of
    acted upon — no title change, no cleared screen, no hidden text. `lines`: keep newlines
    and tabs (a log)."""
    text = "" if value is None else str(value)
    return (_UNSAFE_IN_LINES if lines else _UNSAFE).sub(_escape, text)


def status_text(status: Any) -> Text:
    value = printable(status or "?")
    return Text(value, style=STATUS_STYLES.get(value, ""))


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def format_time(value: Any) -> str:
    moment = parse_time(value)
    if moment is None:
        return printable(value)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _text(value: Any) -> str:
    return printable(value)


def step_counts(queue: dict[str, Any]) -> str:
    steps = queue.get("steps") or []
    done = sum(1 for s in steps if isinstance(s, dict) and s.get("status") == "finished")
    return f"{done}/{len(steps)}"


def pipeline_text(queue: dict[str, Any]) -> str:
    """What runs: its steps' targets in order (a backfill's parent has none: its type)."""
    steps = [s for s in queue.get("steps") or [] if isinstance(s, dict)]
    if not steps:
        return _text(queue.get("type", ""))
    return " → ".join(_text(s.get("target", "?")) for s in steps)


def range_text(queue: dict[str, Any]) -> str:
    """The data a queue reads, `2024-01-01:2024-01-03` drawn as a range."""
    return _text(queue.get("time_range") or "").replace(":", " → ")


def origin_text(queue: dict[str, Any]) -> str:
    """Where a queue came from: a backfill's parent (with its children), a child, a schedule."""
    backfill = queue.get("backfill")
    if isinstance(backfill, dict):
        n = backfill.get("children", 0)
        return f"backfill · {n} child" + ("" if n == 1 else "ren")
    if queue.get("parent"):
        return f"part of {_text(queue['parent'])[:8]}"
    if queue.get("schedule"):
        return f"schedule {_text(queue['schedule'])}"
    return ""


def backfill_done(queue: dict[str, Any]) -> str:
    backfill = queue.get("backfill")
    if not isinstance(backfill, dict):
        return step_counts(queue)
    progress = backfill.get("progress") or {}
    return f"{progress.get('finished', 0)}/{backfill.get('children', 0)}"


def queues_table(
    queues: Iterable[dict[str, Any]],
    children: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> Table:
    """The dashboard's list: `children`, a backfill parent's children, drawn under it."""
    table = Table(header_style="bold", show_edge=False, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("symbol", no_wrap=True)
    table.add_column("pipeline", overflow="fold")
    table.add_column("time range", no_wrap=True)
    table.add_column("origin", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("records_written", justify="right", no_wrap=True)
    table.add_column("created_at", no_wrap=True)

    def add(queue: dict[str, Any], indent: str = "") -> None:
        table.add_row(
            indent + _text(queue.get("id")),
            _text(queue.get("symbol")),
            pipeline_text(queue),
            range_text(queue),
            origin_text(queue),
            _queue_status(queue),
            backfill_done(queue),
            _text(queue.get("records_written", 0)),
            format_time(queue.get("created_at")),
        )

    for queue in queues:
        add(queue)
        for child in (children or {}).get(str(queue.get("id")), ()):
            add(child, "└ ")
    return table


def _queue_status(queue: dict[str, Any]) -> Text:
    text = status_text(queue.get("status"))
    if queue.get("position") is not None:
        text.append(f" #{queue['position']}")  # its place in the admission line
    return text


_SUMMARY_FIELDS = (
    ("id", "id"),
    ("symbol", "symbol"),
    ("type", "type"),
    ("status", "status"),
    ("loader_type", "loader_type"),
    ("time_range", "time_range"),
    ("records_written", "records_written"),
    ("last_loaded_timestamp", "last_loaded_timestamp"),
    ("kafka_topic", "kafka_topic"),
    ("created_at", "created_at"),
    ("started_at", "started_at"),
    ("finished_at", "finished_at"),
    ("error_message", "error_message"),
)


def queue_summary(queue: dict[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, key in _SUMMARY_FIELDS:
        value = queue.get(key)
        if value is None and key in (
            "error_message",
            "started_at",
            "finished_at",
            "last_loaded_timestamp",
            "kafka_topic",
        ):
            continue
        if key == "status":
            grid.add_row(label, status_text(value))
        elif key.endswith(("_at", "_timestamp")):
            grid.add_row(label, format_time(value))
        elif key == "error_message":
            grid.add_row(label, Text(_text(value), style="red"))
        else:
            grid.add_row(label, _text(value))
    if queue.get("steps"):
        # docs/api.md "Records and duration": the time its steps ran, waits left out
        grid.add_row("ran_for", span_text(ran_seconds(queue)))
    return grid


def steps_table(steps: Iterable[dict[str, Any]]) -> Table:
    table = Table(header_style="bold", show_edge=False, pad_edge=False)
    table.add_column("index", justify="right", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("records_written", justify="right", no_wrap=True)
    # A job name is 50+ characters: folded, so the notes beside it keep room to be read.
    table.add_column("job_name", overflow="fold", min_width=20, ratio=1)
    table.add_column("notes", style="red", min_width=20, ratio=1)
    for step in steps:
        table.add_row(
            _text(step.get("index")),
            _text(step.get("target")),
            _text(step.get("type")),
            _step_status(step),
            _text(step.get("attempts", 0)),
            _text(step.get("records_written", 0)),
            _text(step.get("job_name")),
            _text(step.get("error_message") or step.get("waiting") or _warnings(step)),
        )
    return table


def _step_status(step: dict[str, Any]) -> Text:
    text = status_text(step.get("status"))
    if step.get("status") == "retrying" and step.get("retry_at"):
        text.append(f" until {format_time(step['retry_at'])}")
    return text


def attempts_table(steps: Iterable[dict[str, Any]]) -> Table | None:
    """Each attempt of the steps that failed at least once (docs/pipelines.md "Retry"): when it
    ran, how it ended and when the next one starts; None when every step ran once cleanly."""
    rows = [
        (step, attempt)
        for step in steps
        if any(isinstance(a, dict) and a.get("class") for a in step.get("attempts_log") or [])
        for attempt in step.get("attempts_log") or []
        if isinstance(attempt, dict)
    ]
    if not rows:
        return None
    table = Table(header_style="bold", show_edge=False, pad_edge=False, title="attempts")
    for name in ("step", "attempt", "started_at", "ended_at", "class", "retry_at"):
        table.add_column(name, no_wrap=True)
    table.add_column("reason", style="red")
    for step, attempt in rows:
        table.add_row(
            _text(step.get("index")),
            _text(attempt.get("attempt")),
            format_time(attempt.get("started_at")),
            format_time(attempt.get("ended_at")) if attempt.get("ended_at") else "running",
            _text(attempt.get("class") or ""),
            format_time(attempt.get("retry_at")) if attempt.get("retry_at") else "",
            _text(attempt.get("reason") or ""),
        )
    return table


def _warnings(step: dict[str, Any]) -> str | None:
    """Recoverable errors the worker reported (the step went on): how many, and the latest."""
    count = step.get("warnings") or 0
    if not count:
        return None
    noun = "warning" if count == 1 else "warnings"
    return f"{count} {noun}, latest: {step.get('last_warning')}"
