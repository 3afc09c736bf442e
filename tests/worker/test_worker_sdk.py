"""The Worker in-process, over the real HTTP transport, against a real HTTP service."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from queue_manager.worker import HttpTransport, Outcome, Worker
from tests.support.waiting import wait_until_async

BODY_KEYS = {
    "event", "queue_id", "producer", "records_written", "last_loaded_timestamp", "finished",
    "message", "error_message", "sent_at", "symbol", "type",
}  # fmt: skip


def environ(url, token, **extra):
    queue_id = str(uuid.uuid4())
    return {
        "QUEUE_ID": queue_id,
        "SYMBOL": "ETHUSDT",
        "TYPE": "api_trades",
        "TIME_RANGE": "2024-06-01:2024-06-01",
        "TELEMETRY_PRODUCER_ID": f"loader-producer-{queue_id}-1",
        "QM_URL": url,
        "QM_WORKER_TOKEN": token,
        **extra,
    }


def make_worker(service, **options):
    options.setdefault("handle_signals", False)
    return Worker.from_env(environ(service.url, service.token), **options)


def delivered(service, event):
    """A condition: `event` has reached the (fake) service."""
    return lambda: event in service.events()


async def test_reports_in_the_workers_shape(service):
    async with make_worker(service) as worker:
        assert isinstance(worker.transport, HttpTransport)
        assert await worker.started("warming up")
        stamp = datetime(2024, 6, 1, 12, tzinfo=UTC)
        await worker.loading(records_written=42, last_loaded_timestamp=stamp, message="42 rows")
        await wait_until_async(delivered(service, "loading"), 10, what="the loading report")
        assert await worker.finished(records_written=50)

    started, loading, finished = service.telemetry()
    assert set(started) == BODY_KEYS
    assert started["event"] == "started" and started["message"] == "warming up"
    assert started["queue_id"] == worker.env.queue_id
    assert started["producer"] == worker.env.telemetry_producer_id
    assert (started["symbol"], started["type"]) == ("ETHUSDT", "api_trades")
    assert loading["records_written"] == 42
    assert loading["last_loaded_timestamp"] == "2024-06-01T12:00:00+00:00"
    assert loading["finished"] is False and loading["message"] == "42 rows"
    assert finished["finished"] is True and finished["records_written"] == 50
    assert finished["last_loaded_timestamp"] == "2024-06-01T12:00:00+00:00"
    sent_at = datetime.fromisoformat(finished["sent_at"])
    assert abs(datetime.now(UTC) - sent_at) < timedelta(seconds=30)
    assert worker.outcome is Outcome.FINISHED


async def test_progress_is_coalesced_while_the_service_fails(service):
    service.telemetry_default = 503
    async with make_worker(service) as worker:
        for n in range(1, 11):
            await worker.loading(records_written=n * 10)
            await asyncio.sleep(0.05)  # reports spread over the outage: the scenario, not a wait
        attempts = len(service.telemetry(accepted_only=False))
        assert 1 <= attempts < 10
        service.telemetry_default = 200
        await wait_until_async(
            delivered(service, "loading"), 10, what="the coalesced loading report"
        )
        # A later report on the same ordered stream: whatever the worker would still have sent
        # of the failed ones (nothing) came before it.
        await worker.loading(records_written=110)
        await wait_until_async(
            lambda: service.telemetry()[-1]["records_written"] == 110,
            10,
            what="the next loading report (110)",
        )
        assert [body["records_written"] for body in service.telemetry()] == [100, 110]
        await worker.finished()
    assert service.events() == ["loading", "loading", "finished"]


async def test_a_loading_call_never_waits_for_the_service(service):
    service.telemetry_default = 503
    async with make_worker(service, delivery_deadline=0.5) as worker:
        began = time.monotonic()
        for n in range(100):
            await worker.loading(records_written=n)
        assert time.monotonic() - began < 0.5
        service.telemetry_default = 200


async def test_status_is_retried_on_429_and_5xx(service):
    service.telemetry_answers = [429, 503, 500]
    async with make_worker(service) as worker:
        assert await worker.started()
        attempts = [body["event"] for body in service.telemetry(accepted_only=False)]
        assert attempts == ["started"] * 4
        assert service.events() == ["started"]


async def test_a_client_error_is_not_retried(service):
    service.telemetry_answers = [422]
    async with make_worker(service) as worker:
        began = time.monotonic()
        assert not await worker.started()
        assert time.monotonic() - began < 1.0
    assert [body["event"] for body in service.telemetry(accepted_only=False)] == [
        "started",
        "finished",
    ]


async def test_status_delivery_gives_up_after_the_deadline(service_factory):
    down = service_factory()  # never started
    async with make_worker(down, delivery_deadline=1.0) as worker:
        began = time.monotonic()
        assert not await worker.started()
        assert 1.0 <= time.monotonic() - began < 4.0


async def test_a_stop_command_sets_stop_requested(service):
    async with make_worker(service) as worker:
        await worker.started()
        assert not await worker.wait_stop(0.2)
        service.request_stop(worker.env.queue_id)
        assert await worker.wait_stop(3.0)
        assert worker.stop_reason == "stop command"
    # Leaving the block after a stop reports the interruption by itself.
    assert service.events() == ["started", "interrupted"]
    assert service.telemetry()[-1]["message"] == "stopped by stop command"
    assert worker.outcome is Outcome.INTERRUPTED


async def test_a_refused_credential_stops_the_worker(service):
    """The service refuses a run's credential once the run is over (its step ended, or a retry
    replaced it): the worker has nothing left to do there and stops."""
    async with make_worker(service) as worker:
        await worker.started()
        assert not await worker.wait_stop(0.2)
        service.end_run(worker.env.queue_id)
        assert await worker.wait_stop(3.0)
        assert worker.stop_reason == "stop command"
    assert worker.outcome is Outcome.INTERRUPTED


async def test_a_ping_is_answered_with_pong(service):
    async with make_worker(service) as worker:
        service.request_ping(worker.env.queue_id)
        await wait_until_async(delivered(service, "pong"), 10, what="the pong")
        await worker.finished()


async def test_an_exception_in_the_block_reports_error(service, tmp_path):
    exit_file = tmp_path / "exit.json"
    env = environ(service.url, service.token, QM_EXIT_FILE=str(exit_file))
    with pytest.raises(RuntimeError):
        async with Worker.from_env(env, handle_signals=False) as worker:
            await worker.started()
            await worker.loading(records_written=7)
            raise RuntimeError("disk full")
    assert service.telemetry()[-1]["event"] == "error"
    assert service.telemetry()[-1]["error_message"] == "RuntimeError: disk full"
    assert service.telemetry()[-1]["records_written"] == 7
    assert json.loads(exit_file.read_text()) == {
        "outcome": "error",
        "queue_id": env["QUEUE_ID"],
        "producer": env["TELEMETRY_PRODUCER_ID"],
        "records_written": 7,
        "error_message": "RuntimeError: disk full",
    }


async def test_a_clean_exit_without_a_report_is_finished(service, tmp_path):
    exit_file = tmp_path / "exit.json"
    env = environ(service.url, service.token, QM_EXIT_FILE=str(exit_file))
    async with Worker.from_env(env, handle_signals=False) as worker:
        await worker.started()
    assert service.events() == ["started", "finished"]
    assert json.loads(exit_file.read_text())["outcome"] == "finished"


async def test_terminal_status_is_final_and_numbers_only_grow(service):
    async with make_worker(service) as worker:
        await worker.loading(records_written=100, last_loaded_timestamp=datetime(2024, 6, 1, 9))
        await worker.loading(records_written=50, last_loaded_timestamp=datetime(2024, 6, 1, 8))
        assert await worker.finished()
        await worker.loading(records_written=500)
        assert not await worker.error("too late")
        assert not await worker.interrupted()
    final = service.telemetry()[-1]
    assert final["event"] == "finished"
    assert final["records_written"] == 100
    assert final["last_loaded_timestamp"] == "2024-06-01T09:00:00+00:00"
    assert "error" not in service.events()


@pytest.mark.parametrize(("code", "event"), [(0, "finished"), (None, "finished"), (3, "error")])
async def test_sys_exit_in_the_block_reports_by_its_code(service, code, event):
    with pytest.raises(SystemExit):
        async with make_worker(service) as worker:
            await worker.started()
            raise SystemExit(code)
    assert service.events() == ["started", event]
