"""A step that heals itself (docs/pipelines.md "Retry"), with real reference workers launched by
the service: a 429 with Retry-After is retried no earlier than it says and finishes on its
second attempt; the wait is stored and survives a restart of the service, happening once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.history import assert_history_matches_state, history_of
from tests.support.service import Service, wait_for

FAST = {"STOP_GRACE_SECONDS": "2", "STEP_WATCH_SECONDS": "0.2"}


def _body(retry_after: float) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "time_range": "2024-01-01:2024-01-02",
        "type": "api",
        "retry": {"limit": 2, "backoff": {"initial": 1, "factor": 2, "max": 60, "jitter": 0}},
        "simulate": {"fail_after": 1, "http_status": 429, "retry_after": retry_after},
    }


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _retrying(service: Service, queue_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        step: dict[str, Any] = service.queue(queue_id)["steps"][0]
        return step if step["status"] == "retrying" else None

    return wait_for(check, 20, what="the step to be retrying")


def _launches(service: Service, queue_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in history_of(service, queue_id)
        if e["kind"] == "step.status" and e["to"] == "launching"
    ]


def test_a_429_with_retry_after_is_retried_after_it_and_finishes_on_attempt_two(
    tmp_path: Path,
) -> None:
    with Service(tmp_path / "svc", env=FAST) as service:
        queue_id = service.start_queue(_body(7))
        waiting = _retrying(service, queue_id)
        first = waiting["attempts_log"][0]
        assert first["class"] == "rate_limited" and "HTTP 429" in first["reason"]
        assert _at(waiting["retry_at"]) >= _at(first["ended_at"]) + timedelta(seconds=7)
        assert waiting["job_name"].endswith("-r1")  # the next attempt's job
        # The failed attempt's job is gone with its run.
        assert not (service.data_dir / "jobs" / f"{waiting['job_name'][:-3]}.json").exists()

        done = service.wait_status(queue_id, {"finished"}, 40)
        step = done["steps"][0]
        assert step["attempts"] == 2 and step["retry_at"] is None
        one, two = step["attempts_log"]
        assert (one["attempt"], two["attempt"]) == (1, 2)
        assert _at(two["started_at"]) >= _at(one["ended_at"]) + timedelta(seconds=7)
        assert two["class"] is None and two["ended_at"] is not None
        events = history_of(service, queue_id)
        assert_history_matches_state(done, events)
        assert len(_launches(service, queue_id)) == 2
        metrics = service.get("/metrics").text
        assert (
            'queue_manager_retries_total{class="rate_limited",target="loader-producer"} 1.0'
            in metrics
        )


def test_a_restart_while_a_step_waits_keeps_its_retry_which_happens_once_at_its_time(
    tmp_path: Path,
) -> None:
    service = Service(tmp_path / "svc", env=FAST).start()
    try:
        queue_id = service.start_queue(_body(8))
        waiting = _retrying(service, queue_id)
        retry_at = _at(waiting["retry_at"])
        service.stop()
        service.start()
        step = service.queue(queue_id)["steps"][0]
        answered = datetime.now(UTC)
        if answered < retry_at:  # read before its time (a restart of a busy machine may not be)
            assert step["status"] == "retrying", step
        assert step["attempts_log"][0]["retry_at"] is not None

        done = service.wait_status(queue_id, {"finished"}, 40)
        step = done["steps"][0]
        assert [a["attempt"] for a in step["attempts_log"]] == [1, 2]
        assert _at(step["attempts_log"][1]["started_at"]) >= retry_at
        assert len(_launches(service, queue_id)) == 2
        assert_history_matches_state(done, history_of(service, queue_id))
    finally:
        service.stop()
        service.kill_workers()


def test_bad_retry_input_is_a_422_naming_the_field(tmp_path: Path) -> None:
    env = {**FAST, "ALLOWED_IMAGES": "streamforge/loader-producer:2"}
    with Service(tmp_path / "svc", env=env) as service:
        body = _body(7)
        answer = service.post("/queues/start", json={**body, "retry": {"on": ["flaky"]}})
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["data"]["errors"]] == ["retry.on.0"]
        step = {
            "target": "loader-producer",
            "type": "api_candles_5m",
            "image": "streamforge/loader-producer:2",
            "simulate": {"fail_after": 1},
        }
        answer = service.post(
            "/queues/start",
            json={"symbol": "BTCUSDT", "time_range": "2024-01-01:2024-01-02", "requests": [step]},
        )
        assert answer.status_code == 422
        assert [e["field"] for e in answer.json()["data"]["errors"]] == ["requests.0.simulate"]
        assert service.get("/queues").json()["data"] == []
