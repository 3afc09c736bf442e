"""WS /ws/topic: one JSON object per state change, plus heartbeats."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from queue_manager.api.container import get_container

router = APIRouter()


@router.websocket("/ws/topic")
async def topic(socket: WebSocket, queue_id: str | None = None) -> None:
    await (await get_container(socket)).hub.serve(socket, queue_id)
