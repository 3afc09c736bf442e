"""The one reconnect loop behind both forms of `watch` (docs/api.md: a dropped socket is reopened
and the state fetched again), against a real WebSocket server that drops the first connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from queue_manager.cli.client import CliError
from queue_manager.cli.watch import follow
from tests.support.processes import free_ports


@pytest.fixture
async def dropping_server() -> AsyncIterator[str]:
    """Connection 1 sends a heartbeat and update 1, then drops; connection 2 sends update 2."""
    connections = 0

    async def handler(socket: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await socket.send(json.dumps({"event": "heartbeat"}))
            await socket.send(json.dumps({"n": 1}))
            return  # closes the socket: the client must reconnect
        await socket.send(json.dumps({"n": 2}))
        await socket.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/topic"


async def test_a_dropped_socket_is_reopened_and_the_state_fetched_again(
    dropping_server: str,
) -> None:
    opened = 0
    updates: list[dict[str, Any]] = []
    notices: list[str] = []

    async def on_open() -> bool:
        nonlocal opened
        opened += 1
        return False

    def on_update(update: dict[str, Any]) -> bool:
        updates.append(update)
        return update.get("n") == 2

    await asyncio.wait_for(
        follow(
            "http://127.0.0.1",
            dropping_server,
            on_open=on_open,
            on_update=on_update,
            notice=notices.append,
        ),
        timeout=30,
    )
    assert updates == [{"n": 1}, {"n": 2}]  # heartbeats are not updates
    assert opened == 2
    assert notices[0].startswith("connection lost (")
    assert notices[1:] == ["reconnected"]


async def test_nothing_is_read_when_opening_says_there_is_nothing_to_follow(
    dropping_server: str,
) -> None:
    async def already_done() -> bool:
        return True

    def unexpected(update: dict[str, Any]) -> bool:
        raise AssertionError(f"read {update}")

    notices: list[str] = []
    await follow(
        "http://127.0.0.1",
        dropping_server,
        on_open=already_done,
        on_update=unexpected,
        notice=notices.append,
    )
    assert notices == []


async def test_a_service_that_never_answered_is_the_callers_error() -> None:
    (port,) = free_ports(1)
    notices: list[str] = []

    async def on_open() -> bool:
        raise AssertionError("never connected")

    with pytest.raises(CliError):
        await follow(
            f"http://127.0.0.1:{port}",
            f"ws://127.0.0.1:{port}/ws/topic",
            on_open=on_open,
            on_update=lambda update: True,
            notice=notices.append,
        )
    assert notices == []  # no reconnecting: the first failure is final
