"""Browser sessions: a signed, HttpOnly cookie naming the principal, plus its CSRF token.

The cookie holds no credential, only who logged in and with what role; every request made with
it re-checks that the credential behind it (an API token, an OIDC login) is still valid, so a
revoked token ends its sessions too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeTimedSerializer

from queue_manager.domain.identity import Principal, PrincipalKind, Role

COOKIE = "qm_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str


class Sessions:
    def __init__(self, secret: bytes, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="queue-manager-session")
        self.max_age = max_age_seconds

    def issue(self, principal: Principal) -> tuple[str, Session]:
        session = Session(principal, secrets.token_urlsafe(24))
        expires = principal.expires_at.timestamp() if principal.expires_at else None
        payload = {
            "n": principal.name,
            "r": principal.role.value,
            "k": principal.kind.value,
            "e": expires,
            "c": session.csrf,
        }
        return self._serializer.dumps(payload), session

    def read(self, cookie: str) -> Session | None:
        """None for a cookie that is forged, too old, or not ours."""
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
            expires = data["e"]
            principal = Principal(
                name=str(data["n"]),
                role=Role(data["r"]),
                kind=PrincipalKind(data["k"]),
                expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
            )
            return Session(principal, str(data["c"]))
        except (BadSignature, KeyError, ValueError, TypeError):
            return None
