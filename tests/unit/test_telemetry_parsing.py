"""Both telemetry shapes of docs/worker-protocol.md parse; malformed ones are rejected with a
reason."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from queue_manager.domain.models import StepStatus
from queue_manager.domain.telemetry import Ignored, Rejected, Source, parse, step_status


def test_workers_shape_keeps_only_whitelisted_fields() -> None:
    event = parse(
        orjson.dumps(
            {
                "event": "loading",
                "queue_id": "q-1",
                "producer": "p",
                "records_written": 378,
                "finished": False,
                "message": "ok",
                "sent_at": "2024-06-01T00:00:00Z",
                "symbol": "BTCUSDT",
                "type": "api_trades",
                "user": "alice",
                "arango_url": "http://secret-host",
            }
        ),
        Source.EVENTS,
    )
    assert step_status(event.status) is StepStatus.LOADING
    assert event.records_written == 378
    dumped = msgspec.structs.asdict(event)
    assert "user" not in dumped and "arango_url" not in dumped


def test_control_shape_and_commands_on_the_control_topic() -> None:
    event = parse(
        {"type": "telemetry", "queue_id": "q-1", "status": "interrupted", "records_written": 5},
        Source.CONTROL,
    )
    assert step_status(event.status) is StepStatus.STOPPED
    with pytest.raises(Ignored):
        parse({"queue_id": "q-1", "command": "stop"}, Source.CONTROL)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"event": "loading"}', "invalid_queue_id"),
        (b'{"event": "dancing", "queue_id": "q"}', "invalid_status"),
        (
            b'{"event": "loading", "queue_id": "q", "records_written": "many"}',
            "invalid_records_written",
        ),
        (
            b'{"event": "loading", "queue_id": "q", "records_written": -1}',
            "invalid_records_written",
        ),
        (b"x" * (1024 * 1024), "too_large"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as err:
        parse(raw, Source.EVENTS)
    assert err.value.reason == reason


_SHAPES: list[dict[str, object]] = [
    {"event": "loading", "queue_id": "q-1", "producer": "p", "records_written": 5},
    {"event": "loading", "queue_id": "q-1", "sent_at": "2024-06-01T00:00:00"},  # naive: UTC
    {"event": "loading", "queue_id": "q-1", "sent_at": "2024-06-01T02:00:00+02:00"},
    {"event": "loading", "queue_id": "q-1", "sent_at": 1717200000},  # epoch seconds
    {"event": "loading", "queue_id": "q-1", "last_loaded_timestamp": 1717200000123},  # ms
    {"event": "loading", "queue_id": "q-1", "timestamp": "2024-06-01T00:00:00Z"},
    {"event": "loading", "queue_id": "q-1", "sent_at": "", "timestamp": "2024-06-01T00:00:00Z"},
    {"status": "started", "queue_id": "q-1"},
    {"event": None, "status": "started", "queue_id": "q-1"},
    {"finished": True, "queue_id": "q-1", "records_written": 9},
    {"event": "error", "queue_id": "q-1", "message": "x" * 5000},
    {"event": "error", "queue_id": "q-1", "error_message": "  boom  ", "producer": " p "},
    {"event": "loading", "queue_id": " q-1 ", "type": "api_trades"},
    {"event": "loading", "queue_id": "q-1", "records_written": "12"},
    {"event": "loading", "queue_id": "q-1", "records_written": 12.0},
    {"event": "loading", "queue_id": "q-1", "records_written": True},
    {"event": "loading", "queue_id": "q-1", "finished": "false"},
    {"event": "loading", "queue_id": "q 1"},
    {"event": "loading", "queue_id": "q 1", "sent_at": "2024-06-01T00:00:00Z"},
    {"event": "loading", "queue_id": "q-1\n", "sent_at": "2024-06-01T00:00:00Z"},
    {"event": "loading", "queue_id": "q/../1", "sent_at": "2024-06-01T00:00:00Z"},
    {"event": "loading", "queue_id": "q-1", "producer": "p" * 201},
    {"event": "loading", "queue_id": "q-1", "type": "t" * 65},
    {"event": "pong", "queue_id": "q-1", "user": "alice", "symbol": "BTCUSDT"},
]


@pytest.mark.parametrize("shape", _SHAPES)
def test_the_fast_path_means_what_the_full_rules_mean(shape: dict[str, object]) -> None:
    """Bytes from the bus may take the fast decoder; a dict always takes the full model."""
    raw = orjson.dumps(shape)
    try:
        full: object = parse(orjson.loads(raw), Source.EVENTS)
    except Rejected as exc:
        full = exc.reason
    try:
        fast: object = parse(raw, Source.EVENTS)
    except Rejected as exc:
        fast = exc.reason
    assert fast == full



@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (7, 7.0),
        ("7", 7.0),
        (10**12, 7 * 86400.0),  # far future: capped at a week, never an overflow
        (-1, None),
        ("soon", None),
        (float("nan"), None),
        (True, None),
        ({"seconds": 7}, None),
    ],
)
def test_a_retry_after_hint_is_capped_or_dropped_and_never_costs_the_report(
    hint: object, expected: float | None
) -> None:
    """Workers' optional error hints are advice: a nonsense one is dropped, the report applies,
    whether it comes as bytes from the bus or as an object over HTTP."""
    report = {"event": "error", "queue_id": "q-1", "error_message": "429", "retry_after": hint}
    shapes: list[bytes | dict[str, object]] = [report]
    if hint == hint:  # NaN has no JSON form
        shapes.append(orjson.dumps(report))
    for raw in shapes:
        event = parse(raw, Source.EVENTS)
        assert step_status(event.status) is StepStatus.ERROR
        assert event.retry_after == expected
