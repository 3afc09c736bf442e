"""Logged-out browser sessions in the store: the same contract on SQLite and ArangoDB
(docs/security.md, "Browser sessions"). Every replica, and a restarted one, must refuse a
session that was logged out on any of them, until it would have ended by itself."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from tests.store.conftest import Backend

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _session_id() -> str:
    return secrets.token_urlsafe(16)  # what api/sessions.py issues


async def test_a_logout_is_seen_by_another_replica_until_the_session_would_have_ended(
    backend: Backend,
) -> None:
    one = await backend.open()
    other = await backend.open()
    long, short = _session_id(), _session_id()
    assert await other.ended_sessions(NOW) == set()
    await one.end_session(long, NOW + timedelta(hours=8), NOW)
    await one.end_session(short, NOW + timedelta(minutes=5), NOW)
    assert await other.ended_sessions(NOW) == {long, short}
    assert await other.ended_sessions(NOW + timedelta(hours=1)) == {long}
    assert await other.ended_sessions(NOW + timedelta(hours=8)) == set()


async def test_a_logout_recorded_twice_is_one_logout(backend: Backend) -> None:
    store = await backend.open()
    session = _session_id()
    await store.end_session(session, NOW + timedelta(hours=1), NOW)
    await store.end_session(session, NOW + timedelta(hours=1), NOW)
    assert await store.ended_sessions(NOW) == {session}


async def test_a_logout_outlives_the_process_that_recorded_it(backend: Backend) -> None:
    first = await backend.open()
    session = _session_id()
    await first.end_session(session, NOW + timedelta(hours=1), NOW)
    await first.close()
    backend.opened.remove(first)
    restarted = await backend.open()
    assert await restarted.ended_sessions(NOW) == {session}


async def test_records_of_sessions_past_their_end_are_dropped(backend: Backend) -> None:
    """A cookie past its end is refused by its age alone: its logout need not be kept, so the
    set every replica reloads stays as small as the sessions still alive."""
    store = await backend.open()
    old, alive = _session_id(), _session_id()
    await store.end_session(old, NOW + timedelta(minutes=10), NOW)
    await store.end_session(alive, NOW + timedelta(hours=2), NOW + timedelta(hours=1))
    # Asked about a moment when both were alive, the store no longer holds the old one.
    assert await store.ended_sessions(NOW) == {alive}
