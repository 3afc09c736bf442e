"""The coverage ledger in the store (docs/coverage.md): the same contract on SQLite and
ArangoDB. Cells are written by the store with the queue's own write, so these tests write
queues the way the services do (insert, update_many) and read the cells back."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from queue_manager.domain import coverage
from queue_manager.domain.coverage import CellRun, CellState, ExpectedGap
from queue_manager.domain.models import (
    LoaderType,
    QueueState,
    QueueStatus,
    Step,
    StepStatus,
    Target,
)
from queue_manager.domain.spans import ReportedCoverage, Span
from queue_manager.ports import Store
from tests.store.conftest import Backend

T0 = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)
TYPE = "api_candles_5m"


def _queue(
    first: date,
    last: date,
    *,
    symbol: str = "BTCUSDT",
    created: datetime = T0,
    connector: bool = False,
    step_type: str = TYPE,
) -> QueueState:
    qid = str(uuid.uuid4())
    steps = [
        Step(
            index=0,
            target=Target.LOADER,
            type=step_type,
            job_name=f"qm-{qid[:8]}-0-loader-producer",
            telemetry_id=f"{qid}-0",
        )
    ]
    if connector:
        steps.append(
            Step(
                index=1,
                target=Target.CONNECTOR,
                type=step_type,
                job_name=f"qm-{qid[:8]}-1-arango-connector",
                telemetry_id=f"{qid}-1",
            )
        )
    return QueueState(
        id=qid,
        symbol=symbol,
        type=step_type,
        status=QueueStatus.LOADING,
        loader_type=LoaderType.JOB,
        time_range=f"{first}:{last}",
        start_time=datetime.combine(first, datetime.min.time(), UTC),
        end_time=datetime.combine(last, datetime.max.time(), UTC).replace(microsecond=0),
        created_at=created,
        updated_at=created,
        steps=steps,
    )


def _end(queue: QueueState, step: int, status: StepStatus, **fields: object) -> None:
    """The step ended as `status`, the queue with it (what the state machine would write)."""
    target = queue.steps[step]
    target.status = status
    for name, value in fields.items():
        setattr(target, name, value)
    for other in queue.steps:
        if not other.status.terminal:
            other.status = StepStatus.STOPPED
    queue.status = {
        StepStatus.FINISHED: QueueStatus.FINISHED,
        StepStatus.ERROR: QueueStatus.ERROR,
    }.get(status, QueueStatus.STOPPED)


async def _write(store: Store, queue: QueueState) -> None:
    """`queue` as it is now, through update_many (the write path of every change)."""
    snapshot = queue.model_copy(deep=True)

    def change(stored: QueueState) -> list[object]:
        for name in QueueState.model_fields:
            setattr(stored, name, getattr(snapshot, name))
        return []

    await store.update_many({queue.id: change})  # type: ignore[dict-item]


def _states(cells: list, symbol: str = "BTCUSDT") -> dict[date, str]:  # type: ignore[type-arg]
    return {c.day: c.state.value for c in cells if c.symbol == symbol}


async def test_a_running_queue_is_running_cells_and_a_finished_one_complete(
    backend: Backend,
) -> None:
    store = await backend.open()
    queue = _queue(date(2024, 1, 1), date(2024, 1, 3))
    await store.insert(queue, None)
    cells = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2024, 1, 1), date(2024, 1, 3))
    assert [(c.day.day, c.state) for c in cells] == [(d, CellState.RUNNING) for d in (1, 2, 3)]
    _end(queue, 0, StepStatus.FINISHED, records_written=300)
    await _write(store, queue)
    cells = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2023, 12, 1), date(2024, 2, 1))
    assert [c.state for c in cells] == [CellState.COMPLETE] * 3
    assert [c.day for c in cells] == [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)]
    assert sum(c.records for c in cells) == 300
    assert {(c.queue_id, c.step, c.type) for c in cells} == {(queue.id, 0, TYPE)}
    assert cells[0].first == "2024-01-01T00:00:00+00:00"
    assert cells[2].last == "2024-01-03T23:59:59+00:00"


async def test_a_failed_step_covers_the_days_before_its_last_timestamp(backend: Backend) -> None:
    store = await backend.open()
    queue = _queue(date(2024, 3, 1), date(2024, 3, 5), connector=True)
    await store.insert(queue, None)
    reached = datetime(2024, 3, 3, 6, 30, tzinfo=UTC)
    # the loader reached further; the connector's writes are what reached the store
    queue.steps[0].last_loaded_timestamp = datetime(2024, 3, 5, tzinfo=UTC)
    _end(queue, 1, StepStatus.ERROR, last_loaded_timestamp=reached, records_written=99)
    await _write(store, queue)
    cells = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2024, 3, 1), date(2024, 3, 5))
    assert [c.state.value for c in cells] == ["complete", "complete", "partial", "failed", "failed"]
    partial = cells[2]
    assert partial.loaded_until == reached.isoformat()
    assert {c.step for c in cells} == {1}
    assert sum(c.records for c in cells) == 99
    assert cells[3].records == cells[4].records == 0


async def test_a_later_failure_never_undoes_a_complete_day_and_order_does_not_matter(
    backend: Backend,
) -> None:
    store = await backend.open()
    older = _queue(date(2024, 2, 1), date(2024, 2, 2), created=T0)
    newer = _queue(date(2024, 2, 2), date(2024, 2, 3), created=T0 + timedelta(hours=1))
    # the newer one is written first: what a derivation in any order must also give
    await store.insert(newer, None)
    await store.insert(older, None)
    _end(newer, 0, StepStatus.ERROR)
    await _write(store, newer)
    _end(older, 0, StepStatus.FINISHED)
    await _write(store, older)
    cells = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2024, 2, 1), date(2024, 2, 3))
    assert [(c.day.day, c.state.value, c.queue_id) for c in cells] == [
        (1, "complete", older.id),
        (2, "complete", older.id),
        (3, "failed", newer.id),
    ]
    # a fill's newer queue over the failed day replaces it as it runs and as it ends
    fill = _queue(date(2024, 2, 3), date(2024, 2, 3), created=T0 + timedelta(hours=2))
    await store.insert(fill, None)
    cells = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2024, 2, 3), date(2024, 2, 3))
    assert [(c.state.value, c.queue_id) for c in cells] == [("running", fill.id)]
    _end(fill, 0, StepStatus.FINISHED)
    await _write(store, fill)
    cells = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2024, 2, 3), date(2024, 2, 3))
    assert [(c.state.value, c.queue_id) for c in cells] == [("complete", fill.id)]


async def test_a_stream_stopped_by_hand_covers_the_hours_it_ran(backend: Backend) -> None:
    store = await backend.open()
    queue = _queue(date(2024, 8, 1), date(2024, 8, 3), step_type="ws_candles_1m")
    await store.insert(queue, None)
    assert len(await store.coverage_cells(["BTCUSDT"], ["ws_candles_1m"], *_aug())) == 3
    started = datetime(2024, 8, 1, 20, 0, tzinfo=UTC)
    stopped = datetime(2024, 8, 2, 4, 0, tzinfo=UTC)
    _end(queue, 0, StepStatus.STOPPED, started_at=started, finished_at=stopped)
    await _write(store, queue)
    cells = await store.coverage_cells(["BTCUSDT"], ["ws_candles_1m"], *_aug())
    # the day it never reached is no longer running, and not failed either: missing
    assert [(c.day.day, c.state.value, c.first, c.last) for c in cells] == [
        (1, "partial", started.isoformat(), "2024-08-02T00:00:00+00:00"),
        (2, "partial", "2024-08-02T00:00:00+00:00", stopped.isoformat()),
    ]


def _aug() -> tuple[date, date]:
    return date(2024, 8, 1), date(2024, 8, 3)


async def test_settled_runs_and_counts(backend: Backend) -> None:
    store = await backend.open()
    done = _queue(date(2024, 1, 1), date(2024, 1, 10))
    failed = _queue(date(2024, 1, 11), date(2024, 1, 12))
    running = _queue(date(2024, 1, 13), date(2024, 1, 14))
    # complete from another queue, right after the running days and past the range's end
    later = _queue(date(2024, 1, 15), date(2024, 2, 3))
    other = _queue(date(2024, 1, 5), date(2024, 1, 6), symbol="ETHUSDT")
    for queue in (done, failed, running, later, other):
        await store.insert(queue, None)
    for finished in (done, later):
        _end(finished, 0, StepStatus.FINISHED)
        await _write(store, finished)
    _end(failed, 0, StepStatus.ERROR)
    await _write(store, failed)
    _end(other, 0, StepStatus.FINISHED)
    await _write(store, other)
    settled = await store.coverage_settled(
        ["BTCUSDT", "ETHUSDT"], [TYPE], date(2024, 1, 3), date(2024, 1, 31)
    )
    assert sorted(settled) == [
        ("BTCUSDT", TYPE, date(2024, 1, 3), date(2024, 1, 10)),
        # running, then complete by another queue: one settled run, cut at the range's end
        ("BTCUSDT", TYPE, date(2024, 1, 13), date(2024, 1, 31)),
        ("ETHUSDT", TYPE, date(2024, 1, 5), date(2024, 1, 6)),
    ]
    counts = await store.coverage_counts()
    assert counts == {(TYPE, "complete"): 32, (TYPE, "failed"): 2, (TYPE, "running"): 2}
    assert await store.coverage_symbols(TYPE, 10) == ["BTCUSDT", "ETHUSDT"]
    assert await store.coverage_symbols(TYPE, 1) == ["BTCUSDT"]
    assert await store.coverage_symbols("api_trades", 10) == []


async def test_derivation_is_batched_and_idempotent(backend: Backend) -> None:
    store = await backend.open()
    queues = [_queue(date(2024, 5, d), date(2024, 5, d)) for d in range(1, 6)]
    for queue in queues:
        await store.insert(queue, None)
    before = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2024, 5, 1), date(2024, 5, 5))
    assert not await store.coverage_derived()
    seen, after = 0, None
    while (after := await store.derive_coverage(after, 2)) is not None:
        seen += 1
    assert seen == 3  # 2 + 2 + 1
    await store.mark_coverage_derived()
    assert await store.coverage_derived()
    again = await store.coverage_cells(["BTCUSDT"], [TYPE], date(2024, 5, 1), date(2024, 5, 5))
    assert again == before


async def test_expected_gaps_are_kept_by_name(backend: Backend) -> None:
    store = await backend.open()
    gap = ExpectedGap.model_validate(
        {"name": "binance-2024-03", "symbol": "*", "from": "2024-03-10", "to": "2024-03-10"}
    )
    assert await store.put_expected_gap(gap) is True
    longer = gap.model_copy(update={"end": date(2024, 3, 11), "reason": "maintenance"})
    assert await store.put_expected_gap(longer) is False
    other = ExpectedGap.model_validate(
        {"name": "a-eth", "symbol": "ethusdt", "from": "2024-04-01", "to": "2024-04-02"}
    )
    await store.put_expected_gap(other)
    assert await (await backend.open()).expected_gaps() == [other, longer]
    assert await store.delete_expected_gap("binance-2024-03") is True
    assert await store.delete_expected_gap("binance-2024-03") is False
    assert await store.expected_gaps() == [other]


# -- the ledger's runs ------------------------------------------------------------------------


async def _runs_as_cells_make_them(
    store: Store, first: date, last: date, symbols: tuple[str, ...] = ("BTCUSDT",)
) -> list[CellRun]:
    """The store's runs over first..last, asserted equal to what its cells there make."""
    runs = await store.coverage_runs(list(symbols), [TYPE], first, last)
    cells = await store.coverage_cells(list(symbols), [TYPE], first, last)
    assert runs == coverage.cell_runs(cells), (first, last)
    return runs


