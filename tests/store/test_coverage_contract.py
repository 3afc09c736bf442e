"""The coverage ledger in the store (docs/coverage.md): the same contract on SQLite and
ArangoDB. Cells are written by the store with the queue's own write, so these tests write
queues the way the services do (insert, update_many) and read the cells back."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from queue_manager.domain.coverage import CellState, ExpectedGap
from queue_manager.domain.models import (
    LoaderType,
    QueueState,
    QueueStatus,
    Step,
    StepStatus,
    Target,
)
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
    other = _queue(date(2024, 1, 5), date(2024, 1, 6), symbol="ETHUSDT")
    for queue in (done, failed, running, other):
        await store.insert(queue, None)
    _end(done, 0, StepStatus.FINISHED)
    await _write(store, done)
    _end(failed, 0, StepStatus.ERROR)
    await _write(store, failed)
    _end(other, 0, StepStatus.FINISHED)
    await _write(store, other)
    settled = await store.coverage_settled(
        ["BTCUSDT", "ETHUSDT"], [TYPE], date(2024, 1, 3), date(2024, 1, 31)
    )
    assert sorted(settled) == [
        ("BTCUSDT", TYPE, date(2024, 1, 3), date(2024, 1, 10)),
        ("BTCUSDT", TYPE, date(2024, 1, 13), date(2024, 1, 14)),
        ("ETHUSDT", TYPE, date(2024, 1, 5), date(2024, 1, 6)),
    ]
    counts = await store.coverage_counts()
    assert counts == {(TYPE, "complete"): 12, (TYPE, "failed"): 2, (TYPE, "running"): 2}
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
