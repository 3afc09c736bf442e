"""Queues for the store contract suite: every field set, nothing left to defaults."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from queue_manager.domain.models import (
    LoaderType,
    QueueState,
    QueueStatus,
    Step,
    StepStatus,
    Target,
)
from queue_manager.ports import StateStore


async def update_one(
    store: StateStore, queue_id: str, mutate: Callable[[QueueState], bool]
) -> QueueState | None:
    """One queue through `update_many`, the store's only write path for existing queues;
    `mutate` says whether it changed anything (and records no history)."""
    return (await store.update_many({queue_id: lambda q: [] if mutate(q) else None}))[queue_id]


BASE = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)

#: docs/api.md: the names fixed by the platform, then the ones the contract adds.
FIXED_QUEUE_FIELDS = frozenset(
    {
        "id", "symbol", "type", "status", "loader_type", "start_time", "end_time",
        "last_loaded_timestamp", "records_written", "error_message", "kafka_topic",
        "started_at", "finished_at", "created_at", "updated_at", "steps",
    }
)  # fmt: skip
FIXED_STEP_FIELDS = frozenset(
    {
        "index", "target", "type", "params", "depends_on", "status", "job_name",
        "telemetry_id", "kafka_topic", "collection_name", "records_written",
        "last_loaded_timestamp", "started_at", "finished_at", "error_message", "attempts",
    }
)  # fmt: skip


def make_step(queue_id: str, index: int = 0, **overrides: Any) -> Step:
    fields: dict[str, Any] = {
        "index": index,
        "target": Target.LOADER,
        "type": "api_candles_5m",
        "job_name": f"qm-{queue_id[:8]}-{index}-loader-producer",
        "telemetry_id": f"{queue_id}-{index}",
    }
    fields.update(overrides)
    return Step(**fields)


def make_queue(
    *,
    created_at: datetime = BASE,
    status: QueueStatus = QueueStatus.PENDING,
    symbol: str = "BTCUSDT",
    steps: int = 1,
    queue_id: str | None = None,
) -> QueueState:
    qid = queue_id or str(uuid.uuid4())
    return QueueState(
        id=qid,
        symbol=symbol,
        type="api_candles_5m",
        status=status,
        loader_type=LoaderType.JOB,
        time_range="2024-06-01:2024-06-30",
        start_time=datetime(2024, 6, 1, tzinfo=UTC),
        end_time=datetime(2024, 6, 30, tzinfo=UTC),
        created_at=created_at,
        updated_at=created_at,
        steps=[make_step(qid, i) for i in range(steps)],
    )


def full_queue() -> QueueState:
    """A queue with every field of QueueState and Step away from its default."""
    qid = str(uuid.uuid4())
    t = BASE
    steps = [
        make_step(
            qid,
            0,
            params={"interval": "5m", "nested": {"a": [1, 2.5, None, "x"]}, "flag": True},
            status=StepStatus.FINISHED,
            kafka_topic=f"{qid}.api_candles_5m",
            collection_name="btc_candles_5m_2024_06",
            records_written=378,
            last_loaded_timestamp=t + timedelta(hours=1),
            started_at=t + timedelta(seconds=1),
            finished_at=t + timedelta(minutes=5),
            error_message="retried once: timeout",
            attempts=2,
            max_retries=3,
            image="registry.local/loader:1.2",
            launched_at=t + timedelta(milliseconds=500),
        ),
        make_step(
            qid,
            1,
            target=Target.GNN_TRAINER,
            type="gnn_train",
            depends_on=[0],
            status=StepStatus.ERROR,
            params={"graph_collection": "btc_graph_2024_06", "model_output": "m"},
            error_message="ünïcödé — failure",
        ),
    ]
    return QueueState(
        id=qid,
        symbol="BTCUSDT",
        type="api_candles_5m",
        status=QueueStatus.ERROR,
        loader_type=LoaderType.STREAM,
        time_range="2024-06-01:2024-06-30",
        start_time=datetime(2024, 6, 1, tzinfo=UTC),
        end_time=datetime(2024, 6, 30, tzinfo=UTC),
        last_loaded_timestamp=t + timedelta(hours=1),
        records_written=378,
        error_message="step 1 (gnn-trainer) failed: ünïcödé — failure",
        kafka_topic=f"{qid}.api_candles_5m",
        started_at=t + timedelta(seconds=1),
        finished_at=t + timedelta(minutes=6),
        created_at=t,
        updated_at=t + timedelta(minutes=6, microseconds=7),
        stop_requested_at=t + timedelta(minutes=5, seconds=30),
        stop_deadline=t + timedelta(minutes=6),
        steps=steps,
    )
