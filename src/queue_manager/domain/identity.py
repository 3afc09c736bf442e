"""Who is asking, and what their role lets them do (docs/security.md).

Roles are ordered: each includes everything the ones below it may do. The domain knows roles and
principals only; how a credential becomes a principal (API token, OIDC, session cookie) is the
services' and the adapters' business, and how a refusal is answered is the API's.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class PrincipalKind(StrEnum):
    TOKEN = "token"
    OIDC = "oidc"
    #: auth disabled (loopback only, or AUTH_MODE=none): everyone is this principal
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    kind: PrincipalKind
    #: when the credential stops being valid (None: no expiry of its own)
    expires_at: datetime | None = None
    #: API tokens: the SHA-256 of the one token this principal was authenticated with, which is
    #: what an open socket or a session stays bound to (never the name: names are reused)
    credential: str | None = field(default=None, repr=False)
    #: browser sessions: the session's id, so that a logout ends what it opened
    session: str | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        """How queues, history and logs name this principal: `token:ci`, `oidc:alice`."""
        if self.kind is PrincipalKind.ANONYMOUS:
            return self.name
        return f"{self.kind.value}:{self.name}"


ANONYMOUS = Principal(name="anonymous", role=Role.ADMIN, kind=PrincipalKind.ANONYMOUS)


@dataclass(frozen=True)
class BrowserSession:
    """What a session cookie holds (signed, readable, holding no credential): which session, and
    the one credential it was made from. An API token session names the token by its SHA-256
    and carries no role: the role is the token's, read at each use. An OIDC session carries the
    name and role its token granted, and ends when that token does."""

    id: str
    kind: PrincipalKind
    #: the session's own end: login + AUTH_SESSION_SECONDS (OIDC: no later than the token's exp)
    expires_at: datetime
    csrf: str
    #: API token sessions: the token's SHA-256
    credential: str | None = None
    #: OIDC sessions: the subject and the role the token granted
    name: str = ""
    role: Role | None = None


@dataclass(frozen=True)
class ApiToken:
    """A stored API token: only its SHA-256 is ever kept."""

    name: str
    role: Role
    sha256: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    #: read-only entries from AUTH_TOKENS_FILE cannot be revoked through the API
    source: str = "store"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


#: a token's value never leaves the process that made it except once, to its owner
TOKEN_PREFIX = "qm_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_DURATION = re.compile(r"^(\d{1,5})([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def valid_token_name(name: str) -> bool:
    return _NAME.match(name) is not None


TOKEN_NAME_RULE = (
    "1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
)


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`; raises ValueError naming the accepted form."""
    match = _DURATION.match(text.strip())
    if match is None or int(match[1]) == 0:
        raise ValueError("must be a positive number followed by m, h, d or w, e.g. 30d")
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_tokens_file(text: str, created_at: datetime) -> list[ApiToken]:
    """`name role sha256` per line; `#` comments and blank lines skipped.

    Raises ValueError naming the line, so a bad Secret fails start-up instead of locking
    everyone out at the first request.
    """
    tokens: list[ApiToken] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"line {number}: expected 'name role sha256'")
        name, role, digest = parts
        if not valid_token_name(name):
            raise ValueError(f"line {number}: name must be {TOKEN_NAME_RULE}")
        if role not in Role.__members__.values():
            raise ValueError(f"line {number}: role must be viewer, operator or admin")
        if re.fullmatch(r"[0-9a-f]{64}", digest) is None:
            raise ValueError(f"line {number}: sha256 must be 64 lower-case hex digits")
        if name in seen:
            raise ValueError(f"line {number}: name {name!r} appears twice")
        seen.add(name)
        tokens.append(ApiToken(name, Role(role), digest, created_at, source="file"))
    return tokens
