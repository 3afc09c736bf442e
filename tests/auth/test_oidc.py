"""OIDC bearer tokens, verified against the suite's own issuer (a real HTTP server and keys)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator

import jwt
import pytest

from queue_manager.adapters.oidc import OidcConfig, OidcVerifier
from queue_manager.domain.errors import DependencyUnavailable, PermissionDenied, Unauthenticated
from queue_manager.domain.identity import PrincipalKind, Role
from tests.support.oidc_issuer import AUDIENCE, Issuer, SigningKey, running_issuer


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
async def verifier(issuer: Issuer) -> AsyncIterator[OidcVerifier]:
    config = OidcConfig(
        issuer=issuer.url,
        audience=AUDIENCE,
        role_map={"qm-admins": Role.ADMIN},
        jwks_cooldown_seconds=0,  # the rotation test rotates right after the first fetch
    )
    verifier = OidcVerifier(config)
    yield verifier
    await verifier.close()


async def test_a_valid_token_gives_its_subject_and_highest_role(
    issuer: Issuer, verifier: OidcVerifier
) -> None:
    principal = await verifier.verify(issuer.token("alice@example.com", ["viewer", "qm-admins"]))
    assert (principal.name, principal.role, principal.kind) == (
        "alice@example.com",
        Role.ADMIN,
        PrincipalKind.OIDC,
    )
    assert principal.expires_at is not None


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "another-service"}, "token is for another audience"),
        ({"iss": "https://evil.example"}, "token is from another issuer"),
        ({"exp": int(time.time()) - 3600}, "token expired"),
        ({"nbf": int(time.time()) + 3600}, "token not valid yet"),
        ({"exp": None}, "token lacks the exp claim"),
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "not-yet-valid", "no-expiry"],
)
async def test_claims_that_do_not_hold_are_refused(
    issuer: Issuer, verifier: OidcVerifier, claims: dict[str, object], reason: str
) -> None:
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(issuer.token(**claims))  # type: ignore[arg-type]
    assert refused.value.reason == reason


def _unsigned(issuer: Issuer, alg: str) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    return f"{part({'alg': alg, 'kid': issuer.key.kid})}.{part(claims)}."


async def test_alg_none_is_refused(issuer: Issuer, verifier: OidcVerifier) -> None:
    with pytest.raises(Unauthenticated, match="algorithm 'none' is not accepted"):
        await verifier.verify(_unsigned(issuer, "none"))


async def test_an_hmac_token_keyed_with_the_public_key_is_refused(
    issuer: Issuer, verifier: OidcVerifier
) -> None:
    """The classic RS/HS confusion: the attacker knows the public key and signs with HMAC."""
    public_pem = issuer.published[0].jwk()["n"]
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    forged = jwt.encode(claims, public_pem, algorithm="HS256", headers={"kid": issuer.key.kid})
    with pytest.raises(Unauthenticated, match="algorithm 'HS256' is not accepted"):
        await verifier.verify(forged)


async def test_a_token_signed_by_another_key_is_refused(
    issuer: Issuer, verifier: OidcVerifier
) -> None:
    stranger = SigningKey(issuer.key.kid, SigningKey.generate().private)  # same kid, other key
    with pytest.raises(Unauthenticated, match="signature is not valid"):
        await verifier.verify(issuer.token(key=stranger))
    with pytest.raises(Unauthenticated, match="a key the issuer does not publish"):
        await verifier.verify(issuer.token(key=SigningKey.generate()))


async def test_a_rotated_key_is_picked_up_without_a_restart(
    issuer: Issuer, verifier: OidcVerifier
) -> None:
    old = issuer.token()
    assert (await verifier.verify(old)).role is Role.OPERATOR
    issuer.rotate()
    assert (await verifier.verify(issuer.token(roles="viewer"))).role is Role.VIEWER
    assert issuer.jwks_fetches == 2
    with pytest.raises(Unauthenticated):
        await verifier.verify(old)  # its key is no longer published


async def test_a_token_without_a_known_role_is_forbidden(
    issuer: Issuer, verifier: OidcVerifier
) -> None:
    with pytest.raises(PermissionDenied):
        await verifier.verify(issuer.token(roles=["marketing"]))


async def test_an_unreachable_issuer_is_a_dependency_down_not_a_bad_token() -> None:
    verifier = OidcVerifier(OidcConfig(issuer="http://127.0.0.1:9", audience=AUDIENCE))
    with pytest.raises(DependencyUnavailable):
        await verifier.verify(Issuer().token())
