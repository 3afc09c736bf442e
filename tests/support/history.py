"""Reading a queue's history over the API, and checking it against the queue's state."""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import httpx


class Client(Protocol):
    def get(self, path: str, **kw: Any) -> httpx.Response: ...


def history_of(client: Client, queue_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Every event of the queue, following `next_cursor` page by page."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = client.get(f"/queues/{queue_id}/events", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        events += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return events


def assert_history_matches_state(queue: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """No gap, no duplicate, and every status chain ends where the state is."""
    assert [e["seq"] for e in events] == list(range(1, queue["event_seq"] + 1))
    chains: dict[int | None, list[dict[str, Any]]] = {}
    for event in events:
        if event["kind"] in ("queue.status", "step.status"):
            key = None if event["kind"] == "queue.status" else event["step"]
            chains.setdefault(key, []).append(event)
    for key, chain in chains.items():
        for before, after in itertools.pairwise(chain):
            assert after["from"] == before["to"], (key, before, after)
        current = queue["status"] if key is None else queue["steps"][key]["status"]
        assert chain[-1]["to"] == current, (key, chain[-1], current)
    assert chains[None][0]["from"] is None  # the history starts with the queue's creation
    for step in queue["steps"]:
        if step["status"] != "pending":
            assert step["index"] in chains, f"step {step['index']} moved without an event"
