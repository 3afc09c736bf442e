"""docs/operations.md "Rate-limit groups" across replicas (issue 30, acceptance 2): two replicas
sharing one store over the real broker, twenty queues of the exchange group, one answered HTTP
429 with a Retry-After. The breaker opens once (one history event), no step of the group
launches while it is open on either replica, the held queues are released spread over time,
all twenty finish, and no attempt is launched twice."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.bus.conftest import platform_worker_env
from tests.support.history import history_of
from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service, wait_for

QUEUES = 20
#: queues of the group launched before the breaker opens: they run on
EARLY = 4
RETRY_AFTER = 5
RELEASE_PER_SECOND = 20
RANGE = "2024-01-01:2024-01-03"


def _body(symbol: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "type": "api", "time_range": RANGE, **extra}


RATE_LIMITED = _body(
    "BTCUSDT",
    simulate={"fail_after": 2, "http_status": 429, "retry_after": RETRY_AFTER},
    retry={"limit": 2, "on": ["rate_limited"]},
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _exchange(service: Service) -> dict[str, Any]:
    answer = service.get("/rate-limits")
    assert answer.status_code == 200, answer.text
    groups: dict[str, dict[str, Any]] = {g["group"]: g for g in answer.json()["data"]}
    return groups["exchange"]


def _step(service: Service, queue_id: str) -> dict[str, Any]:
    step: dict[str, Any] = service.queue(queue_id)["steps"][0]
    return step


def _started_workers(service: Service) -> list[str]:
    """The job of each `worker started` line of the replica's log."""
    jobs = []
    for line in service.log_path.read_text(errors="replace").splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "worker started":
            jobs.append(str(entry["job"]))
    return jobs


def test_one_429_on_two_replicas_opens_the_group_once_and_every_queue_finishes(
    tmp_path: Path, running_kafka_broker: KafkaBroker
) -> None:
    env = platform_worker_env(
        tmp_path,
        running_kafka_broker,
        LOCAL_WORKER_ARGS="--duration 2 --tick 0.25",
        RATE_LIMIT_RELEASE_PER_SECOND=str(RELEASE_PER_SECOND),
        RATE_LIMIT_POLL_SECONDS="0.5",
    )
    del env["LOCAL_WORKER_COMMAND"]  # the reference worker: it understands `simulate`
    shared = tmp_path / "shared"
    replicas = [Service(shared, env=env).start(), Service(shared, env=env).start()]
    try:
        # Some queues of the group launched before the breaker opens: they run on.
        early = [replicas[i % 2].start_queue(_body(f"E{i}USDT")) for i in range(EARLY)]
        for i, queue_id in enumerate(early):
            wait_for(
                lambda q=queue_id, i=i: _step(replicas[i % 2], q)["launched_at"],
                30,
                what=f"early queue {queue_id} to launch",
            )
        first = replicas[0].start_queue(RATE_LIMITED)
        # Seen from the other replica: the breaker is in the shared store.
        opened = wait_for(
            lambda: (g := _exchange(replicas[1]))["open"] and g, 30, what="the exchange open"
        )
        assert opened["queue_id"] == first and "429" in opened["reason"], opened
        until, opened_at = _at(opened["until"]), _at(opened["opened_at"])

        # One queue started on each replica is held there, saying why: both hold the group.
        probes = [replicas[i].start_queue(_body(f"P{i}USDT")) for i in range(2)]
        for i, queue_id in enumerate(probes):
            held = wait_for(
                lambda q=queue_id, i=i: (s := _step(replicas[i], q))["waiting"] and s,
                30,
                what=f"queue {queue_id} held by replica {i}",
            )
            assert held["status"] == "pending" and held["launched_at"] is None, held
            assert held["waiting"].startswith("rate limit of group exchange open until "), held
        # The rest in a burst, half on each replica, while it is open.
        late = QUEUES - EARLY - 1 - len(probes)
        with ThreadPoolExecutor(late) as pool:
            rest = list(
                pool.map(
                    lambda i: replicas[i % 2].start_queue(_body(f"L{i}USDT")), range(late)
                )
            )
        held_ids = probes + rest
        ids = [*early, first, *held_ids]
        assert len(ids) == QUEUES

        finals = {
            q: replicas[i % 2].wait_status(q, {"finished", "error", "stopped"}, 90)
            for i, q in enumerate(ids)
        }
        assert {q: f["status"] for q, f in finals.items()} == dict.fromkeys(ids, "finished")

        # The breaker opened once: one history event, on the queue whose failure opened it.
        histories = {q: history_of(replicas[0], q) for q in ids}
        openings = [(q, e) for q, h in histories.items() for e in h if e["kind"] == "rate_limit"]
        assert len(openings) == 1, openings
        assert openings[0][0] == first and openings[0][1]["actor"] == "rate-limiter"
        closed = _exchange(replicas[0])
        assert closed["open"] is False and closed["strikes"] == 1, closed

        # No attempt of the group started while the breaker was open: each was launched before
        # it opened (and ran on) or at its closing or later.
        starts = {
            q: [_at(a["started_at"]) for a in f["steps"][0]["attempts_log"]]
            for q, f in finals.items()
        }
        for queue_id, times in starts.items():
            for at in times:
                assert at < opened_at or at >= until, (queue_id, at, opened_at, until)
        assert all(starts[q][0] < opened_at for q in [*early, first])
        assert all(starts[q][0] >= until for q in held_ids)
        retried = finals[first]["steps"][0]
        assert [a["class"] for a in retried["attempts_log"]] == ["rate_limited", None]
        assert starts[first][1] >= until
        # Released spread over time, not all at once. Each replica plans its release from the
        # held queues it reads when the breaker closes, and a queue the other replica launched
        # meanwhile shifts the rest: across replicas the pace is at most one rate per replica
        # (docs/operations.md, "Rate-limit groups").
        held_starts = sorted(starts[q][0] for q in held_ids)
        pace = RELEASE_PER_SECOND * len(replicas)
        for k, at in enumerate(held_starts):
            assert at >= until + timedelta(seconds=k / pace), (k, at, until)

        # No attempt launched twice: one launch per attempt in the history, one start of each
        # job across both replicas' logs, and one log per job in the shared jobs directory.
        jobs: list[str] = []
        for queue_id, final in finals.items():
            step = final["steps"][0]
            attempts = len(step["attempts_log"])
            assert attempts == (2 if queue_id == first else 1), (queue_id, step)
            launches = [
                e
                for e in histories[queue_id]
                if e["kind"] == "step.status" and e["to"] == "launching"
            ]
            assert len(launches) == attempts, (queue_id, launches)
            name = step["job_name"]
            jobs += [f"{name.removesuffix('-r1')}", name] if attempts == 2 else [name]
        assert len(set(jobs)) == QUEUES + 1
        started = Counter(job for svc in replicas for job in _started_workers(svc))
        assert started == Counter(jobs), started
        logs = {path.stem for path in (shared / "jobs").glob("*.log")}
        assert logs == set(jobs)
    finally:
        for svc in replicas:
            svc.stop()
        replicas[0].kill_workers()
