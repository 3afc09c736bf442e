"""docs/operations.md admission: MAX_RUNNING_QUEUES holds across replicas — a burst of starts on
two replicas never runs more than the limit, is admitted by priority then first come, first
served, and every queue still ends finished."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bus.conftest import platform_worker_env
from tests.support.history import history_of
from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service

LIMIT = 3


@dataclass(frozen=True)
class Sample:
    loading: int
    running: int  # admitted and not ended
    #: id -> admission rank (priority first, then oldest) of every queue waiting
    queued: dict[str, tuple[int, str, str]]


def sample(db: Path, stop: threading.Event, samples: list[Sample]) -> None:
    """The shared store as one consistent read (a WAL snapshot), often."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10, isolation_level=None)
    try:
        while not stop.is_set():
            conn.execute("BEGIN")
            loading, running = conn.execute(
                "SELECT SUM(status = 'loading'), "
                "SUM(status IN ('pending', 'loading', 'stopping')) FROM queue_state"
            ).fetchone()
            queued = conn.execute(
                "SELECT id, priority, created FROM queue_state WHERE status = 'queued'"
            ).fetchall()
            conn.execute("COMMIT")
            ranks = {q: (-p, created, q) for q, p, created in queued}
            samples.append(Sample(int(loading or 0), int(running or 0), ranks))
            stop.wait(0.02)  # the sampling interval
    finally:
        conn.close()


def test_a_burst_on_two_replicas_never_runs_more_than_the_limit(
    tmp_path: Path, running_kafka_broker: KafkaBroker, single: dict[str, Any]
) -> None:
    env = platform_worker_env(
        tmp_path, running_kafka_broker, LOCAL_WORKER_ARGS="3", MAX_RUNNING_QUEUES=str(LIMIT)
    )
    shared = tmp_path / "shared"
    replicas = [Service(shared, env=env).start(), Service(shared, env=env).start()]
    stop = threading.Event()
    samples: list[Sample] = []
    sampler = threading.Thread(target=sample, args=(shared / "queue-manager.db", stop, samples))
    sampler.start()
    try:
        priorities = [(i * 7) % 3 for i in range(20)]  # 0, 1, 2 mixed
        # A burst: all twenty requests at once, half on each replica.
        with ThreadPoolExecutor(len(priorities)) as pool:
            ids = list(
                pool.map(
                    lambda i: replicas[i % 2].start_queue({**single, "priority": priorities[i]}),
                    range(len(priorities)),
                )
            )
        # Beyond the limit they wait, each with its place in line.
        waiting = replicas[0].get("/queues", params={"status": "queued", "limit": 100}).json()
        positions = sorted(q["position"] for q in waiting["data"])
        assert positions == list(range(1, len(positions) + 1)) and len(positions) > LIMIT
        finals = [
            replicas[i % 2].wait_status(q, {"finished", "error"}, 120) for i, q in enumerate(ids)
        ]
        assert [q["status"] for q in finals] == ["finished"] * 20
        for queue_id in ids:
            admissions = [e for e in history_of(replicas[0], queue_id) if e["kind"] == "admission"]
            assert len(admissions) == 1, admissions
            assert admissions[0]["actor"] == "launcher"
    finally:
        stop.set()
        sampler.join()
        for svc in replicas:
            svc.stop()
        replicas[0].kill_workers()
    assert len(samples) > 50
    assert max(x.loading for x in samples) <= LIMIT
    assert max(x.running for x in samples) <= LIMIT
    assert max(x.loading for x in samples) == LIMIT  # the limit was reached, not idle
    # Admission order: a queue admitted between two samples never passed one with a better
    # claim (higher priority, or the same and older) that waited in both.
    passed = 0
    for before, after in itertools.pairwise(samples):
        admitted = before.queued.keys() - after.queued.keys()
        still = before.queued.keys() & after.queued.keys()
        for a in admitted:
            for b in still:
                assert before.queued[b] > before.queued[a], (a, b, before.queued)
                passed += 1
    assert passed > 0  # the burst did make queues wait behind others
