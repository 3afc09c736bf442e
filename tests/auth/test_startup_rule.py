"""Zero set-up stays zero set-up on loopback; anywhere else auth, or an explicit opt-out."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cli.helpers import free_port, run_cli, start_server


def test_a_public_address_without_auth_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    done = run_cli(
        "serve",
        "--host",
        "0.0.0.0",
        env={"DATA_DIR": str(tmp_path), "PORT": str(free_port())},
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cannot start: AUTH_MODE: HOST=0.0.0.0 is not a loopback address")
    assert "Traceback" not in done.stderr + done.stdout


def test_auth_on_without_a_way_in_refuses_to_start(tmp_path: Path) -> None:
    done = run_cli(
        "serve", env={"DATA_DIR": str(tmp_path), "AUTH_MODE": "on"}, cwd=tmp_path, timeout=30
    )
    assert done.returncode == 2
    assert "AUTH_MODE=on" in done.stderr


def test_loopback_serves_open_with_one_warning(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        assert httpx.get(f"{server.url}/queues", timeout=5).status_code == 200
        warnings = [line for line in server.log_tail(200).splitlines() if "auth disabled" in line]
        assert len(warnings) == 1
        assert "auth disabled: listening on 127.0.0.1 only" in warnings[0]
    finally:
        server.terminate()


def test_auth_mode_none_is_the_explicit_opt_out_on_any_address(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(tmp_path, "--host", "0.0.0.0", port=port, AUTH_MODE="none")
    try:
        assert httpx.get(f"{server.url}/queues", timeout=5).status_code == 200
        assert "AUTH_MODE=none" in server.log_tail(200)
    finally:
        server.terminate()
