"""The one shape of every state store (issue 28): the parts it is made of.

SQLite and ArangoDB are built from the same parts — a module of the same name in each package
(`queues`, `admission`, `schedules`, `tokens`, `sessions`, `rate_limits`) — and `StoreParts`
answers the `Store` port by asking the part in charge, so whoever knows one store knows where to
look in the other. A store adds only what is its own: opening, closing and proving it can write
(`ping`).
A new part (the retry scheduler, the coverage ledger) is one module in each package, one
protocol and its delegations here.

Shared by both stores and part of neither (like `cursor`), so the adapters still never import
each other.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from queue_manager.domain.catalog import CollectionEntry, CollectionInfo
from queue_manager.domain.coverage import Cell, CellRun, ExpectedGap
from queue_manager.domain.history import QueueEvent
from queue_manager.domain.identity import ApiToken
from queue_manager.domain.models import QueueState, QueueStatus
from queue_manager.domain.overview import RunStats
from queue_manager.domain.rate_limits import Breaker
from queue_manager.domain.schedules import Schedule, ScheduleRun
from queue_manager.ports import (
    CatalogStore,
    CoverageStore,
    Page,
    RateLimitStore,
    ScheduleStore,
    SessionStore,
    StatsStore,
    TokenStore,
)

#: the history events of a new queue, or of a change
Events = Sequence[QueueEvent]
#: a queue as stored, and whether this insert stored it (False: its idempotency key's)
Inserted = tuple[QueueState, bool]
#: a change to one queue: its events, or None when it changed nothing (see ports.StateStore)
Change = Callable[[QueueState], list[QueueEvent] | None]
#: admits one queue, returning its events
Admit = Callable[[QueueState], list[QueueEvent]]
#: a change to a backfill's parent, given its children
Recount = Callable[[QueueState, list[QueueState]], list[QueueEvent] | None]
#: a change to one queue, given the jobs running per target
Claim = Callable[[QueueState, Mapping[str, int]], list[QueueEvent] | None]


@dataclass(frozen=True)
class Listing:
    """Which queues a list page shows (each None: any), and where it starts (None: newest)."""

    status: QueueStatus | None
    symbol: str | None
    parent: str | None
    cursor: str | None
    id_prefix: str | None = None
    #: no backfill's child (a queue without `parent`)
    top_level: bool = False
    #: created at or after / strictly before
    created_from: datetime | None = None
    created_to: datetime | None = None


class QueueRecords(Protocol):
    """The queues themselves, their history and idempotency keys (StateStore's documents)."""

    async def insert(self, queue: QueueState, key: str | None, events: Events) -> Inserted: ...
    async def get(self, queue_id: str) -> QueueState | None: ...
    async def get_json(self, queue_id: str) -> bytes | None: ...
    async def update_many(self, changes: Mapping[str, Change]) -> dict[str, QueueState | None]: ...
    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]: ...
    async def page(self, listing: Listing, limit: int) -> Page: ...
    async def delete_ended(self, before: datetime, limit: int) -> list[str]: ...
    async def list_active(self) -> list[QueueState]: ...
    async def count_by_status(self) -> dict[str, int]: ...


class QueueAdmission(Protocol):
    """The decisions that span queues (MAX_RUNNING_QUEUES, MAX_RUNNING_JOBS, a backfill's
    recount): each counted and written in one transaction."""

    async def admit(self, limit: int | None, admit: Admit) -> list[QueueState]: ...
    async def update_parent(self, parent_id: str, mutate: Recount) -> QueueState | None: ...
    async def claim(
        self, queue_id: str, targets: Collection[str], mutate: Claim
    ) -> QueueState | None: ...
    async def queued_order(self) -> list[str]: ...


