"""docs/schedules.md: when a cron fires in a timezone (daylight-saving gap and overlap), what a
window means, and which due ticks a catch-up policy runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from queue_manager.domain import cron
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.schedules import (
    NAME_RULE,
    Catchup,
    Schedule,
    ScheduleCreate,
    plan_ticks,
    run_requests,
    window_range,
)

NEW_YORK = ZoneInfo("America/New_York")


def local(instants: list[datetime]) -> list[str]:
    return [t.astimezone(NEW_YORK).strftime("%m-%d %H:%M%z") for t in instants]


def test_a_daily_time_in_the_spring_gap_runs_once_right_after_the_jump() -> None:
    # 2024-03-10: New York clocks go from 02:00 EST straight to 03:00 EDT; 02:30 never happens.
    found = cron.ticks(
        "30 2 * * *",
        NEW_YORK,
        datetime(2024, 3, 9, 12, tzinfo=UTC),
        datetime(2024, 3, 12, 12, tzinfo=UTC),
        limit=10,
    )
    assert local(found) == ["03-10 03:00-0400", "03-11 02:30-0400", "03-12 02:30-0400"]


def test_a_daily_time_in_the_autumn_overlap_runs_once_at_its_first_occurrence() -> None:
    # 2024-11-03: 01:00-02:00 happens twice (EDT, then EST).
    found = cron.ticks(
        "30 1 * * *",
        NEW_YORK,
        datetime(2024, 11, 2, 12, tzinfo=UTC),
        datetime(2024, 11, 4, 12, tzinfo=UTC),
        limit=10,
    )
    assert local(found) == ["11-03 01:30-0400", "11-04 01:30-0500"]


def test_an_hourly_schedule_keeps_real_time_through_both_transitions() -> None:
    overlap = cron.ticks(
        "30 * * * *",
        NEW_YORK,
        datetime(2024, 11, 3, 4, tzinfo=UTC),
        datetime(2024, 11, 3, 8, tzinfo=UTC),
        limit=10,
    )
    assert local(overlap) == [
        "11-03 00:30-0400",
        "11-03 01:30-0400",
        "11-03 01:30-0500",
        "11-03 02:30-0500",
    ]
    gap = cron.ticks(
        "30 * * * *",
        NEW_YORK,
        datetime(2024, 3, 10, 5, tzinfo=UTC),
        datetime(2024, 3, 10, 9, tzinfo=UTC),
        limit=10,
    )
    assert local(gap) == [
        "03-10 00:30-0500",
        "03-10 01:30-0500",
        "03-10 03:30-0400",
        "03-10 04:30-0400",
    ]


def test_next_tick_and_the_latest_ticks_of_a_long_range() -> None:
    after = datetime(2024, 3, 10, 0, tzinfo=UTC)
    assert local([cron.next_tick("30 2 * * *", NEW_YORK, after)]) == ["03-10 03:00-0400"]
    minutes = cron.ticks(
        "* * * * *",
        ZoneInfo("UTC"),
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 1, tzinfo=UTC),
        limit=2,
    )
    assert minutes == [datetime(2024, 1, 31, 23, 59, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("expression", "says"),
    [("61 * * * *", "not a valid cron"), ("* * * *", "5 fields"), ("* * * * * *", "5 fields")],
)
def test_a_bad_cron_says_what_is_wrong(expression: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        cron.check_cron(expression)


def test_an_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="IANA"):
        cron.check_timezone("Mars/Olympus")


@pytest.mark.parametrize(
    ("window", "day", "expected"),
    [
        ("1d", date(2024, 3, 1), "2024-02-29:2024-02-29"),
        ("7d", date(2024, 3, 8), "2024-03-01:2024-03-07"),
        ("1w", date(2024, 3, 8), "2024-03-01:2024-03-07"),
        ("1M", date(2024, 3, 15), "2024-02-01:2024-02-29"),
        ("3M", date(2024, 1, 1), "2023-10-01:2023-12-31"),
    ],
)
def test_a_window_is_the_time_before_the_ticks_date(window: str, day: date, expected: str) -> None:
    assert window_range(window, day) == expected


@pytest.mark.parametrize(
    "name", ["Nightly", "nightly_candles", "-nightly", "nightly-", "", "a" * 64, "nightly candles"]
)
def test_a_bad_schedule_name_is_refused_in_words_not_as_a_regex(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ScheduleCreate.model_validate({"name": name})
    (error,) = [e for e in refused.value.errors() if e["loc"] == ("name",)]
    assert error["msg"] == f"Value error, {NAME_RULE}"
    assert "[" not in NAME_RULE and "lowercase letters, digits or '-'" in NAME_RULE


@pytest.mark.parametrize("name", ["n", "7", "nightly-candles", "btc-5m-2024", "a" * 63])
def test_a_good_schedule_name_is_taken(name: str) -> None:
    assert ScheduleCreate.model_validate({"name": name}).name == name


def schedule(**fields: object) -> Schedule:
    base: dict[str, object] = {
        "name": "s",
        "cron": "* * * * *",
        "template": {"type": "api", "window": "1d"},
        "symbols": ["BTCUSDT", "ETHUSDT"],
    }
    return Schedule.model_validate({**base, **fields})


def test_a_tick_makes_one_request_per_symbol_for_the_day_before_in_its_timezone() -> None:
    tokyo = schedule(
        timezone="Asia/Tokyo", template={"type": "api", "time_range": "{date-2d}:{date}"}
    )
    tick = datetime(2024, 3, 31, 16, 0, tzinfo=UTC)  # 01:00 on April 1st in Tokyo
    requests = run_requests(tokyo, tick, tokyo.symbols)
    assert [(r.symbol, r.time_range) for r in requests] == [
        ("BTCUSDT", "2024-03-30:2024-04-01"),
        ("ETHUSDT", "2024-03-30:2024-04-01"),
    ]
    with pytest.raises(InvalidRequest) as refused:
        run_requests(schedule(template={"type": "api"}), tick, ["BTCUSDT"])
    assert refused.value.errors[0]["field"] == "template.window"


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DUE = [NOW - timedelta(minutes=n) for n in (5, 4, 3, 0)]


@pytest.mark.parametrize(
    ("catchup", "deadline", "run"),
    [
        (Catchup.NONE, None, [NOW]),
        (Catchup.LATEST, None, [NOW]),
        (Catchup.ALL, None, DUE),
        (Catchup.ALL, 200, [DUE[2], NOW]),
    ],
)
def test_catchup_decides_which_due_ticks_run(
    catchup: Catchup, deadline: int | None, run: list[datetime]
) -> None:
    plan = plan_ticks(schedule(catchup=catchup, starting_deadline_seconds=deadline), DUE, NOW)
    assert plan.run == run
    assert sorted(plan.missed + plan.run) == DUE


def test_after_an_outage_latest_runs_the_last_missed_tick_and_none_runs_nothing() -> None:
    due = DUE[:3]  # all of them minutes late
    assert plan_ticks(schedule(catchup=Catchup.LATEST), due, NOW).run == [due[-1]]
    assert plan_ticks(schedule(catchup=Catchup.NONE), due, NOW).run == []
    bounded = schedule(catchup=Catchup.LATEST, starting_deadline_seconds=60)
    assert plan_ticks(bounded, due, NOW).missed == due
