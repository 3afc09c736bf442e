"""docs/api.md "List queues": `top_level` leaves a backfill's children out, `created_from` /
`created_to` keep a range of creation instants; a bad value is a 422 naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

BACKFILL = {
    "symbols": ["ETHUSDT"],
    "type": "api",
    "time_range": "2024-01-01:2024-01-03",
    "chunk": "day",
    "max_parallel": 1,
}


def ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [q["id"] for q in answer.json()["data"]]


async def test_top_level_leaves_out_children_and_created_range_narrows(
    client: httpx.AsyncClient, single: dict[str, Any]
) -> None:
    first = (await client.post("/queues/start", json=single)).json()["data"]["queue_id"]
    answer = await client.post("/queues/backfill", json=BACKFILL)
    parent = answer.json()["data"]["queue_id"]
    last = (await client.post("/queues/start", json=single)).json()["data"]["queue_id"]
    everything = (await client.get("/queues", params={"limit": 1000})).json()["data"]
    children = [q["id"] for q in everything if q.get("parent") == parent]
    assert len(children) == 3  # one per day
    assert ids(await client.get("/queues", params={"top_level": "true"})) == [last, parent, first]

    created = {q["id"]: datetime.fromisoformat(q["created_at"]) for q in everything}
    # From the parent's creation on (inclusive), before the last queue's (exclusive).
    window = {"created_from": created[parent].isoformat(), "created_to": created[last].isoformat()}
    got = ids(await client.get("/queues", params={**window, "top_level": "true"}))
    assert got == [parent]
    in_window = ids(await client.get("/queues", params=window))
    assert set(in_window) == {parent, *children}
    # A date without a zone is UTC; a day after the last queue holds nothing.
    tomorrow = (created[last] + timedelta(days=1)).date().isoformat()
    assert ids(await client.get("/queues", params={"created_from": tomorrow})) == []
    # The filters keep to the children of one parent too.
    kids = ids(await client.get("/queues", params={"parent": parent, **window}))
    assert set(kids) == set(children)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2024-13-01"}, "created_to"),
        ({"created_from": "2024-06-02", "created_to": "2024-06-01"}, "created_to"),
        ({"top_level": "maybe"}, "top_level"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    answer = await client.get("/queues", params=params)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["data"]["errors"]
    assert [e["field"] for e in errors] == [field]
    assert errors[0]["message"]


async def test_openapi_describes_the_list_filters_with_examples(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    params = {p["name"]: p for p in doc["paths"]["/queues"]["get"]["parameters"]}
    for name in ("top_level", "created_from", "created_to"):
        assert params[name]["description"]
        assert params[name]["examples"], name
