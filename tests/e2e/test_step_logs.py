"""A step's log over the API and the CLI: tail, follow until the step ends, clear refusals."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.cli.helpers import run_cli
from tests.support.service import Service, wait_for


def test_tail_and_follow_a_running_local_step(service: Service, single: dict[str, Any]) -> None:
    queue_id = service.start_queue(single)
    path = f"/queues/{queue_id}/steps/0/logs"
    wait_for(lambda: service.get(path).status_code == 200 and service.get(path).text, 20)
    assert service.get(path, params={"tail": 1}).text.count("\n") == 1
    began = time.monotonic()
    with httpx.stream("GET", service.url + path, params={"follow": "true"}, timeout=30) as live:
        assert live.status_code == 200
        assert live.headers["content-type"].startswith("text/plain")
        followed = b"".join(live.iter_bytes())
    # The stream ended by itself once the worker had, and holds all it wrote.
    assert service.queue(queue_id)["steps"][0]["status"] == "finished"
    assert time.monotonic() - began < 30
    assert followed == service.get(path).content
    cli = run_cli("logs", queue_id, "0", "--tail", "2", api_url=service.url)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.encode() == b"".join(followed.splitlines(keepends=True)[-2:])


def test_steps_without_a_log_say_why(service: Service, historical: dict[str, Any]) -> None:
    queue_id = service.start_queue(historical)
    waiting = service.get(f"/queues/{queue_id}/steps/5/logs")
    assert waiting.status_code == 404
    assert waiting.json()["message"] == "step 5 (gnn-trainer) has not started: no log yet"
    missing = service.get(f"/queues/{queue_id}/steps/9/logs")
    assert missing.status_code == 404
    assert missing.json()["message"] == f"Queue {queue_id} has no step 9 (steps 0..5)"
    cli = run_cli("logs", queue_id, "5", api_url=service.url)
    assert cli.returncode == 1
    assert cli.stderr.strip() == "error: step 5 (gnn-trainer) has not started: no log yet"
