"""Both telemetry shapes of docs/worker-protocol.md parse; malformed ones are rejected with a
reason."""

from __future__ import annotations

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
    dumped = event.model_dump()
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
