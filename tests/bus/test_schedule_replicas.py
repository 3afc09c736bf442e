"""docs/schedules.md: exactly one run per tick across replicas and restarts. Two replicas on one
store and the real Kafka broker race for every tick of a per-minute schedule; later both are
down for several ticks and one comes back: with catchup=latest it starts exactly one catch-up
run and records the other ticks as missed. Every replica runs on the same clock, 20 times
faster than real time (given to its app factory, tests/support/clocks.py), so a minute is three
seconds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bus.conftest import platform_worker_env
from tests.support.clocks import FAST_APP, FastClock
from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service, wait_for

SCALE = 20
TICK_SECONDS = 60 / SCALE


def decided(service: Service) -> list[dict[str, Any]]:
    answer = service.get("/schedules/minutely/runs", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return sorted(answer.json()["data"], key=lambda r: r["scheduled_for"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_tick_runs_once_across_replicas_and_a_restart_catches_up_once(
    tmp_path: Path, running_kafka_broker: KafkaBroker
) -> None:
    clock = FastClock(SCALE, datetime.now(UTC).replace(microsecond=0))
    env = platform_worker_env(
        tmp_path,
        running_kafka_broker,
        LOCAL_WORKER_ARGS="1",
        SCHEDULE_POLL_SECONDS="0.5",
        **clock.env(),
    )
    shared = tmp_path / "shared"
    replicas = [Service(shared, env=env, app=FAST_APP).start() for _ in range(2)]
    try:
        created = replicas[0].post(
            "/schedules",
            json={
                "name": "minutely",
                "cron": "* * * * *",
                "symbols": ["BTCUSDT"],
                "template": {"type": "api", "window": "1d"},
                "catchup": "latest",
            },
        )
        assert created.status_code == 201, created.text
        # The other replica learns of the new schedule within half a second; both race then.
        wait_for(lambda: len(decided(replicas[1])) >= 3 or None, 60)
    finally:
        for svc in replicas:
            svc.stop()
    # What the replicas stamp (decided_at) is their clock's time.
    down_since = clock.now()
    # Both down for more than two ticks, then one comes back.
    wait_for(lambda: clock.now() - down_since > timedelta(minutes=3) or None, 30, every=0.1)
    back = Service(shared, env=env, app=FAST_APP).start()
    try:
        # The missed ticks are decided one by one before the catch-up run: wait for the latter.
        wait_for(
            lambda: (
                any(
                    at(r["decided_at"]) > down_since and r["outcome"] != "missed"
                    for r in decided(back)
                )
                or None
            ),
            30,
        )
        runs = decided(back)
        listed = back.get("/queues", params={"limit": 1000}).json()["data"]
    finally:
        back.stop()
        replicas[0].kill_workers()
    up = [r for r in runs if at(r["decided_at"]) < down_since]
    assert len(up) >= 3
    assert [r["outcome"] for r in up] == ["started"] * len(up)
    ticks = [at(r["scheduled_for"]) for r in up]
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(ticks))
    queue_ids = [q for r in runs for q in r["queue_ids"]]
    assert len(queue_ids) == len(set(queue_ids))  # one queue per started tick, none twice
    runs_by_tick: dict[str, int] = {}
    for queue in listed:
        assert queue["schedule"] == "minutely"
        runs_by_tick[queue["scheduled_for"]] = runs_by_tick.get(queue["scheduled_for"], 0) + 1
    assert set(runs_by_tick.values()) == {1}  # no tick ever ran twice
    later = runs[len(up) :]
    # The ticks nobody was up for, up to the one catch-up run: the first started after the
    # restart (which tick that is depends on how long the restart took, so it is not computed).
    catch_up = next(i for i, r in enumerate(later) if r["outcome"] == "started")
    outage = later[: catch_up + 1]
    assert len(outage) >= 3, outage
    assert [r["outcome"] for r in outage] == ["missed"] * (len(outage) - 1) + ["started"]
    assert all("catchup latest" in r["reason"] for r in outage[:-1])