class StoreParts:
    """The data half of the `Store` port, answered by the parts a store sets in `__init__`
    (see ports.py for what each method promises)."""

    queues: QueueRecords
    admission: QueueAdmission
    schedules: ScheduleStore
    tokens: TokenStore
    sessions: SessionStore
    rate_limits: RateLimitStore
    catalog: CatalogStore
    coverage: CoverageStore
    stats: StatsStore

    # -- queues ---------------------------------------------------------------------------

    async def insert(
        self, queue: QueueState, idempotency_key: str | None, events: Events = ()
    ) -> Inserted:
        return await self.queues.insert(queue, idempotency_key, events)

    async def get(self, queue_id: str) -> QueueState | None:
        return await self.queues.get(queue_id)

    async def get_json(self, queue_id: str) -> bytes | None:
        return await self.queues.get_json(queue_id)

    async def update_many(self, changes: Mapping[str, Change]) -> dict[str, QueueState | None]:
        return await self.queues.update_many(changes)

    async def events(self, queue_id: str, *, after: int, limit: int) -> list[QueueEvent]:
        return await self.queues.events(queue_id, after=after, limit=limit)

    async def page(
        self,
        *,
        status: QueueStatus | None,
        symbol: str | None,
        limit: int,
        cursor: str | None,
        parent: str | None = None,
        id_prefix: str | None = None,
        top_level: bool = False,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Page:
        listing = Listing(
            status, symbol, parent, cursor, id_prefix, top_level, created_from, created_to
        )
        return await self.queues.page(listing, limit)

    async def delete_ended(self, before: datetime, limit: int) -> list[str]:
        return await self.queues.delete_ended(before, limit)

    async def list_active(self) -> list[QueueState]:
        return await self.queues.list_active()

    async def count_by_status(self) -> dict[str, int]:
        return await self.queues.count_by_status()

    # -- admission ------------------------------------------------------------------------

    async def admit(self, limit: int | None, admit: Admit) -> list[QueueState]:
        return await self.admission.admit(limit, admit)

    async def update_parent(self, parent_id: str, mutate: Recount) -> QueueState | None:
        return await self.admission.update_parent(parent_id, mutate)

    async def claim(
        self, queue_id: str, targets: Collection[str], mutate: Claim
    ) -> QueueState | None:
        return await self.admission.claim(queue_id, targets, mutate)

    async def queued_order(self) -> list[str]:
        return await self.admission.queued_order()

    # -- schedules ------------------------------------------------------------------------

    async def put_schedule(self, schedule: Schedule) -> bool:
        return await self.schedules.put_schedule(schedule)

    async def get_schedule(self, name: str) -> Schedule | None:
        return await self.schedules.get_schedule(name)

    async def list_schedules(self) -> list[Schedule]:
        return await self.schedules.list_schedules()

    async def update_schedule(
        self, name: str, mutate: Callable[[Schedule], None]
    ) -> Schedule | None:
        return await self.schedules.update_schedule(name, mutate)

    async def delete_schedule(self, name: str) -> bool:
        return await self.schedules.delete_schedule(name)

    async def claim_tick(
        self, run: ScheduleRun, queues: Sequence[tuple[QueueState, Events]]
    ) -> bool:
        return await self.schedules.claim_tick(run, queues)

    async def last_ticks(self) -> dict[str, datetime]:
        return await self.schedules.last_ticks()

    async def schedule_runs(
        self, name: str, *, before: datetime | None, limit: int
    ) -> list[ScheduleRun]:
        return await self.schedules.schedule_runs(name, before=before, limit=limit)

    async def active_runs(self, name: str) -> list[QueueState]:
        return await self.schedules.active_runs(name)

    # -- API tokens and logged-out sessions -------------------------------------------------

    async def put_token(self, token: ApiToken) -> bool:
        return await self.tokens.put_token(token)

    async def token_by_hash(self, sha256: str) -> ApiToken | None:
        return await self.tokens.token_by_hash(sha256)

    async def list_tokens(self) -> list[ApiToken]:
        return await self.tokens.list_tokens()

    async def delete_token(self, name: str) -> bool:
        return await self.tokens.delete_token(name)

    async def touch_token(self, name: str, at: datetime) -> None:
        await self.tokens.touch_token(name, at)

    async def end_session(self, session_id: str, until: datetime, now: datetime) -> None:
        await self.sessions.end_session(session_id, until, now)

    async def ended_sessions(self, now: datetime) -> set[str]:
        return await self.sessions.ended_sessions(now)

    # -- rate-limit breakers --------------------------------------------------------------

    async def breakers(self) -> list[Breaker]:
        return await self.rate_limits.breakers()

    async def trip_breaker(
        self, group: str, change: Callable[[Breaker | None], Breaker | None]
    ) -> tuple[Breaker | None, Breaker | None]:
        return await self.rate_limits.trip_breaker(group, change)

    # -- the overview's counts ------------------------------------------------------------

    async def run_stats(self, since: datetime) -> RunStats:
        return await self.stats.run_stats(since)

    # -- the catalog of collections ---------------------------------------------------------

    async def collections(
        self, prefix: str | None, *, after: str | None, limit: int
    ) -> list[CollectionEntry]:
        return await self.catalog.collections(prefix, after=after, limit=limit)

    async def collection(self, name: str, *, consumers: int) -> CollectionInfo | None:
        return await self.catalog.collection(name, consumers=consumers)

    async def known_collections(self, names: Collection[str]) -> set[str]:
        return await self.catalog.known_collections(names)

    async def collection_names(self, limit: int) -> list[str]:
        return await self.catalog.collection_names(limit)

    # -- the coverage ledger ----------------------------------------------------------------

    async def coverage_cells(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[Cell]:
        return await self.coverage.coverage_cells(symbols, types, first, last)

    async def coverage_runs(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[CellRun]:
        return await self.coverage.coverage_runs(symbols, types, first, last)

    async def coverage_settled(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[tuple[str, str, date, date]]:
        return await self.coverage.coverage_settled(symbols, types, first, last)

    async def coverage_symbols(self, type_: str, limit: int) -> list[str]:
        return await self.coverage.coverage_symbols(type_, limit)

    async def coverage_counts(self) -> dict[tuple[str, str], int]:
        return await self.coverage.coverage_counts()

    async def derive_coverage(self, after: str | None, limit: int) -> str | None:
        return await self.coverage.derive_coverage(after, limit)

    async def coverage_derived(self) -> bool:
        return await self.coverage.coverage_derived()

    async def mark_coverage_derived(self) -> None:
        await self.coverage.mark_coverage_derived()

    async def expected_gaps(self) -> list[ExpectedGap]:
        return await self.coverage.expected_gaps()

    async def put_expected_gap(self, gap: ExpectedGap) -> bool:
        return await self.coverage.put_expected_gap(gap)

    async def delete_expected_gap(self, name: str) -> bool:
        return await self.coverage.delete_expected_gap(name)
