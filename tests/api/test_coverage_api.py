"""The coverage endpoints (docs/coverage.md): run-length encoded rows, the summary, a fill's
plan, the expected-gap calendar; every bad input a 422 naming its field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from queue_manager.domain.models import QueueStatus, StepStatus
from tests.store.test_coverage_contract import TYPE, _end, _queue
from tests.support.coverage_oracle import encode_cells

T0 = datetime(2024, 7, 1, tzinfo=UTC)


async def _stored(client: httpx.AsyncClient, first: date, last: date, **fields: Any) -> str:
    """A queue over first..last written to the service's store as it ended (`fields`: its
    loader's end: status and last_loaded_timestamp)."""
    store = client.adapters.store  # type: ignore[attr-defined]
    symbol = fields.pop("symbol", "BTCUSDT")
    queue = _queue(first, last, symbol=symbol, created=fields.pop("created", T0))
    await store.insert(queue, None)
    status = fields.pop("status", StepStatus.FINISHED)
    _end(queue, 0, status, **fields)
    snapshot = queue.model_copy(deep=True)

    def change(stored: Any) -> list[Any]:
        stored.status, stored.steps = snapshot.status, snapshot.steps
        return []

    await store.update_many({queue.id: change})
    return queue.id


async def test_rows_are_run_length_encoded_with_the_producer(client: httpx.AsyncClient) -> None:
    done = await _stored(client, date(2024, 1, 1), date(2024, 1, 31), records_written=3100)
    reached = datetime(2024, 2, 10, 12, 0, tzinfo=UTC)
    failed = await _stored(
        client,
        date(2024, 2, 1),
        date(2024, 2, 29),
        status=StepStatus.ERROR,
        last_loaded_timestamp=reached,
        created=T0 + timedelta(hours=1),
    )
    answer = await client.get(
        "/coverage",
        params={
            "symbol": ["BTCUSDT", "ETHUSDT"],
            "type": TYPE,
            "from": "2023-12-31",
            "to": "2024-03-02",
        },
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["data"]["rows"]
    assert [(r["symbol"], r["type"]) for r in rows] == [("BTCUSDT", TYPE), ("ETHUSDT", TYPE)]
    runs = [(r["from"], r["to"], r["state"], r["queue_id"]) for r in rows[0]["runs"]]
    assert runs == [
        ("2023-12-31", "2023-12-31", "missing", None),
        ("2024-01-01", "2024-01-31", "complete", done),
        ("2024-02-01", "2024-02-09", "complete", failed),
        ("2024-02-10", "2024-02-10", "partial", failed),
        ("2024-02-11", "2024-02-29", "failed", failed),
        ("2024-03-01", "2024-03-02", "missing", None),
    ]
    assert rows[0]["runs"][1]["records"] == 3100
    assert rows[0]["runs"][3]["loaded_until"] == reached.isoformat()
    assert "loaded_until" not in rows[0]["runs"][1]
    assert rows[1]["runs"] == [
        {
            "from": "2023-12-31",
            "to": "2024-03-02",
            "state": "missing",
            "records": 0,
            "queue_id": None,
            "step": None,
            "first": None,
            "last": None,
        }
    ]


async def test_an_expected_gap_is_shown_and_never_proposed(client: httpx.AsyncClient) -> None:
    """Acceptance 2: a day of the calendar is `expected_gap` and no fill plans it."""
    await _stored(
        client,
        date(2024, 3, 1),
        date(2024, 3, 31),
        status=StepStatus.ERROR,
        last_loaded_timestamp=datetime(2024, 3, 10, tzinfo=UTC),
    )
    put = await client.put(
        "/coverage/expected-gaps/march-maintenance",
        json={"symbol": "btcusdt", "from": "2024-03-15", "to": "2024-03-16", "reason": "upgrade"},
    )
    assert put.status_code == 201, put.text
    everyone = await client.put(
        "/coverage/expected-gaps/outage",
        json={"symbol": "*", "from": "2024-03-31", "to": "2024-03-31"},
    )
    assert everyone.status_code == 201, everyone.text
    again = await client.put(
        "/coverage/expected-gaps/outage",
        json={"symbol": "*", "from": "2024-03-30", "to": "2024-03-31"},
    )
    assert again.status_code == 200 and again.json()["message"] == "Expected gap replaced"
    listed = (await client.get("/coverage/expected-gaps")).json()["data"]
    assert [(g["name"], g["symbol"], g["from"], g["to"]) for g in listed] == [
        ("march-maintenance", "BTCUSDT", "2024-03-15", "2024-03-16"),
        ("outage", "*", "2024-03-30", "2024-03-31"),
    ]
    rows = (
        await client.get(
            "/coverage",
            params={"symbol": "BTCUSDT", "type": TYPE, "from": "2024-03-01", "to": "2024-03-31"},
        )
    ).json()["data"]["rows"]
    assert [(r["from"], r["to"], r["state"]) for r in rows[0]["runs"]] == [
        ("2024-03-01", "2024-03-09", "complete"),
        ("2024-03-10", "2024-03-14", "failed"),
        ("2024-03-15", "2024-03-16", "expected_gap"),
        ("2024-03-17", "2024-03-29", "failed"),
        ("2024-03-30", "2024-03-31", "expected_gap"),
    ]
    plan = await client.post(
        "/coverage/fill",
        json={
            "symbols": ["BTCUSDT"],
            "types": [TYPE],
            "time_range": "2024-03-01:2024-03-31",
            "chunk": "week",
            "dry_run": True,
        },
    )
    assert plan.status_code == 200, plan.text
    # ISO weeks: Mon 03-11 and Mon 03-18 and Mon 03-25 start new chunks
    assert plan.json()["data"] == {
        "chunks": [
            {"symbol": "BTCUSDT", "type": TYPE, "time_range": "2024-03-10:2024-03-10"},
            {"symbol": "BTCUSDT", "type": TYPE, "time_range": "2024-03-11:2024-03-14"},
            {"symbol": "BTCUSDT", "type": TYPE, "time_range": "2024-03-17:2024-03-17"},
            {"symbol": "BTCUSDT", "type": TYPE, "time_range": "2024-03-18:2024-03-24"},
            {"symbol": "BTCUSDT", "type": TYPE, "time_range": "2024-03-25:2024-03-29"},
        ],
        "queue_id": None,
    }
    summary = await client.get(
        "/coverage/summary", params={"type": TYPE, "from": "2024-03-01", "to": "2024-03-31"}
    )
    assert summary.status_code == 200, summary.text
    [row] = summary.json()["data"]["rows"]
    assert row["symbol"] == "BTCUSDT"
    assert row["days"]["complete"] == 9 and row["days"]["expected_gap"] == 4
    assert row["days"]["failed"] == 18
    assert row["complete_share"] == round(9 / 27, 4)
    assert (row["first_gap"], row["last_gap"]) == ("2024-03-10", "2024-03-29")
    gone = await client.delete("/coverage/expected-gaps/outage")
    assert gone.status_code == 200
    missing = await client.delete("/coverage/expected-gaps/outage")
    assert missing.status_code == 404, missing.text


async def test_a_fill_with_nothing_to_do_starts_nothing(client: httpx.AsyncClient) -> None:
    await _stored(client, date(2024, 4, 1), date(2024, 4, 30))
    answer = await client.post(
        "/coverage/fill",
        json={"symbols": ["BTCUSDT"], "types": [TYPE], "time_range": "2024-04-01:2024-04-30"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Nothing to fill"
    assert answer.json()["data"] == {"chunks": [], "queue_id": None}
    listed = (await client.get("/queues")).json()["data"]
    assert [q["status"] for q in listed] == [QueueStatus.FINISHED.value]


FAR = (date.today() + timedelta(days=800)).isoformat()
READ = {"symbol": "BTCUSDT", "type": TYPE, "from": "2024-01-01", "to": "2024-01-31"}
FILL = {"symbols": ["BTCUSDT"], "types": [TYPE], "time_range": "2024-01-01:2024-01-31"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({**READ, "symbol": "btc usdt"}, "symbol"),
        ({k: v for k, v in READ.items() if k != "symbol"}, "symbol"),
        ({k: v for k, v in READ.items() if k != "type"}, "type"),
        ({**READ, "type": "API-candles"}, "type"),
        ({**READ, "from": "2024-13-01"}, "from"),
        ({**READ, "from": "2024-02-01"}, "to"),
        ({**READ, "from": "2000-01-01", "to": "2024-01-01"}, "to"),
        ({**READ, "to": FAR}, "to"),
        ({**READ, "symbol": ["BTCUSDT", "BTCUSDT"]}, "symbol"),
    ],
)
async def test_bad_reads_are_422_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    answer = await client.get("/coverage", params=params)
    assert answer.status_code == 422, answer.text
    fields = [e["field"] for e in answer.json()["data"]["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**FILL, "symbols": []}, "symbols"),
        ({**FILL, "types": []}, "types"),
        ({**FILL, "time_range": "2024-02-01:2024-01-01"}, "time_range"),
        ({**FILL, "time_range": "2010-01-01:2024-01-01"}, "time_range"),
        ({**FILL, "time_range": f"2024-01-01:{FAR}"}, "time_range"),
        ({**FILL, "chunk": "year"}, "chunk"),
        ({**FILL, "max_parallel": 0}, "max_parallel"),
        ({**FILL, "types": [TYPE, "api_trades"]}, "template"),
        ({**FILL, "template": {"type": "api_trades"}}, "template"),
        ({**FILL, "template": {"type": TYPE, "symbol": "ETHUSDT"}}, "template.symbol"),
        ({**FILL, "template": {"type": TYPE, "colour": 1}}, "template.colour"),
        ({**FILL, "unknown": 1}, "unknown"),
        ({**FILL, "chunk": "day", "time_range": "2018-01-01:2024-01-01"}, "chunk"),
    ],
)
async def test_bad_fills_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    answer = await client.post("/coverage/fill", json=body)
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["data"]["errors"]], answer.text


async def test_the_largest_fill_by_day_is_refused_before_it_is_planned(
    client: httpx.AsyncClient,
) -> None:
    # 1,000 symbols x 10 types x 3,660 days, none loaded: 36.6 million days, which a plan made
    # day by day (or chunk by chunk) would hold in memory before finding it too large
    today = datetime.now(UTC).date()
    body = {
        "symbols": [f"S{i:04d}USDT" for i in range(1000)],
        "types": [f"api_type_{i}" for i in range(10)],
        "time_range": f"{today - timedelta(days=3659)}:{today}",
        "chunk": "day",
        "dry_run": True,
    }
    answer = await client.post("/coverage/fill", json=body)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["data"]["errors"]
    assert error["field"] == "chunk" and "more than 100000 chunks" in error["message"]


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("bad name!", {"from": "2024-01-01", "to": "2024-01-01"}, "name"),
        ("ok", {"from": "2024-01-02", "to": "2024-01-01"}, "to"),
        ("ok", {"symbol": "b", "from": "2024-01-01", "to": "2024-01-01"}, "symbol"),
        ("ok", {"to": "2024-01-01"}, "from"),
        ("ok", {"from": "2024-01-01", "to": "2035-01-01"}, "to"),
    ],
)
async def test_bad_gaps_are_422_naming_the_field(
    client: httpx.AsyncClient, name: str, body: dict[str, Any], field: str
) -> None:
    answer = await client.put(f"/coverage/expected-gaps/{name}", json=body)
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["data"]["errors"]], answer.text


