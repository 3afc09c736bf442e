"""docs/api.md "Step logs": the reference worker writes progress lines as a loader does; the
service reads them back parsed (time, level, message, the rest as fields), keeps a line that is
no JSON (level unknown), filters by minimum level and text, and sends the raw log to download.
A bad filter is a 422 naming it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.service import Service

#: fails after two pages: info lines, then an error line
FAILING: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "type": "api",
    "time_range": "2024-01-01:2024-01-03",
    "simulate": {"fail_after": 2, "http_status": 400},
}
RAW_LINE = "Traceback (most recent call last): not JSON"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A real service: its workers are processes that report to it over HTTP."""
    svc = Service(
        tmp_path_factory.mktemp("logs") / "svc", env={"LOCAL_WORKER_ARGS": "--tick 0.1"}
    ).start()
    yield svc
    svc.stop()
    svc.kill_workers()


def failed_queue(service: Service) -> str:
    queue_id = service.start_queue(FAILING)
    state = service.wait_status(queue_id, {"error"}, 30)
    job = state["steps"][0]["job_name"]
    with open(service.data_dir / "jobs" / f"{job}.log", "a") as log:
        log.write(RAW_LINE + "\n")
    return queue_id


def parsed(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in answer.text.splitlines()]


def test_lines_are_parsed_filtered_and_downloadable(service: Service) -> None:
    queue_id = failed_queue(service)
    path = f"/queues/{queue_id}/steps/0/logs"

    lines = parsed(service.get(path, params={"format": "json"}))
    messages = [line["message"] for line in lines]
    assert "job started" in messages and messages.count("page fetched") == 2
    page = next(line for line in lines if line["message"] == "page fetched")
    assert page["level"] == "info" and page["time"]
    assert page["fields"]["page"] == 1 and page["fields"]["records"] > 0
    assert page["fields"]["queue_id"] == queue_id
    assert "event" not in page["fields"] and "level" not in page["fields"]
    assert json.loads(page["raw"])["event"] == "page fetched"
    failure = next(line for line in lines if line["level"] == "error")
    assert "400" in failure["message"]
    raw = lines[-1]
    assert (raw["level"], raw["message"], raw["fields"]) == (None, RAW_LINE, {})

    errors = parsed(service.get(path, params={"format": "json", "level": "error"}))
    assert [line["level"] for line in errors] == [*(["error"] * (len(errors) - 1)), None]
    assert len(errors) >= 2 and errors[-1]["message"] == RAW_LINE
    warnings_up = parsed(service.get(path, params={"format": "json", "level": "warning"}))
    assert all(line["level"] in ("warning", "error", "critical", None) for line in warnings_up)

    grepped = service.get(path, params={"grep": "PAGE FETCHED"})
    assert grepped.status_code == 200 and grepped.headers["content-type"].startswith("text/plain")
    kept = grepped.text.splitlines()
    assert len(kept) == 2 and all(json.loads(k)["event"] == "page fetched" for k in kept)

    whole = service.get(path, params={"download": "true"})
    assert whole.status_code == 200
    assert whole.headers["content-disposition"] == (
        f'attachment; filename="{queue_id[:8]}-step0.log"'
    )
    assert whole.text.splitlines() == [line["raw"] for line in lines]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"level": "loud"}, "level"),
        ({"format": "xml"}, "format"),
        ({"grep": ""}, "grep"),
    ],
)
def test_a_bad_log_filter_is_a_422_naming_it(
    service: Service, params: dict[str, str], field: str
) -> None:
    queue_id = service.start_queue(FAILING)
    answer = service.get(f"/queues/{queue_id}/steps/0/logs", params=params)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["data"]["errors"]
    assert [e["field"] for e in errors] == [field]
    if field == "level":
        assert "'warning'" in errors[0]["message"] and "'error'" in errors[0]["message"]
