"""Who a credential belongs to: API tokens (store + AUTH_TOKENS_FILE), OIDC tokens, and the
browser sessions made from either.

Every replica keeps a snapshot of the stored tokens, reloaded at most every `refresh_seconds`,
so a revocation on one replica is honoured by all of them within that period without a store
round trip per request. A hash missing from the snapshot is looked up directly (a token just
created on another replica works at once); misses are remembered for the same period so a
stream of garbage tokens cannot turn into a stream of store queries.

A session is bound to the one credential it was made from: an API token session names the
token by its hash and takes its role from the token at each use (through the same snapshot),
so revoking the token ends it, and a new token given the old name does not revive it. A logout
is recorded in the store; every replica keeps the set of logged-out sessions the same way it
keeps the tokens (the replica that served the logout refuses the session at once).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from datetime import datetime, timedelta

import structlog

from queue_manager.domain.errors import Conflict, InvalidRequest, TokenNotFound, Unauthenticated
from queue_manager.domain.identity import (
    TOKEN_NAME_RULE,
    TOKEN_PREFIX,
    ApiToken,
    BrowserSession,
    Principal,
    PrincipalKind,
    Role,
    new_token,
    token_hash,
    valid_token_name,
)
from queue_manager.ports import BearerVerifier, Clock, SessionStore, TokenStore

log = structlog.get_logger(__name__)

#: `last_used_at` is for people reading `token list`; once a minute is plenty
TOUCH_EVERY = timedelta(minutes=1)
MAX_REMEMBERED_MISSES = 10_000


class IdentityService:
    def __init__(
        self,
        store: TokenStore,
        file_tokens: list[ApiToken],
        oidc: BearerVerifier | None = None,
        *,
        logouts: SessionStore,
        refresh_seconds: float = 2.0,
        clock: Clock,
    ) -> None:
        self._store = store
        self._logouts = logouts
        self._file = list(file_tokens)
        self.oidc = oidc
        self._refresh = refresh_seconds
        self._clock = clock
        self._snapshot: dict[str, ApiToken] = {}
        self._loaded_at = float("-inf")
        self._misses: dict[str, float] = {}
        self._touched: dict[str, datetime] = {}
        self._lock = asyncio.Lock()
        #: logged-out sessions: the store's set, reloaded like the tokens, and those this
        #: replica ended itself (id -> the session's own end), which no reload may forget
        self._ended: set[str] = set()
        self._ended_here: dict[str, datetime] = {}
        self._ended_loaded_at = float("-inf")
        self._ended_lock = asyncio.Lock()

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
        token = await self._token_by_hash(digest)
        if token is None:
            raise Unauthenticated("invalid token")
        now = self._clock.now()
        if token.expired(now):
            raise Unauthenticated(f"token {token.name} expired")
        await self._touch(token, now)
        return Principal(
            token.name, token.role, PrincipalKind.TOKEN, token.expires_at, credential=digest
        )

    async def _token_by_hash(self, digest: str) -> ApiToken | None:
        return self._from_file(digest) or await self._stored(digest)

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
        """For open WebSockets: is the credential behind this principal still good? The very
        token it was made from (not one that took its name since), its session not logged out."""
        now = self._clock.now()
        if principal.expires_at is not None and principal.expires_at <= now:
            return False
        if principal.session is not None and await self._session_ended(principal.session):
            return False
        if principal.kind is not PrincipalKind.TOKEN:
            return True
        if principal.credential is None:
            return False
        token = await self._token_by_hash(principal.credential)
        return token is not None and not token.expired(now)

    # -- browser sessions ----------------------------------------------------------------

    async def resume(self, session: BrowserSession) -> Principal:
        """The principal a (signed, unexpired) session cookie stands for, now: refused once the
        session was logged out, or once the credential it was made from is gone or expired."""
        if await self._session_ended(session.id):
            raise Unauthenticated("this session was logged out; log in again")
        if session.kind is PrincipalKind.OIDC:
            if self.oidc is None or session.role is None:
                raise Unauthenticated("OIDC sessions are not accepted here; log in again")
            # Its name and role are the token's, and it ends no later than the token did.
            return Principal(
                session.name,
                session.role,
                PrincipalKind.OIDC,
                session.expires_at,
                session=session.id,
            )
        if session.kind is not PrincipalKind.TOKEN or session.credential is None:
            raise Unauthenticated("session not valid; log in again")
        token = await self._token_by_hash(session.credential)
        if token is None:
            raise Unauthenticated("the credential behind this session is no longer valid")
        now = self._clock.now()
        if token.expired(now):
            raise Unauthenticated(f"token {token.name} expired")
        await self._touch(token, now)
        ends = session.expires_at
        if token.expires_at is not None and token.expires_at < ends:
            ends = token.expires_at
        return Principal(
            token.name,
            token.role,
            PrincipalKind.TOKEN,
            ends,
            credential=token.sha256,
            session=session.id,
        )

    async def end_session(self, session: BrowserSession) -> None:
        """Log out: recorded in the store, so every replica (and a restarted one) refuses it."""
        now = self._clock.now()
        await self._logouts.end_session(session.id, session.expires_at, now)
        self._ended_here[session.id] = session.expires_at
        log.info("session logged out", kind=session.kind.value)

    async def _session_ended(self, session_id: str) -> bool:
        if session_id in self._ended_here:
            return True
        if time.monotonic() - self._ended_loaded_at >= self._refresh:
            async with self._ended_lock:
                if time.monotonic() - self._ended_loaded_at >= self._refresh:
                    now = self._clock.now()
                    self._ended = await self._logouts.ended_sessions(now)
                    self._ended_here = {i: t for i, t in self._ended_here.items() if t > now}
                    self._ended_loaded_at = time.monotonic()
        return session_id in self._ended

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
        now = self._clock.now()
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
