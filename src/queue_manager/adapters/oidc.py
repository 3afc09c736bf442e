"""OIDC bearer tokens: a JWT verified against the issuer's published keys (PyJWT).

The issuer's discovery document is read on first use (so the service starts while the issuer is
down), the JWKS is cached by PyJWT and fetched again when a token names a key id it does not
know, which is how a rotated key is picked up without a restart. Only asymmetric algorithms are
accepted, so neither `alg=none` nor an HMAC token "signed" with the public key can pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import structlog

from queue_manager.domain.errors import DependencyUnavailable, PermissionDenied, Unauthenticated
from queue_manager.domain.identity import Principal, PrincipalKind, Role

log = structlog.get_logger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    roles_claim: str = "roles"
    #: claim value -> role; the role names themselves always map to themselves
    role_map: Mapping[str, Role] = field(default_factory=dict)
    timeout: float = 5.0
    #: a token naming an unknown key id fetches the JWKS again at most this often, so a flood of
    #: made-up key ids cannot turn into a flood of requests to the issuer
    jwks_cooldown_seconds: float = 5.0


class OidcVerifier:
    name = "oidc"

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()
        self._roles: dict[str, Role] = {r.value: r for r in Role} | dict(config.role_map)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted")
        client = await self._client()
        try:
            key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise DependencyUnavailable("oidc", f"cannot fetch the issuer's keys: {exc}") from None
        except jwt.PyJWKClientError:
            raise Unauthenticated("token signed by a key the issuer does not publish") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token lacks the {exc.claim} claim") from None
        except jwt.PyJWTError:
            raise Unauthenticated("token signature is not valid") from None
        return Principal(
            name=str(claims["sub"]),
            role=self._role(claims),
            kind=PrincipalKind.OIDC,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )

    def _role(self, claims: dict[str, Any]) -> Role:
        values = claims.get(self.config.roles_claim)
        if isinstance(values, str):
            values = values.replace(",", " ").split()
        granted = [self._roles[v] for v in values or [] if isinstance(v, str) and v in self._roles]
        if not granted:
            raise PermissionDenied("viewer", "use this service (no role in the token)")
        return max(granted, key=lambda r: r.rank)

    async def _client(self) -> jwt.PyJWKClient:
        if self._jwks is not None:
            return self._jwks
        async with self._lock:
            if self._jwks is None:
                self._jwks = jwt.PyJWKClient(
                    await self._jwks_uri(),
                    cache_jwk_set=True,
                    lifespan=300,
                    timeout=self.config.timeout,
                    cooldown_duration=self.config.jwks_cooldown_seconds,
                )
        return self._jwks

    async def _jwks_uri(self) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(timeout=self.config.timeout) as http:
                answer = await http.get(url)
                answer.raise_for_status()
                uri = answer.json().get("jwks_uri")
        except (httpx.HTTPError, ValueError) as exc:
            raise DependencyUnavailable("oidc", f"cannot read {url}: {exc}") from None
        if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
            raise DependencyUnavailable("oidc", f"{url} names no jwks_uri")
        log.info("oidc issuer discovered", issuer=self.config.issuer, jwks_uri=uri)
        return uri

    async def close(self) -> None:
        self._jwks = None
