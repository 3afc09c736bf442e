"""`queue-manager serve` start-up and shutdown, and the client without a service."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.cli.helpers import free_port, run_cli, start_server


def test_a_bad_setting_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    done = run_cli(
        "serve",
        env={"STOP_GRACE_SECONDS": "abc", "DATA_DIR": str(tmp_path), "PORT": str(free_port())},
        cwd=tmp_path,
        timeout=30,
    )

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "STOP_GRACE_SECONDS" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("backend", "missing"),
    [
        ({"BUS_BACKEND": "kafka"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"STORE_BACKEND": "arango"}, "ARANGO_URL"),
    ],
)
def test_a_backend_without_its_setting_exits_2_with_one_line_naming_it(
    tmp_path: Path, backend: dict[str, str], missing: str
) -> None:
    env = {**backend, "DATA_DIR": str(tmp_path), "PORT": str(free_port())}
    done = run_cli("serve", env=env, cwd=tmp_path, timeout=30)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert missing in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_serve_runs_the_api_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        live = httpx.get(f"{server.url}/health/live", timeout=5)
        assert live.status_code == 200
        assert live.json()["status"] == "success"
        began = time.monotonic()
        code = server.terminate(timeout=20)
    finally:
        server.terminate()
        server.kill_workers()

    assert code == 0, server.log_tail()
    assert time.monotonic() - began < 15
    assert "Traceback" not in server.log_tail(200)


def test_serve_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        server.proc.send_signal(signal.SIGINT)
        code = server.proc.wait(20)
    finally:
        server.terminate()

    assert code == 0, server.log_tail()


def test_serve_flags_override_the_environment(tmp_path: Path) -> None:
    port = free_port()
    # PORT=1 and HOST=a.invalid would both fail: the flags win.
    server = start_server(
        tmp_path, "--host", "127.0.0.1", "--port", str(port), port=port, PORT="1", HOST="a.invalid"
    )
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5).status_code == 200
    finally:
        assert server.terminate() == 0, server.log_tail()
        server.kill_workers()


def test_serve_rejects_an_impossible_port(tmp_path: Path) -> None:
    done = run_cli("serve", "--port", "70000", cwd=tmp_path, timeout=30)
    assert done.returncode == 2  # a usage error, before anything starts
    assert "--port" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_refused_connection_is_one_clear_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    for args in (("list",), ("show", "x"), ("stop", "x"), ("watch", "x"), ("watch",)):
        done = run_cli(*args, api_url=url, timeout=30)
        assert done.returncode == 1, args
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, done.stderr
        assert "connection refused" in errors[0]
        assert url in errors[0]
        assert "Traceback" not in done.stderr


def test_api_url_option_and_variable_are_checked(tmp_path: Path) -> None:
    done = run_cli("--api-url", "ftp://example", "list", timeout=30)
    assert done.returncode == 2
    assert "--api-url" in done.stderr


def _gauge(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_serve_closes_a_ws_reader_that_reads_nothing_for_ws_idle_seconds(tmp_path: Path) -> None:
    """`serve` pings every socket; one that reads nothing (so answers no ping) is closed within
    about twice WS_IDLE_SECONDS, while the others go on."""
    server = start_server(
        tmp_path, WS_IDLE_SECONDS="1", QM_WORKER_DURATION="6", QM_WORKER_TICK="0.02"
    )
    ws = server.url.replace("http", "ws") + "/ws/topic?batch=1"
    body = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-03"}
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        # max_queue=1: once one frame waits unread, the client stops reading its socket
        with connect(ws, sock=sock, max_queue=1) as stuck, connect(ws) as reader:
            for _ in range(3):
                httpx.post(f"{server.url}/queues/start", json=body, timeout=10).raise_for_status()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                reader.recv(timeout=5)  # the reading one keeps up
                if _gauge(server.url, "queue_manager_websocket_clients") == 1:
                    break
            assert _gauge(server.url, "queue_manager_websocket_clients") == 1
            assert reader.recv(timeout=5)  # still served
            with pytest.raises(ConnectionClosed):
                while True:
                    stuck.recv(timeout=10)
    finally:
        server.terminate()
        server.kill_workers()
