"""The catalog of collections in the store (docs/pipelines.md "The catalog"): the same contract
on SQLite and ArangoDB. What a step wrote is recorded by the change that ended it, through
`update_many`, with its producer; a step that read collections is recorded as their consumer."""

from __future__ import annotations

from datetime import timedelta

from queue_manager.domain import history
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, StepStatus, Target
from queue_manager.ports import Store
from tests.store.helpers import BASE, make_queue, make_step


def pipeline() -> QueueState:
    """A connector writing the candles, a graph-builder reading them into a graph."""
    queue = make_queue(steps=0)
    queue.steps = [
        make_step(
            queue.id,
            0,
            target=Target.CONNECTOR,
            collection_name="btc_candles_5m_2024_06",
            params={"collection_name": "btc_candles_5m_2024_06"},
        ),
        make_step(
            queue.id,
            1,
            target=Target.GRAPH_BUILDER,
            type="gnn_graph",
            collection_name="btc_graph_2024_06",
            params={
                "collection_inputs": ["btc_candles_5m_2024_06"],
                "collection_output": "btc_graph_2024_06",
                "collection_name": "btc_graph_2024_06",
            },
        ),
    ]
    return queue


async def end_step(
    store: Store, queue: QueueState, index: int, to: StepStatus, minutes: int = 1
) -> None:
    """The step ends `to` in one change, with the history event of it, as the engine writes."""
    at = BASE + timedelta(minutes=minutes)

    def change(q: QueueState) -> list[QueueEvent]:
        step = q.steps[index]
        event = QueueEvent(at=at, kind=EventKind.STEP_STATUS, step=index, from_=step.status, to=to)
        step.status = to
        step.records_written = 500
        history.number(q, [event])
        return [event]

    assert (await store.update_many({queue.id: change}))[queue.id] is not None


async def test_a_finished_step_records_what_it_wrote_and_read(store: Store) -> None:
    queue = pipeline()
    await store.insert(queue, None)
    assert await store.collections(None, after=None, limit=10) == []

    await end_step(store, queue, 0, StepStatus.FINISHED, minutes=1)
    [candles] = await store.collections(None, after=None, limit=10)
    assert candles.name == "btc_candles_5m_2024_06"
    assert (candles.producer.queue_id, candles.producer.step) == (queue.id, 0)
    assert candles.producer.target is Target.CONNECTOR
    assert candles.producer.at == BASE + timedelta(minutes=1)
    assert candles.producer.records_written == 500
    assert candles.writes == 1 and candles.first_written_at == candles.producer.at

    await end_step(store, queue, 1, StepStatus.FINISHED, minutes=2)
    graph = await store.collection("btc_graph_2024_06", consumers=10)
    assert graph is not None
    assert graph.producer.inputs == ["btc_candles_5m_2024_06"]
    assert graph.consumers == []
    read = await store.collection("btc_candles_5m_2024_06", consumers=10)
    assert read is not None
    assert [(c.queue_id, c.step, c.target) for c in read.consumers] == [
        (queue.id, 1, Target.GRAPH_BUILDER)
    ]
    assert await store.known_collections(
        ["btc_graph_2024_06", "btc_candles_5m_2024_6", "nothing"]
    ) == {"btc_graph_2024_06"}
    assert await store.collection_names(10) == ["btc_candles_5m_2024_06", "btc_graph_2024_06"]


async def test_a_step_that_failed_or_did_not_end_records_nothing(store: Store) -> None:
    queue = pipeline()
    await store.insert(queue, None)
    await end_step(store, queue, 0, StepStatus.LOADING)
    await end_step(store, queue, 1, StepStatus.ERROR)
    assert await store.collections(None, after=None, limit=10) == []
    assert await store.collection("btc_candles_5m_2024_06", consumers=10) is None


async def test_written_again_the_latest_producer_is_kept_and_counted(store: Store) -> None:
    first, second = pipeline(), pipeline()
    for queue in (first, second):
        await store.insert(queue, None)
    await end_step(store, first, 0, StepStatus.FINISHED, minutes=1)
    await end_step(store, second, 0, StepStatus.FINISHED, minutes=5)
    entry = await store.collection("btc_candles_5m_2024_06", consumers=10)
    assert entry is not None
    assert entry.producer.queue_id == second.id
    assert entry.writes == 2
    assert entry.first_written_at == BASE + timedelta(minutes=1)


async def test_consumers_come_newest_first_and_are_bounded(store: Store) -> None:
    queues = [pipeline() for _ in range(3)]
    for n, queue in enumerate(queues):
        await store.insert(queue, None)
        await end_step(store, queue, 1, StepStatus.FINISHED, minutes=10 - n)
    await end_step(store, queues[0], 0, StepStatus.FINISHED, minutes=11)
    entry = await store.collection("btc_candles_5m_2024_06", consumers=2)
    assert entry is not None
    assert [c.queue_id for c in entry.consumers] == [queues[0].id, queues[1].id]


async def test_listing_by_prefix_pages_by_name(store: Store) -> None:
    names = ["btc_a", "btc_b", "btc_c", "eth_a"]
    for name in names:
        queue = make_queue(steps=0)
        queue.steps = [
            make_step(
                queue.id,
                0,
                target=Target.GRAPH_BUILDER,
                type="gnn_graph",
                params={"collection_output": name},
                collection_name=name,
            )
        ]
        await store.insert(queue, None)
        await end_step(store, queue, 0, StepStatus.FINISHED)
    page = await store.collections("btc_", after=None, limit=2)
    assert [e.name for e in page] == ["btc_a", "btc_b"]
    rest = await store.collections("btc_", after="btc_b", limit=2)
    assert [e.name for e in rest] == ["btc_c"]
    assert [e.name for e in await store.collections(None, after="btc_c", limit=5)] == ["eth_a"]
    assert await store.collections("sol", after=None, limit=5) == []
