"""Browser sessions: a signed, HttpOnly cookie naming one session and the credential it was made
from, plus its CSRF token.

The cookie holds no credential and, for an API token, no role: it names the token by its
SHA-256, and every request made with it resolves that very token again (its role, its expiry,
whether it was revoked — services/identity.py). An OIDC session carries the subject and role its
token granted and ends when that token does. Each session has an id, so that a logout can be
recorded in the store and refused by every replica. The cookie ends by itself after
AUTH_SESSION_SECONDS, checked against the clock the cookie's own end is written with.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from queue_manager.domain.identity import BrowserSession, Principal, PrincipalKind, Role
from queue_manager.ports import Clock

COOKIE = "qm_session"
CSRF_HEADER = "X-CSRF-Token"
#: the payload's version: cookies of an earlier form are refused (their holders log in again)
VERSION = 2


class Sessions:
    def __init__(self, secret: bytes, max_age_seconds: int, clock: Clock) -> None:
        self._serializer = URLSafeSerializer(secret, salt="queue-manager-session")
        self.max_age = max_age_seconds
        self._clock = clock

    def issue(self, principal: Principal) -> tuple[str, BrowserSession]:
        """A new session for a principal just authenticated with a credential."""
        ends = self._clock.now() + timedelta(seconds=self.max_age)
        if principal.kind is PrincipalKind.OIDC and principal.expires_at is not None:
            ends = min(ends, principal.expires_at)  # no role of its own once the token is gone
        session = BrowserSession(
            id=secrets.token_urlsafe(16),
            kind=principal.kind,
            expires_at=ends,
            csrf=secrets.token_urlsafe(24),
            credential=principal.credential if principal.kind is PrincipalKind.TOKEN else None,
            name=principal.name if principal.kind is PrincipalKind.OIDC else "",
            role=principal.role if principal.kind is PrincipalKind.OIDC else None,
        )
        payload = {
            "v": VERSION,
            "s": session.id,
            "k": session.kind.value,
            "x": ends.timestamp(),
            "c": session.csrf,
            "t": session.credential,
            "n": session.name,
            "r": session.role.value if session.role is not None else None,
        }
        return self._serializer.dumps(payload), session

    def read(self, cookie: str) -> BrowserSession | None:
        """None for a cookie that is forged, past its end, of an earlier form, or not ours."""
        try:
            data = self._serializer.loads(cookie)
            if data["v"] != VERSION:
                return None
            ends = datetime.fromtimestamp(float(data["x"]), UTC)
            if ends <= self._clock.now():
                return None
            role = data["r"]
            credential = data["t"]
            return BrowserSession(
                id=str(data["s"]),
                kind=PrincipalKind(data["k"]),
                expires_at=ends,
                csrf=str(data["c"]),
                credential=str(credential) if credential is not None else None,
                name=str(data["n"]),
                role=Role(role) if role is not None else None,
            )
        except (BadData, KeyError, ValueError, TypeError, OverflowError):
            return None