def _brief(runs: list[CellRun]) -> list[tuple[int, int, str, str]]:
    """(first day of month, last day, state, queue_id) of each run."""
    return [(r.start.day, r.end.day, r.state.value, r.queue_id) for r in runs]


async def test_runs_crossing_the_range_hold_only_their_days_inside(backend: Backend) -> None:
    store = await backend.open()
    july = _queue(date(2024, 7, 1), date(2024, 7, 31))
    august = _queue(date(2024, 8, 1), date(2024, 8, 31), created=T0 + timedelta(hours=1))
    for queue in (july, august):
        await store.insert(queue, None)
    # 3,101 records over 31 days: not the same on every day
    _end(july, 0, StepStatus.FINISHED, records_written=3101)
    await _write(store, july)
    reached = datetime(2024, 8, 20, 12, 0, tzinfo=UTC)
    _end(august, 0, StepStatus.ERROR, last_loaded_timestamp=reached, records_written=1950)
    await _write(store, august)
    whole = await _runs_as_cells_make_them(store, date(2024, 6, 1), date(2024, 9, 30))
    assert _brief(whole) == [
        (1, 31, "complete", july.id),
        (1, 19, "complete", august.id),
        (20, 20, "partial", august.id),
        (21, 31, "failed", august.id),
    ]
    for first, last in [
        (date(2024, 7, 10), date(2024, 7, 20)),  # inside one run: clipped at both ends
        (date(2024, 6, 1), date(2024, 7, 3)),  # crosses `last`, few days inside
        (date(2024, 6, 1), date(2024, 7, 28)),  # crosses `last`, few days outside
        (date(2024, 7, 29), date(2024, 8, 25)),  # crosses `first` (few inside) and `last`
        (date(2024, 7, 3), date(2024, 9, 30)),  # crosses `first`, few days outside
        (date(2024, 8, 20), date(2024, 8, 20)),  # the partial day alone
    ]:
        runs = await _runs_as_cells_make_them(store, first, last)
        assert runs[0].start == max(first, date(2024, 7, 1))
        assert runs[-1].end == min(last, date(2024, 8, 31))
    clipped = await _runs_as_cells_make_them(store, date(2024, 7, 10), date(2024, 7, 20))
    assert len(clipped) == 1
    assert clipped[0].first == "2024-07-10T00:00:00+00:00"
    assert clipped[0].last == "2024-07-20T23:59:59+00:00"
    assert 1100 <= clipped[0].records <= 1111


