"""The overview's counts (domain/overview.py, docs/api.md "GET /stats/overview"), the same from
every store: runs by creation hour and status from the window only, a backfill's parent left
out, failure tallies by target (steps) and by symbol (queues) with stopped ones in neither."""

from __future__ import annotations

from datetime import timedelta

from queue_manager.domain.models import Backfill, QueueStatus, StepStatus, Target
from queue_manager.domain.overview import RunStats, Tally, Window, overview
from queue_manager.ports import Store
from tests.store.helpers import BASE, make_queue

SINCE = BASE.replace(minute=0, second=0, microsecond=0)


async def _put(
    store: Store,
    status: QueueStatus,
    hours: float,
    symbol: str = "BTCUSDT",
    steps: tuple[StepStatus, ...] = (),
    parent: str | None = None,
) -> str:
    queue = make_queue(
        created_at=SINCE + timedelta(hours=hours), status=status, symbol=symbol, steps=len(steps)
    )
    for step, step_status in zip(queue.steps, steps, strict=True):
        step.status = step_status
    if len(queue.steps) > 1:
        queue.steps[1].target = Target.CONNECTOR
    queue.parent = parent
    stored, _ = await store.insert(queue, None)
    return stored.id


async def _fill(store: Store) -> None:
    fin, err, stop = StepStatus.FINISHED, StepStatus.ERROR, StepStatus.STOPPED
    await _put(store, QueueStatus.FINISHED, -1, steps=(fin, fin))  # before the window
    await _put(store, QueueStatus.FINISHED, 0.1, steps=(fin, fin))
    await _put(store, QueueStatus.ERROR, 0.5, steps=(fin, err))
    await _put(store, QueueStatus.ERROR, 2.2, symbol="ETHUSDT", steps=(err, StepStatus.SKIPPED))
    await _put(store, QueueStatus.STOPPED, 2.5, symbol="ETHUSDT", steps=(stop, stop))
    await _put(store, QueueStatus.LOADING, 3.0, steps=(StepStatus.LOADING, StepStatus.PENDING))
    parent = make_queue(created_at=SINCE + timedelta(hours=3), status=QueueStatus.LOADING)
    parent.steps = []
    parent.backfill = Backfill(chunk="day", max_parallel=2, symbols=["SOLUSDT"], children=1)
    await store.insert(parent, None)
    await _put(store, QueueStatus.FINISHED, 3.1, symbol="SOLUSDT", steps=(fin,), parent=parent.id)


async def test_run_stats_count_the_window_by_hour_status_target_and_symbol(store: Store) -> None:
    await _fill(store)
    stats = await store.run_stats(SINCE)

    def hour(h: int) -> str:
        return (SINCE + timedelta(hours=h)).strftime("%Y-%m-%dT%H")

    assert sorted(stats.runs_by_hour) == sorted(
        [
            (hour(0), "finished", 1),
            (hour(0), "error", 1),
            (hour(2), "error", 1),
            (hour(2), "stopped", 1),
            (hour(3), "loading", 1),  # the parent is not a run: its child is
            (hour(3), "finished", 1),
        ]
    )
    # Steps of ended queues that finished or failed; stopped and skipped ones count in neither.
    assert sorted(stats.by_target, key=lambda t: t.key) == [
        Tally("arango-connector", 2, 1),
        Tally("loader-producer", 4, 1),
    ]
    assert sorted(stats.by_symbol, key=lambda t: t.key) == [
        Tally("BTCUSDT", 2, 1),
        Tally("ETHUSDT", 1, 1),
        Tally("SOLUSDT", 1, 0),
    ]


async def test_an_empty_window_counts_nothing(store: Store) -> None:
    await _put(store, QueueStatus.FINISHED, -30, steps=(StepStatus.FINISHED,))
    assert await store.run_stats(SINCE) == RunStats()


async def test_the_overview_folds_the_store_counts_into_buckets_and_rates(store: Store) -> None:
    await _fill(store)
    now = SINCE + timedelta(hours=3, minutes=20)
    answer = overview(Window.DAY, now, await store.run_stats(SINCE), await store.count_by_status())
    assert answer.since == SINCE - timedelta(hours=20)
    assert len(answer.buckets) == 24 and answer.bucket_seconds == 3600
    by_start = {b.start: b.counts for b in answer.buckets}
    assert by_start[SINCE] == {"finished": 1, "error": 1}
    assert by_start[SINCE + timedelta(hours=1)] == {}
    assert by_start[SINCE + timedelta(hours=3)] == {"loading": 1, "finished": 1}
    assert answer.totals == {"finished": 2, "error": 2, "stopped": 1, "loading": 1}
    assert [(r.key, r.failure_rate) for r in answer.by_symbol] == [
        ("ETHUSDT", 1.0),
        ("BTCUSDT", 0.5),
        ("SOLUSDT", 0.0),
    ]
    assert answer.by_target[0].key == "arango-connector"
    assert answer.now == {"queued": 0, "pending": 0, "loading": 2, "stopping": 0}
