"""When a schedule's cron fires (docs/schedules.md): 5-field expressions read in an IANA timezone,
daylight-saving transitions handled the way Debian's cron does.

croniter walks wall-clock (naive) times; each is then placed on the timeline of the zone:

* a wall-clock time that exists once is one tick;
* in the **overlap** (clocks go back, 01:30 happens twice) a fixed-time expression (minute and
  hour fields without `*`) fires once, at the first 01:30; a wildcard one (`*/15 * * * *`,
  `0 */2 * * *`) fires at both, since it means "every so often";
* in the **gap** (clocks go forward, 02:30 never happens) a fixed-time expression fires at the
  first instant after the gap (03:00), so a daily run is never lost; a wildcard one has no tick
  there.

Ticks are UTC instants, so two wall-clock times that land on the same instant are one tick.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, croniter

#: the longest daylight-saving shift anywhere (Lord Howe's is 30 min, most are 1 h): wall-clock
#: times this far around a range can land inside it
_SHIFT = timedelta(hours=3)


def check_cron(expression: str) -> str:
    """The expression, whitespace-normalised; ValueError saying what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    normal = " ".join(fields)
    if not croniter.is_valid(normal):
        raise ValueError(f"{normal!r} is not a valid cron expression")
    try:
        croniter(normal, _REFERENCE).get_next(datetime)
    except CroniterBadDateError:
        # e.g. `0 0 31 2 *` or `0 0 30 2 *`: a day that no month of the expression has
        raise ValueError(
            f"{normal!r} never fires: no month of it has that day of the month"
        ) from None
    return normal


#: where check_cron looks for a first tick: any instant works, the calendar repeats
_REFERENCE = datetime(2000, 1, 1)


def check_timezone(name: str) -> ZoneInfo:
    if name not in _zone_names():
        raise ValueError("must be an IANA timezone such as UTC, Europe/London or America/New_York")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {name!r} has no rules on this system") from None


_ZONES: set[str] = set()


def _zone_names() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones() | {"UTC"})
    return _ZONES


def is_fixed_time(expression: str) -> bool:
    minute, hour = expression.split()[:2]
    return not minute.startswith("*") and not hour.startswith("*")


def ticks(
    expression: str, zone: ZoneInfo, after: datetime, until: datetime, *, limit: int
) -> list[datetime]:
    """The instants in (after, until] at which the expression fires, oldest first; the latest
    `limit` of them when there are more."""
    fixed = is_fixed_time(expression)
    walk = croniter(expression, _local(until, zone) + _SHIFT)
    floor = _local(after, zone) - _SHIFT
    found: set[datetime] = set()
    while len(found) < limit:
        wall: datetime = walk.get_prev(datetime)
        if wall <= floor:
            break
        found.update(t for t in _instants(wall, zone, fixed) if after < t <= until)
    return sorted(found)[-limit:]


def next_tick(expression: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant after `after` at which the expression fires."""
    fixed = is_fixed_time(expression)
    walk = croniter(expression, _local(after, zone) - _SHIFT)
    while True:
        wall: datetime = walk.get_next(datetime)
        later = [t for t in _instants(wall, zone, fixed) if t > after]
        if later:
            return min(later)


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _instants(wall: datetime, zone: ZoneInfo, fixed: bool) -> list[datetime]:
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if _local(first, zone) == wall:  # the overlap: `first` is the earlier of two real instants
        return [first] if fixed else [first, second]
    # The gap: fold=0 reads the time with the offset before the jump, fold=1 with the one after,
    # so the jump lies between the two.
    return [_jump(second, first, zone)] if fixed else []


def _jump(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first second at which the zone's offset is the one it has at `after`."""
    target = after.astimezone(zone).utcoffset()
    low, high = before, after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)
