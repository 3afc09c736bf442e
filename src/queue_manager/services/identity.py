"""Who a credential belongs to: API tokens (store + AUTH_TOKENS_FILE) and OIDC tokens.

Every replica keeps a snapshot of the stored tokens, reloaded at most every `refresh_seconds`,
so a revocation on one replica is honoured by all of them within that period without a store
round trip per request. A hash missing from the snapshot is looked up directly (a token just
created on another replica works at once); misses are remembered for the same period so a
stream of garbage tokens cannot turn into a stream of store queries.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from queue_manager.domain.errors import Conflict, InvalidRequest, TokenNotFound, Unauthenticated
from queue_manager.domain.identity import (
    TOKEN_NAME_RULE,
    TOKEN_PREFIX,
    ApiToken,
    Principal,
    PrincipalKind,
    Role,
    new_token,
    token_hash,
    valid_token_name,
)
from queue_manager.ports import BearerVerifier, TokenStore

log = structlog.get_logger(__name__)

#: `last_used_at` is for people reading `token list`; once a minute is plenty
TOUCH_EVERY = timedelta(minutes=1)
MAX_REMEMBERED_MISSES = 10_000


def _now() -> datetime:
    return datetime.now(UTC)


class IdentityService:
    def __init__(
        self,
        store: TokenStore,
        file_tokens: list[ApiToken],
        oidc: BearerVerifier | None = None,
        *,
        refresh_seconds: float = 2.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._file = list(file_tokens)
        self.oidc = oidc
        self._refresh = refresh_seconds
        self._clock = clock
        self._snapshot: dict[str, ApiToken] = {}
        self._loaded_at = float("-inf")
        self._misses: dict[str, float] = {}
        self._touched: dict[str, datetime] = {}
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        """Whether anyone could ever authenticate (decides whether auth can be switched on)."""
        return bool(self._file) or self.oidc is not None

    # -- authentication ------------------------------------------------------------------

    async def authenticate(self, credential: str) -> Principal:
        credential = credential.strip()
        if not credential:
            raise Unauthenticated("empty bearer token")
        if credential.startswith(TOKEN_PREFIX):
            return await self._api_token(credential)
        if self.oidc is not None and credential.count(".") == 2:
            return await self.oidc.verify(credential)
        raise Unauthenticated("invalid token")

    async def _api_token(self, credential: str) -> Principal:
        digest = token_hash(credential)
        token = self._from_file(digest) or await self._stored(digest)
        if token is None:
            raise Unauthenticated("invalid token")
        now = self._clock()
        if token.expired(now):
            raise Unauthenticated(f"token {token.name} expired")
        await self._touch(token, now)
        return Principal(token.name, token.role, PrincipalKind.TOKEN, token.expires_at)

    def _from_file(self, digest: str) -> ApiToken | None:
        found = None
        for token in self._file:  # every entry compared, in constant time
            if hmac.compare_digest(token.sha256, digest):
                found = token
        return found

    async def _stored(self, digest: str) -> ApiToken | None:
        await self._refresh_if_stale()
        token = self._snapshot.get(digest)
        if token is not None:
            return token if hmac.compare_digest(token.sha256, digest) else None
        missed = self._misses.get(digest)
        if missed is not None and time.monotonic() - missed < self._refresh:
            return None
        token = await self._store.token_by_hash(digest)
        if token is None:
            if len(self._misses) >= MAX_REMEMBERED_MISSES:
                self._misses.clear()
            self._misses[digest] = time.monotonic()
            return None
        self._snapshot[digest] = token
        return token

    async def _refresh_if_stale(self) -> None:
        if time.monotonic() - self._loaded_at < self._refresh:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < self._refresh:
                return
            tokens = await self._store.list_tokens()
            self._snapshot = {t.sha256: t for t in tokens}
            self._misses.clear()
            self._loaded_at = time.monotonic()

    async def _touch(self, token: ApiToken, now: datetime) -> None:
        if token.source != "store":
            return
        last = self._touched.get(token.name)
        if last is not None and now - last < TOUCH_EVERY:
            return
        self._touched[token.name] = now
        await self._store.touch_token(token.name, now)

    async def still_valid(self, principal: Principal) -> bool:
        """For open WebSockets: is the credential behind this principal still good?"""
        now = self._clock()
        if principal.expires_at is not None and principal.expires_at <= now:
            return False
        if principal.kind is not PrincipalKind.TOKEN:
            return True
        if any(t.name == principal.name for t in self._file):
            return True
        await self._refresh_if_stale()
        return any(t.name == principal.name for t in self._snapshot.values())

    # -- managing tokens -----------------------------------------------------------------

    async def create(
        self, name: str, role: Role, expires_in: timedelta | None = None
    ) -> tuple[ApiToken, str]:
        """A new token; its value is returned once and never stored."""
        if not valid_token_name(name):
            raise InvalidRequest([{"field": "name", "message": f"must be {TOKEN_NAME_RULE}"}])
        if any(t.name == name for t in self._file):
            raise Conflict(
                f"Token {name} already exists (in AUTH_TOKENS_FILE)", data={"name": name}
            )
        secret = new_token()
        now = self._clock()
        token = ApiToken(
            name=name,
            role=role,
            sha256=token_hash(secret),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        if not await self._store.put_token(token):
            raise Conflict(f"Token {name} already exists", data={"name": name})
        self._snapshot[token.sha256] = token
        log.info("api token created", token=name, role=role.value)
        return token, secret

    async def list(self) -> list[ApiToken]:
        stored = await self._store.list_tokens()
        return sorted([*self._file, *stored], key=lambda t: t.name)

    async def revoke(self, name: str) -> None:
        if any(t.name == name for t in self._file):
            raise Conflict(
                f"Token {name} comes from AUTH_TOKENS_FILE; remove it there", data={"name": name}
            )
        if not await self._store.delete_token(name):
            raise TokenNotFound(name)
        self._snapshot = {h: t for h, t in self._snapshot.items() if t.name != name}
        log.info("api token revoked", token=name)

    async def close(self) -> None:
        if self.oidc is not None:
            await self.oidc.close()
