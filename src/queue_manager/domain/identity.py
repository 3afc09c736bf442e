"""Who is asking, and what their role lets them do (docs/security.md).

Roles are ordered: each includes everything the ones below it may do. The domain knows roles and
principals only; how a credential becomes a principal (API token, OIDC, session cookie) is the
services' and the adapters' business, and how a refusal is answered is the API's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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

    @property
    def actor(self) -> str:
        """How history and logs name this principal: `api:<name>`."""
        return f"api:{self.name}"


ANONYMOUS = Principal(name="anonymous", role=Role.ADMIN, kind=PrincipalKind.ANONYMOUS)


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
