"""The coverage ledger's pure rules (docs/coverage.md): a worker's exact coverage, parsed from
its telemetry, kept on its step in any order, wins over the rule; fill planning skips settled
days and expected gaps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import orjson

from queue_manager.domain import coverage, state, telemetry
from queue_manager.domain.backfill import Chunk
from queue_manager.domain.coverage import CellState, ExpectedCalendar, ExpectedGap
from queue_manager.domain.models import QueueStatus, StepStatus
from tests.store.test_coverage_contract import _queue

NOW = datetime(2024, 2, 1, tzinfo=UTC)


def _report(queue_id: str, producer: str, event: str, **coverage_spans: object) -> bytes:
    return orjson.dumps(
        {
            "event": event,
            "queue_id": queue_id,
            "producer": producer,
            "sent_at": "2024-02-01T00:00:00Z",
            "records_written": 2300,
            "coverage": coverage_spans,
        }
    )


def test_reported_coverage_wins_over_the_rule_whatever_order_it_arrives_in() -> None:
    queue = _queue(date(2024, 1, 1), date(2024, 1, 3))
    step = queue.steps[0]
    first = _report(
        queue.id,
        step.telemetry_id,
        "loading",
        loaded=[{"from": "2024-01-01T00:00:00Z", "to": "2024-01-02T06:00:00Z"}],
    )
    # naive instants are UTC (the full path), a later report adds a gap
    second = _report(
        queue.id,
        step.telemetry_id,
        "loading",
        gaps=[{"from": "2024-01-01T03:00:00", "to": "2024-01-01T04:00:00"}],
    )
    finished = _report(queue.id, step.telemetry_id, "finished")
    events = [telemetry.parse(raw, telemetry.Source.EVENTS) for raw in (second, first, finished)]
    state.apply_telemetry_batch(queue, events, NOW)
    assert queue.status is QueueStatus.FINISHED and step.coverage is not None
    assert len(step.coverage.loaded) == 1 and len(step.coverage.gaps) == 1
    cells = coverage.queue_cells(queue)
    # finished, yet only what the worker said reached the store is complete
    assert [(c.day.day, c.state) for c in cells] == [
        (1, CellState.PARTIAL),
        (2, CellState.PARTIAL),
        (3, CellState.FAILED),
    ]
    assert cells[1].last == "2024-01-02T06:00:00+00:00"
    assert sum(c.records for c in cells) == 2300
    assert cells[0].records == round(2300 * 23 / 29)


def test_a_malformed_coverage_is_dropped_never_the_report() -> None:
    queue = _queue(date(2024, 1, 1), date(2024, 1, 1))
    raw = _report(queue.id, queue.steps[0].telemetry_id, "loading", loaded=[{"from": "x"}])
    event = telemetry.parse(raw, telemetry.Source.EVENTS)
    assert event.coverage is None and event.records_written == 2300


def test_a_step_waiting_to_retry_is_running_and_a_skipped_one_failed() -> None:
    queue = _queue(date(2024, 1, 1), date(2024, 1, 2), connector=True)
    queue.steps[1].status = StepStatus.RETRYING
    assert {c.state for c in coverage.queue_cells(queue)} == {CellState.RUNNING}
    queue.steps[1].status = StepStatus.SKIPPED
    queue.status = QueueStatus.ERROR
    cells = coverage.queue_cells(queue)
    assert {(c.state, c.step) for c in cells} == {(CellState.FAILED, 1)}


def test_fill_planning_skips_settled_days_and_expected_gaps_and_cuts_at_chunks() -> None:
    gaps = ExpectedCalendar(
        [
            ExpectedGap.model_validate(
                {"name": "g", "symbol": "*", "from": "2024-01-30", "to": "2024-02-02"}
            )
        ]
    )
    settled = [(date(2024, 1, 5), date(2024, 1, 20))]
    runs = coverage.fill_runs("BTCUSDT", settled, date(2024, 1, 1), date(2024, 2, 10), gaps)
    assert runs == [
        (date(2024, 1, 1), date(2024, 1, 4)),
        (date(2024, 1, 21), date(2024, 1, 29)),
        (date(2024, 2, 3), date(2024, 2, 10)),
    ]
    planned = coverage.plan_fill("BTCUSDT", "t", runs, Chunk.MONTH)
    assert [p.time_range for p in planned] == [
        "2024-01-01:2024-01-04",
        "2024-01-21:2024-01-29",
        "2024-02-03:2024-02-10",
    ]
    weekly = coverage.plan_fill("BTCUSDT", "t", runs, Chunk.WEEK)
    assert [p.time_range for p in weekly][:2] == ["2024-01-01:2024-01-04", "2024-01-21:2024-01-21"]


def test_fill_runs_match_the_days_a_day_by_day_walk_finds() -> None:
    # settled runs and gaps overlapping each other and both ends of the range
    gaps = ExpectedCalendar(
        [
            ExpectedGap.model_validate(g)
            for g in (
                {"name": "a", "symbol": "*", "from": "2023-12-20", "to": "2024-01-02"},
                {"name": "b", "symbol": "BTCUSDT", "from": "2024-01-10", "to": "2024-01-12"},
                {"name": "c", "symbol": "ETHUSDT", "from": "2024-01-15", "to": "2024-01-15"},
                {"name": "d", "symbol": "*", "from": "2024-02-08", "to": "2024-03-01"},
            )
        ]
    )
    settled = [
        (date(2024, 1, 11), date(2024, 1, 13)),
        (date(2024, 1, 14), date(2024, 1, 14)),
        (date(2024, 1, 20), date(2024, 1, 25)),
        (date(2024, 1, 22), date(2024, 1, 23)),
    ]
    first, last = date(2024, 1, 1), date(2024, 2, 10)
    runs = coverage.fill_runs("BTCUSDT", settled, first, last, gaps)
    walked = [
        first + timedelta(days=n)
        for n in range((last - first).days + 1)
        if not gaps.covers("BTCUSDT", first + timedelta(days=n))
        and not any(a <= first + timedelta(days=n) <= b for a, b in settled)
    ]
    from_runs = [a + timedelta(days=n) for a, b in runs for n in range((b - a).days + 1)]
    assert from_runs == walked
    # no two runs touch: each is as long as it can be
    assert all(b + timedelta(days=1) < c for (_, b), (c, _) in pairwise(runs))
    assert coverage.fill_runs("BTCUSDT", [(first, last)], first, last, gaps) == []
