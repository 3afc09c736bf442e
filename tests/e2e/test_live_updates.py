"""The WebSocket (docs/api.md) and the metrics (docs/operations.md), observed from outside the real
service."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from websockets.sync.client import connect

from tests.support.service import Service

RANK = {"pending": 0, "launching": 1, "started": 2, "loading": 3}


def collect(url: str, sink: list[dict[str, Any]], stop: threading.Event) -> None:
    with connect(url) as socket:
        while not stop.is_set():
            try:
                sink.append(orjson.loads(socket.recv(timeout=0.2)))
            except TimeoutError:
                continue


def test_websocket_delivers_ordered_updates_and_filters_by_queue(
    service: Service, single: dict[str, Any]
) -> None:
    ws = service.url.replace("http", "ws") + "/ws/topic"
    everything: list[dict[str, Any]] = []
    stop = threading.Event()
    reader = threading.Thread(target=collect, args=(ws, everything, stop))
    reader.start()
    time.sleep(0.5)
    first = service.start_queue(single)
    only_first: list[dict[str, Any]] = []
    filtered = threading.Thread(target=collect, args=(f"{ws}?queue_id={first}", only_first, stop))
    filtered.start()
    second = service.start_queue({**single, "symbol": "ETHUSDT"})
    service.wait_status(first, {"finished"}, 30)
    service.wait_status(second, {"finished"}, 30)
    time.sleep(0.5)
    stop.set()
    reader.join()
    filtered.join()

    for queue_id in (first, second):
        steps = [
            u for u in everything if u["queue_id"] == queue_id and u["event"] == "step.updated"
        ]
        ranks = [RANK.get(u["status"], 4) for u in steps]
        assert ranks == sorted(ranks), steps
        records = [u["records_written"] for u in steps]
        assert records == sorted(records)
        final = [
            u for u in everything if u["queue_id"] == queue_id and u["event"] == "queue.updated"
        ]
        assert final[-1]["status"] == "finished"
        assert final[-1]["text"].startswith(f"Queue {queue_id} → finished (")
    assert only_first and {u["queue_id"] for u in only_first} == {first}


def test_metrics_move_and_are_labelled_by_route_template(
    service: Service, single: dict[str, Any]
) -> None:
    queue_id = service.start_queue(single)
    service.wait_status(queue_id, {"finished"}, 30)
    service.get(f"/queues/{queue_id}")
    text = service.get("/metrics").text
    for family in (
        "queue_manager_queues_started_total 1.0",
        'queue_manager_queues{status="finished"} 1.0',
        'queue_manager_jobs_launched_total{result="ok",target="loader-producer"} 1.0',
        'queue_manager_telemetry_events_total{source="queue-events",status="finished"} 1.0',
        "queue_manager_telemetry_lag_seconds_count",
        "queue_manager_websocket_clients",
        "queue_manager_telemetry_rejected_total",
    ):
        assert family in text, family
    assert 'route="/queues/{queue_id}"' in text
    assert queue_id not in text
