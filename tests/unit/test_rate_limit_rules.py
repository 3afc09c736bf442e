"""The rate-limit rules (docs/operations.md "Rate-limit groups"): which group a step belongs to,
and what a group's breaker becomes at each rate-limited failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queue_manager.domain import rate_limits as rules
from queue_manager.domain import state
from queue_manager.domain.models import StepStatus
from queue_manager.domain.rate_limits import Breaker, RateLimitGroups
from tests.store.helpers import make_queue

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_by_default_the_loaders_rest_types_are_one_exchange_group() -> None:
    groups = RateLimitGroups.default()
    assert groups.group_of("loader-producer", "api_candles_1m") == "exchange"
    assert groups.group_of("loader-producer", "rest_trades") == "exchange"
    assert groups.group_of("loader-producer", "api") == "exchange"
    assert groups.group_of("loader-producer", "ws_candles_1m") is None
    assert groups.group_of("graph-builder", "api_candles_1m") is None
    assert groups.names == ["exchange"]


def test_a_step_belongs_to_the_first_group_that_matches_it() -> None:
    groups = RateLimitGroups.parse(
        {
            "candles": ["loader-producer:api_candles_*"],
            "exchange": ["loader-producer:api_*"],
            "graphs": ["graph-builder:*"],
        }
    )
    assert groups.group_of("loader-producer", "api_candles_5m") == "candles"
    assert groups.group_of("loader-producer", "api_trades") == "exchange"
    assert groups.group_of("graph-builder", "anything") == "graphs"
    assert groups.patterns("graphs") == ["graph-builder:*"]


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"Bad Name": ["loader-producer:api_*"]}, "group name 'Bad Name'"),
        ({"x": []}, "must list target:type patterns"),
        ({"x": "loader-producer:api_*"}, "must list target:type patterns"),
        ({"x": ["api_*"]}, "is not target:type-glob"),
        ({"x": ["nobody:api_*"]}, "is not target:type-glob"),
        ({"x": ["loader-producer:api_*"], "y": ["loader-producer:api_*"]}, "is in groups"),
    ],
)
def test_a_malformed_group_config_says_what_is_wrong(config: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        RateLimitGroups.parse(config)  # type: ignore[arg-type]


def test_a_429_with_retry_after_opens_the_breaker_until_then() -> None:
    breaker = rules.trip(None, "exchange", NOW, 7, "HTTP 429", queue_id="q", step=0)
    assert breaker is not None
    assert breaker.open_until == NOW + timedelta(seconds=7)
    assert breaker.is_open(NOW + timedelta(seconds=6.9))
    assert not breaker.is_open(NOW + timedelta(seconds=7))
    assert (breaker.strikes, breaker.queue_id, breaker.reason) == (1, "q", "HTTP 429")
    assert rules.opened(None, breaker, NOW)


def test_an_open_breaker_is_extended_by_a_later_wait_and_only_by_one() -> None:
    first = rules.trip(None, "exchange", NOW, 7, "HTTP 429")
    assert first is not None
    later = NOW + timedelta(seconds=1)
    assert rules.trip(first, "exchange", later, 3, "HTTP 429") is None  # ends sooner: no change
    assert rules.trip(first, "exchange", later, None, "HTTP 418") is None  # names no wait
    extended = rules.trip(first, "exchange", later, 30, "HTTP 429 again")
    assert extended is not None
    assert extended.open_until == later + timedelta(seconds=30)
    assert (extended.opened_at, extended.strikes, extended.reason) == (NOW, 1, "HTTP 429")
    assert not rules.opened(first, extended, later)  # extended, not opened


def test_a_wait_nobody_named_escalates_per_opening_within_a_day_and_is_capped() -> None:
    at, breaker, waits = NOW, None, []
    for _ in range(12):
        breaker = rules.trip(breaker, "exchange", at, None, "HTTP 418")
        assert breaker is not None
        waits.append(breaker.open_until - at)
        at = breaker.open_until  # opens again the moment it closed
    minutes = [int(w.total_seconds() // 60) for w in waits]
    assert minutes[:6] == [2, 4, 8, 16, 32, 64]
    assert max(waits) == rules.LONGEST_BAN == waits[-1]


def test_the_escalation_starts_again_a_day_after_the_last_closing() -> None:
    first = rules.trip(None, "exchange", NOW, None, "HTTP 418")
    second = rules.trip(first, "exchange", NOW + timedelta(hours=1), None, "HTTP 418")
    assert second is not None and second.strikes == 2
    assert rules.trip(second, "exchange", second.open_until, None, "HTTP 418") is not None
    fresh = rules.trip(second, "exchange", second.open_until + timedelta(days=1), None, "418")
    assert fresh is not None and fresh.strikes == 1
    assert fresh.open_until - fresh.opened_at == rules.FIRST_BAN


def test_an_absurd_retry_after_is_capped() -> None:
    breaker = rules.trip(None, "exchange", NOW, 10**9, "HTTP 418")
    assert breaker is not None and breaker.open_until == NOW + rules.LONGEST_RETRY_AFTER


def test_releases_are_spread_the_same_way_everywhere() -> None:
    assert [rules.release_at(NOW, i, 2.0) for i in range(3)] == [
        NOW,
        NOW + timedelta(seconds=0.5),
        NOW + timedelta(seconds=1),
    ]


def test_a_held_step_waits_with_the_reason_and_launches_once_let_go() -> None:
    queue = make_queue(queue_id="q1")
    breaker = Breaker(
        group="exchange", open_until=NOW + timedelta(seconds=7), reason="HTTP 429", opened_at=NOW
    )
    why = rules.waiting_reason(breaker)
    outcome, claimed = state.claim_ready(queue, NOW, gate=lambda step: why)
    assert claimed == []
    assert queue.steps[0].status is StepStatus.PENDING
    assert queue.steps[0].waiting == why and why.startswith("rate limit of group exchange ")
    assert [e.to for e in outcome.events] == ["waiting"]
    # Asked again while held: said once in the history, not at every pass.
    again, _ = state.claim_ready(queue, NOW, gate=lambda step: why)
    assert again.events == []
    _, claimed = state.claim_ready(queue, NOW + timedelta(seconds=7), gate=None)
    assert [s.index for s in claimed] == [0]
    assert queue.steps[0].waiting is None
