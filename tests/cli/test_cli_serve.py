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
from tests.support.waiting import wait_until


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


_KUBECONFIG_NOT_YAML = "apiVersion: v1\nclusters: [\n  - name: x\n"
_NOT_A_CA = "this is no certificate\n"

#: (environment, the variable the one line must name, what it must say is allowed); `{tmp}` is
#: the test's directory
BAD_SETTINGS = {
    "kafka without servers": ({"BUS_BACKEND": "kafka"}, "KAFKA_BOOTSTRAP_SERVERS", "required"),
    "arango without url": ({"STORE_BACKEND": "arango"}, "ARANGO_URL", "required"),
    "malformed json": ({"ALLOWED_IMAGES": '["a:1", '}, "ALLOWED_IMAGES", "not valid JSON"),
    "malformed json object": (
        {"MAX_RUNNING_JOBS": '{"gnn-trainer": }'},
        "MAX_RUNNING_JOBS",
        "not valid JSON",
    ),
    "unknown store backend": (
        {"STORE_BACKEND": "mongo"},
        "STORE_BACKEND",
        "one of auto, sqlite, arango",
    ),
    "unknown bus backend": ({"BUS_BACKEND": "rabbit"}, "BUS_BACKEND", "one of auto, memory, kafka"),
    "unknown launcher backend": (
        {"LAUNCHER_BACKEND": "nomad"},
        "LAUNCHER_BACKEND",
        "one of auto, local, kubernetes",
    ),
    "port not a number": ({"PORT": "http"}, "PORT", "an integer from 0 to 65535"),
    "port out of range": ({"PORT": "70000"}, "PORT", "an integer from 0 to 65535"),
    "bad duration": (
        {"STOP_GRACE_SECONDS": "30s"},
        "STOP_GRACE_SECONDS",
        "a number of seconds from 0 to 86400",
    ),
    "duration out of range": (
        {"RECONCILE_SECONDS": "0"},
        "RECONCILE_SECONDS",
        "greater than 0",
    ),
    "bad boolean": ({"METRICS_AUTH": "maybe"}, "METRICS_AUTH", "true or false"),
    "arango url not a url": ({"ARANGO_URL": "arangodb:8529"}, "ARANGO_URL", "http://"),
    "kafka user without password": (
        {"BUS_BACKEND": "kafka", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "KAFKA_USER": "qm"},
        "KAFKA_PASSWORD",
        "required",
    ),
    "kafka ca missing": (
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "KAFKA_USER": "qm",
            "KAFKA_PASSWORD": "pw",
            "CA_PATH": "{tmp}/no-such-ca.pem",
        },
        "CA_PATH",
        "readable PEM file",
    ),
    "kafka ca not pem": (
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "KAFKA_USER": "qm",
            "KAFKA_PASSWORD": "pw",
            "CA_PATH": "{tmp}/not-a-ca.pem",
        },
        "CA_PATH",
        "readable PEM file",
    ),
    "kubernetes without a config": (
        {"LAUNCHER_BACKEND": "kubernetes", "HOME": "{tmp}"},
        "KUBECONFIG",
        "Pod with a ServiceAccount",
    ),
    "kubeconfig missing": ({"KUBECONFIG": "{tmp}/no-such-kubeconfig"}, "KUBECONFIG", "kubeconfig"),
    "kubeconfig not yaml": ({"KUBECONFIG": "{tmp}/bad.kubeconfig"}, "KUBECONFIG", "kubeconfig"),
    "host unknown": ({"HOST": "no host"}, "HOST", "address or a host name of this machine"),
    "host not of this machine": (
        {"HOST": "192.0.2.1", "AUTH_MODE": "none"},
        "HOST",
        "address or a host name of this machine",
    ),
    "data dir a file": ({"DATA_DIR": "{tmp}/not-a-ca.pem"}, "DATA_DIR", "a directory"),
    "sqlite path a directory": ({"SQLITE_PATH": "{tmp}"}, "SQLITE_PATH", "file"),
}


@pytest.mark.parametrize(("bad", "name", "allowed"), BAD_SETTINGS.values(), ids=BAD_SETTINGS)
def test_a_missing_or_malformed_setting_exits_2_with_one_line_and_starts_nothing(
    tmp_path: Path, bad: dict[str, str], name: str, allowed: str
) -> None:
    (tmp_path / "bad.kubeconfig").write_text(_KUBECONFIG_NOT_YAML)
    (tmp_path / "not-a-ca.pem").write_text(_NOT_A_CA)
    data = tmp_path / "data"
    env = {"DATA_DIR": str(data), **{k: v.replace("{tmp}", str(tmp_path)) for k, v in bad.items()}}
    with socket.socket() as held:  # the service's port, taken: binding it would fail otherwise
        held.bind(("127.0.0.1", 0))
        held.listen()
        env.setdefault("PORT", str(held.getsockname()[1]))
        done = run_cli("serve", env=env, cwd=tmp_path, timeout=30)

    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cannot start: ") and name in lines[0], lines[0]
    assert allowed in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    # nothing started: no store was opened, no job launched
    assert not (data / "queue-manager.db").exists()
    assert not list(data.glob("jobs/*"))


def test_a_port_in_use_stops_start_up_before_anything_starts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {"DATA_DIR": str(data), "PORT": str(port), "LOG_FORMAT": "json"}
        done = run_cli("serve", env=env, cwd=tmp_path, timeout=30)

    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: cannot start queue-manager: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"
    ], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (data / "queue-manager.db").exists()


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
    # a short id (six characters or more) is looked up first: that call meets the refusal
    short = "223746ea"
    full = "223746ea-0000-4000-8000-000000000001"
    for args in (
        ("list",),
        ("show", short),
        ("stop", short),
        ("watch", short),
        ("show", full),
        ("stop", full),
        ("watch", full),
        ("watch",),
    ):
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

            def stuck_one_closed() -> bool:
                reader.recv(timeout=5)  # the reading one keeps up
                return _gauge(server.url, "queue_manager_websocket_clients") == 1

            wait_until(
                stuck_one_closed,
                15,
                what="the service to close the socket that reads nothing (1 client left)",
                detail=lambda: f"clients: {_gauge(server.url, 'queue_manager_websocket_clients')}",
            )
            assert reader.recv(timeout=5)  # still served
            with pytest.raises(ConnectionClosed):
                while True:
                    stuck.recv(timeout=10)
    finally:
        server.terminate()
        server.kill_workers()
