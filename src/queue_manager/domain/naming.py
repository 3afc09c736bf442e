"""Naming rules of docs/pipelines.md, docs/operations.md: collections, topics, job names, streaming
types."""

from __future__ import annotations

import calendar
import uuid
from datetime import date

from queue_manager.domain.models import LoaderType, Target
from queue_manager.job_contract import is_streaming as is_streaming

# Longest first, so FDUSD wins over USD and USDT over USD.
QUOTE_CURRENCIES = tuple(
    sorted(
        ("USDT", "USDC", "BUSD", "FDUSD", "USD", "EUR", "BTC", "ETH", "BNB"), key=len, reverse=True
    )
)

JOB_NAME_MAX = 63


def base_asset(symbol: str) -> str:
    for quote in QUOTE_CURRENCIES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return symbol


def _day(day: date) -> str:
    # Not strftime's %Y, which is not zero-padded on every platform (year 1 gives "1").
    return f"{day.year:04d}_{day.month:02d}_{day.day:02d}"


def period_suffix(start: date, end: date) -> str:
    if start == end:
        return _day(start)
    last_day = calendar.monthrange(start.year, start.month)[1]
    if start.day == 1 and end == start.replace(day=last_day):
        return f"{start.year:04d}_{start.month:02d}"
    return f"{_day(start)}_{_day(end)}"


def default_collection(symbol: str, step_type: str, start: date, end: date) -> str:
    kind = step_type.removeprefix("api_")
    return f"{base_asset(symbol).lower()}_{kind}_{period_suffix(start, end)}"


def data_topic(queue_id: str, step_type: str) -> str:
    return f"{queue_id}.{step_type}"


#: how often a queue may be retried: keeps the run suffix, hence the job name, bounded
MAX_RUN = 99


def _run_suffix(run: int) -> str:
    return f"-r{run}" if run else ""


def job_name(queue_id: str, index: int, target: Target, run: int = 0) -> str:
    """`qm-<the queue id's 32 hex digits>-<index>-<target>`, plus `-r<run>` for a retried step:
    distinct queues, steps, targets and runs can never want the same name, so no launcher has to
    guard against a clash, and the name still starts `qm-<first 8 of the id>-` as it always has.
    Queue ids are UUIDs."""
    name = f"qm-{uuid.UUID(queue_id).hex}-{index}-{target.value}{_run_suffix(run)}"
    # Targets, indexes (< 64 steps) and runs (<= MAX_RUN) are bounded: 59 characters at most.
    assert len(name) <= JOB_NAME_MAX
    return name


def telemetry_id(queue_id: str, index: int, target: Target, run: int = 0) -> str:
    """Unique per step and run: a late report of an earlier run names a producer no step has."""
    return f"{target.value}-{queue_id}-{index}{_run_suffix(run)}"


def loader_type_of(target: Target, step_type: str) -> LoaderType:
    if target is Target.CONNECTOR:
        return LoaderType.CONNECTOR
    return LoaderType.STREAM if is_streaming(step_type) else LoaderType.JOB


def connector_group(queue_id: str) -> str:
    """The consumer group in which the platform's arango-connector reads its data topic."""
    return f"arango-connector-consumer-{queue_id}"
