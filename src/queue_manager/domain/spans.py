"""Time spans a worker reports as its exact coverage (`coverage` in its telemetry,
docs/worker-protocol.md), kept on its step: the spans it loaded and the gaps it saw."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field

#: how many spans a step keeps of each kind: beyond it the closest neighbours are joined, rather
#: than the document growing without bound
MAX_SPANS = 500


class Span(BaseModel):
    start: datetime
    end: datetime


class ReportedCoverage(BaseModel):
    """What a step's worker said reached the store (`loaded`) or was missing at the source
    (`gaps`); reports only add, so the order they arrive in does not matter."""

    loaded: list[Span] = Field(default_factory=list)
    gaps: list[Span] = Field(default_factory=list)


def utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def merge(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, overlapping or touching spans joined."""
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def union(old: Sequence[Span], new: Iterable[tuple[datetime, datetime]]) -> list[Span]:
    joined = merge(
        [(utc(s.start), utc(s.end)) for s in old]
        + [(utc(a), utc(b)) for a, b in new if utc(b) >= utc(a)]
    )
    while len(joined) > MAX_SPANS:
        _, i = min((joined[i + 1][0] - joined[i][1], i) for i in range(len(joined) - 1))
        joined[i : i + 2] = [(joined[i][0], joined[i + 1][1])]
    return [Span(start=a, end=b) for a, b in joined]


def add_report(
    current: ReportedCoverage | None,
    loaded: Iterable[tuple[datetime, datetime]],
    gaps: Iterable[tuple[datetime, datetime]],
) -> ReportedCoverage:
    base = current or ReportedCoverage()
    return ReportedCoverage(loaded=union(base.loaded, loaded), gaps=union(base.gaps, gaps))
