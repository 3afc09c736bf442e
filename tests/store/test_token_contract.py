"""API tokens in the store: the same contract on SQLite and ArangoDB (docs/security.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from queue_manager.domain.identity import ApiToken, Role, new_token, token_hash
from tests.store.conftest import Backend

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _token(name: str, role: Role = Role.VIEWER, **kw: object) -> tuple[ApiToken, str]:
    secret = new_token()
    return ApiToken(name, role, token_hash(secret), NOW, **kw), secret  # type: ignore[arg-type]


async def test_a_stored_token_is_found_by_its_hash_only(backend: Backend) -> None:
    store = await backend.open()
    token, secret = _token("ci", Role.OPERATOR, expires_at=NOW + timedelta(days=30))
    assert await store.put_token(token)
    found = await store.token_by_hash(token_hash(secret))
    assert found is not None
    assert (found.name, found.role, found.expires_at) == ("ci", Role.OPERATOR, token.expires_at)
    assert found.created_at == NOW and found.last_used_at is None
    assert await store.token_by_hash(token_hash(secret + "x")) is None
    assert await store.token_by_hash(secret) is None  # the value itself is never a key


async def test_a_name_or_a_hash_cannot_be_taken_twice(backend: Backend) -> None:
    store = await backend.open()
    first, _ = _token("ci")
    assert await store.put_token(first)
    same_name, _ = _token("ci", Role.ADMIN)
    assert not await store.put_token(same_name)
    same_hash = ApiToken("other", Role.ADMIN, first.sha256, NOW)
    assert not await store.put_token(same_hash)
    assert [(t.name, t.role) for t in await store.list_tokens()] == [("ci", Role.VIEWER)]


async def test_revocation_and_use_are_seen_by_another_replica(backend: Backend) -> None:
    one = await backend.open()
    other = await backend.open()
    a, secret_a = _token("alpha")
    b, _ = _token("beta", Role.ADMIN)
    assert await one.put_token(a) and await one.put_token(b)
    assert [t.name for t in await other.list_tokens()] == ["alpha", "beta"]
    await other.touch_token("alpha", NOW + timedelta(hours=1))
    used = await one.token_by_hash(token_hash(secret_a))
    assert used is not None and used.last_used_at == NOW + timedelta(hours=1)
    assert await one.delete_token("alpha")
    assert not await other.delete_token("alpha")
    assert await other.token_by_hash(token_hash(secret_a)) is None
    assert [t.name for t in await other.list_tokens()] == ["beta"]


async def test_tokens_are_listed_in_code_point_order_of_their_names(backend: Backend) -> None:
    """The same order in every store (issue 29): code points, which is SQLite's byte order —
    not ArangoDB's collation, which puts `_` before `-`, `.` and the digits."""
    store = await backend.open()
    names = ["a_b", "a1", "a-b", "a.b", "ab", "a"]
    for name in names:
        token, _ = _token(name)
        assert await store.put_token(token)
    listed = [t.name for t in await store.list_tokens()]
    assert listed == sorted(names) == ["a", "a-b", "a.b", "a1", "a_b", "ab"]


async def test_a_revoked_tokens_hash_can_be_given_again(backend: Backend) -> None:
    """Uniqueness of the hash goes with the token: revoked, its hash is free."""
    store = await backend.open()
    first, secret = _token("first")
    assert await store.put_token(first)
    assert await store.delete_token("first")
    again = ApiToken("again", Role.ADMIN, first.sha256, NOW)
    assert await store.put_token(again)
    found = await store.token_by_hash(token_hash(secret))
    assert found is not None and found.name == "again"
