"""The WebSocket (docs/api.md) and the metrics (docs/operations.md), observed from outside the real
service."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.sync.client import connect

from tests.support.service import Service, wait_for
from tests.support.waiting import wait_until

RANK = {"pending": 0, "launching": 1, "started": 2, "loading": 3}


def subscribed(service: Service, count: int) -> None:
    """Wait until the service counts `count` open WebSockets: each is registered with the hub and
    gets every update published from then on."""
    wait_for(
        lambda: metric(service, "queue_manager_websocket_clients") >= count,
        10,
        what=f"the service to count {count} WebSocket subscription(s)",
    )


def has_finished(updates: list[dict[str, Any]], queue_ids: set[str]) -> bool:
    """`updates` hold the `queue.updated` → finished of every queue in `queue_ids`."""
    done = {
        u["queue_id"]
        for u in list(updates)  # a copy: a reader thread appends meanwhile
        if u["event"] == "queue.updated" and u["status"] == "finished"
    }
    return queue_ids <= done


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
    subscribed(service, 1)
    first = service.start_queue(single)
    only_first: list[dict[str, Any]] = []
    filtered = threading.Thread(target=collect, args=(f"{ws}?queue_id={first}", only_first, stop))
    filtered.start()
    subscribed(service, 2)
    second = service.start_queue({**single, "symbol": "ETHUSDT"})
    service.wait_status(first, {"finished"}, 30)
    service.wait_status(second, {"finished"}, 30)
    wait_until(
        lambda: has_finished(everything, {first, second}) and has_finished(only_first, {first}),
        10,
        what="both readers to receive the queues' final `queue.updated`",
    )
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


# -- conflation, batches and the idle rule (docs/api.md, "Live updates") -----------------------

#: workers that report every 20 ms: enough updates to back up a socket that is not read
CHATTY = {"LOCAL_WORKER_ARGS": "--duration 4 --tick 0.02", "STOP_GRACE_SECONDS": "3"}


def chatty_service(tmp_path: Path) -> Service:
    return Service(tmp_path / "svc", env=CHATTY).start()


def updates_of(raw: str | bytes) -> list[dict[str, Any]]:
    value = orjson.loads(raw)
    frame = value if isinstance(value, list) else [value]
    return [u for u in frame if u.get("event") != "heartbeat"]


def tiny_window(url: str) -> socket.socket:
    """A client socket with a 4 KiB receive buffer, so a reader that pauses backs the server up
    after a few frames instead of after megabytes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    sock.connect((host, int(port)))
    return sock


def metric(service: Service, sample: str) -> float:
    for line in service.get("/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def test_a_slow_reader_stays_connected_and_ends_with_every_terminal_status(
    tmp_path: Path, single: dict[str, Any]
) -> None:
    service = chatty_service(tmp_path)
    try:
        ws = service.url.replace("http", "ws") + "/ws/topic?batch=1"
        with connect(ws, sock=tiny_window(ws), max_queue=1) as slow:
            queues = [service.start_queue({**single, "symbol": f"SYM{i}USDT"}) for i in range(6)]
            for q in queues:  # it reads nothing while the queues run and finish
                service.wait_status(q, {"finished"}, 30)
            latest: dict[tuple[Any, Any, Any], dict[str, Any]] = {}

            def read_all_finished() -> bool:
                for u in updates_of(slow.recv(timeout=10)):
                    latest[(u["event"], u["queue_id"], u.get("step"))] = u
                return all(
                    latest.get(("queue.updated", q, None), {}).get("status") == "finished"
                    for q in queues
                )

            wait_until(
                read_all_finished,
                30,
                every=0,
                what="the slow reader to catch up to every queue's final `queue.updated`",
            )
        for q in queues:
            assert service.queue(q)["status"] == "finished"
            assert latest[("queue.updated", q, None)]["status"] == "finished"
            assert latest[("step.updated", q, 0)]["status"] == "finished"
            assert latest[("queue.updated", q, None)]["text"].startswith(f"Queue {q} → finished")
        # it was sent far fewer updates than were published: the intermediate ones were skipped
        assert metric(service, "queue_manager_websocket_updates_conflated_total") > 0
        assert metric(service, 'queue_manager_websocket_disconnected_total{reason="idle"}') == 0
    finally:
        service.stop()
        service.kill_workers()


def test_batch_frames_are_arrays_holding_the_same_updates(
    service: Service, single: dict[str, Any]
) -> None:
    ws = service.url.replace("http", "ws") + "/ws/topic"
    plain: list[str] = []
    batched: list[str] = []
    stop = threading.Event()

    def record(url: str, sink: list[str]) -> None:
        with connect(url) as sock:
            while not stop.is_set():
                try:
                    sink.append(str(sock.recv(timeout=0.2)))
                except TimeoutError:
                    continue

    readers = [threading.Thread(target=record, args=(ws, plain)),
               threading.Thread(target=record, args=(ws + "?batch=1", batched))]
    for reader in readers:
        reader.start()
    subscribed(service, 2)
    queue_id = service.start_queue(single)
    service.wait_status(queue_id, {"finished"}, 30)
    wait_until(
        lambda: all(
            has_finished([u for m in list(sink) for u in updates_of(m)], {queue_id})
            for sink in (plain, batched)
        ),
        10,
        what="both readers to receive the queue's final `queue.updated`",
    )
    stop.set()
    for reader in readers:
        reader.join()
    assert all(isinstance(orjson.loads(m), dict) for m in plain)
    assert batched and all(isinstance(orjson.loads(m), list) for m in batched)
    flat_plain = [u for m in plain for u in updates_of(m)]
    flat_batched = [u for m in batched for u in updates_of(m)]
    assert flat_batched == flat_plain
    assert flat_plain[-1]["event"] == "queue.updated" and flat_plain[-1]["status"] == "finished"


def test_with_acks_a_reader_is_sent_nothing_until_it_answers_then_the_latest_state(
    service: Service, single: dict[str, Any]
) -> None:
    ws = service.url.replace("http", "ws") + "/ws/topic?batch=1&ack=1"
    conflated_before = metric(service, "queue_manager_websocket_updates_conflated_total")
    with connect(ws) as reader:
        queue_id = service.start_queue(single)
        reader.recv(timeout=10)  # one frame, left unanswered while the queue runs and finishes
        service.wait_status(queue_id, {"finished"}, 30)
        # The answer to a ping comes after every frame the server sent before it, on the same
        # ordered stream: once it is in, nothing sent during the whole run can still be on its way.
        wait_until(reader.ping(), 10, what="the pong to a ping sent once the queue finished")
        with pytest.raises(TimeoutError):
            reader.recv(timeout=0)
        latest: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
        while latest.get(("queue.updated", queue_id, None), {}).get("status") != "finished":
            reader.send("ack")
            for u in updates_of(reader.recv(timeout=10)):
                latest[(u["event"], u["queue_id"], u.get("step"))] = u
    assert latest[("step.updated", queue_id, 0)]["status"] == "finished"
    # what changed while the frame was unanswered reached it as its latest values only
    assert metric(service, "queue_manager_websocket_updates_conflated_total") > conflated_before