async def test_rows_from_the_stored_runs_are_what_the_cells_give(
    client: httpx.AsyncClient,
) -> None:
    """The read uses the ledger's runs (docs/coverage.md): its rows are what `encode` gives
    from the cells, for runs clipped at either end of the range and partial runs of several
    days (records on each) cut at expected gaps."""
    from queue_manager.domain import coverage

    store = client.adapters.store  # type: ignore[attr-defined]
    await _stored(client, date(2024, 5, 1), date(2024, 5, 31), records_written=3101)
    await _stored(
        client,
        date(2024, 6, 1),
        date(2024, 6, 30),
        status=StepStatus.ERROR,
        last_loaded_timestamp=datetime(2024, 6, 12, 7, 0, tzinfo=UTC),
        records_written=1234,
        created=T0 + timedelta(hours=1),
    )
    # a stream over three days: two partial days of its own, with records on each
    stream_type = "ws_candles_1m"
    stream = _queue(date(2024, 5, 10), date(2024, 5, 12), step_type=stream_type)
    await store.insert(stream, None)
    _end(
        stream,
        0,
        StepStatus.STOPPED,
        started_at=datetime(2024, 5, 10, 18, 0, tzinfo=UTC),
        finished_at=datetime(2024, 5, 11, 9, 0, tzinfo=UTC),
        records_written=999,
    )
    snapshot = stream.model_copy(deep=True)

    def change(stored: Any) -> list[Any]:
        stored.status, stored.steps = snapshot.status, snapshot.steps
        return []

    await store.update_many({stream.id: change})
    for name, start, end in [
        ("a", "2024-05-11", "2024-05-11"),
        ("b", "2024-06-05", "2024-06-05"),
        ("c", "2024-06-12", "2024-06-12"),
        ("d", "2024-06-20", "2024-06-21"),
    ]:
        gap = {"symbol": "*", "from": start, "to": end}
        assert (await client.put(f"/coverage/expected-gaps/{name}", json=gap)).status_code == 201
    calendar = coverage.ExpectedCalendar(await store.expected_gaps())
    for first, last in [
        (date(2024, 4, 25), date(2024, 7, 5)),
        (date(2024, 5, 7), date(2024, 6, 25)),  # crosses a complete and a failed run
        (date(2024, 5, 11), date(2024, 6, 12)),  # starts in the partial run, on its gap
        (date(2024, 5, 20), date(2024, 5, 22)),  # inside one run
    ]:
        for type_ in (TYPE, stream_type):
            answer = await client.get(
                "/coverage",
                params={"symbol": "BTCUSDT", "type": type_, "from": str(first), "to": str(last)},
            )
            assert answer.status_code == 200, answer.text
            cells = await store.coverage_cells(["BTCUSDT"], [type_], first, last)
            today = encode_cells("BTCUSDT", {c.day: c for c in cells}, first, last, calendar)
            assert answer.json()["data"]["rows"][0]["runs"] == [r.as_dict() for r in today]
