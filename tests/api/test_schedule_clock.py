"""One clock (issue 28): the app goes by the clock its factory is given, with no setting for it.
Here the clock stands still unless the test moves it: real time passing starts nothing, and
each minute the test moves it on decides exactly that minute's tick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from queue_manager.app import create_app
from queue_manager.settings import Settings
from tests.support.clocks import ManualClock
from tests.support.waiting import wait_until_async

#: half a minute before a whole one: the next tick is 30 s of the clock away
START = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, ManualClock]]:
    clock = ManualClock(START)
    settings = Settings(
        data_dir=tmp_path,
        local_worker_command="true",  # a job that ends at once: no worker outlives the test
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, clock=clock)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as http:
            yield http, clock


async def test_schedule_ticks_come_as_the_injected_clock_moves(
    app: tuple[httpx.AsyncClient, ManualClock],
) -> None:
    http, clock = app
    body = {
        "name": "minutely",
        "cron": "* * * * *",
        "symbols": ["BTCUSDT"],
        "template": {"type": "api", "window": "1d"},
    }
    created = await http.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["next_run"] == "2030-01-01T00:01:00+00:00"

    async def runs() -> list[dict[str, Any]]:
        answer = await http.get("/schedules/minutely/runs")
        assert answer.status_code == 200, answer.text
        return list(reversed(answer.json()["data"]))  # oldest first

    async def decided(count: int) -> list[dict[str, Any]] | None:
        found = await runs()
        return found if len(found) == count else None

    async def scheduler_asleep() -> bool:
        return clock.sleepers == 1

    # Having looked at its schedules, the scheduler waits for 00:01 of its clock, which real
    # time does not bring.
    await wait_until_async(scheduler_asleep, 10, what="the scheduler to wait for the next tick")
    assert await runs() == []

    for minute, step in ((1, timedelta(seconds=30)), (2, timedelta(minutes=1))):
        clock.advance(step)
        ticks: list[dict[str, Any]] = await wait_until_async(
            lambda n=minute: decided(n), 10, what=f"the tick of 00:0{minute}"
        )
        tick = ticks[-1]
        assert tick["scheduled_for"] == f"2030-01-01T00:0{minute}:00Z", ticks
        assert (tick["outcome"], tick["reason"]) == ("started", "on time")
        # stamped by the same clock as the tick it decided
        assert tick["decided_at"] == f"2030-01-01T00:0{minute}:00Z"
        (queue_id,) = tick["queue_ids"]
        queue = (await http.get(f"/queues/{queue_id}")).json()["data"]
        assert queue["created_at"] == tick["decided_at"]