def _reported(*spans: tuple[date, date]) -> ReportedCoverage:
    """Loaded spans from the start of the first day to the start of the second."""
    return ReportedCoverage(
        loaded=[
            Span(
                start=datetime.combine(a, datetime.min.time(), UTC),
                end=datetime.combine(b, datetime.min.time(), UTC),
            )
            for a, b in spans
        ]
    )


async def test_a_failed_day_splits_a_complete_month_and_a_refill_joins_it(
    backend: Backend,
) -> None:
    store = await backend.open()
    july = (date(2024, 7, 1), date(2024, 7, 31))
    queue = _queue(*july)
    await store.insert(queue, None)
    assert _brief(await _runs_as_cells_make_them(store, *july)) == [(1, 31, "running", queue.id)]
    # the worker reports every day loaded but the 15th: one failed day inside a complete month
    queue.steps[0].coverage = _reported(
        (date(2024, 7, 1), date(2024, 7, 15)), (date(2024, 7, 16), date(2024, 8, 1))
    )
    _end(queue, 0, StepStatus.FINISHED, records_written=3000)
    await _write(store, queue)
    assert _brief(await _runs_as_cells_make_them(store, *july)) == [
        (1, 14, "complete", queue.id),
        (15, 15, "failed", queue.id),
        (16, 31, "complete", queue.id),
    ]
    # refilled by a fill's newer queue: its day between the two halves, of its own
    fill = _queue(date(2024, 7, 15), date(2024, 7, 15), created=T0 + timedelta(hours=1))
    await store.insert(fill, None)
    assert _brief(await _runs_as_cells_make_them(store, *july))[1] == (15, 15, "running", fill.id)
    _end(fill, 0, StepStatus.FINISHED, records_written=100)
    await _write(store, fill)
    assert _brief(await _runs_as_cells_make_them(store, *july)) == [
        (1, 14, "complete", queue.id),
        (15, 15, "complete", fill.id),
        (16, 31, "complete", queue.id),
    ]
    # on another symbol, the queue itself runs again and loads the day: its own cells are
    # replaced, and the month is one run again
    other = _queue(*july, symbol="ETHUSDT")
    other.steps[0].coverage = queue.steps[0].coverage
    _end(other, 0, StepStatus.FINISHED, records_written=3000)
    await store.insert(other, None)
    eth = ("ETHUSDT",)
    assert [r.state.value for r in await _runs_as_cells_make_them(store, *july, eth)] == [
        "complete",
        "failed",
        "complete",
    ]
    other.retries += 1
    other.steps[0].coverage = _reported((date(2024, 7, 1), date(2024, 8, 1)))
    await _write(store, other)
    joined = await _runs_as_cells_make_them(store, *july, eth)
    assert _brief(joined) == [(1, 31, "complete", other.id)]
    assert joined[0].records == 3000
    # and back to running while it runs again: one run, every day its own
    other.retries += 1
    other.status = QueueStatus.LOADING
    other.steps[0].status = StepStatus.LOADING
    other.steps[0].coverage = None
    await _write(store, other)
    assert _brief(await _runs_as_cells_make_them(store, *july, eth)) == [
        (1, 31, "running", other.id)
    ]
    # the other symbol's runs are its own
    assert _brief(await _runs_as_cells_make_them(store, date(2024, 6, 1), date(2024, 8, 31))) == [
        (1, 14, "complete", queue.id),
        (15, 15, "complete", fill.id),
        (16, 31, "complete", queue.id),
    ]
