"""The service with OIDC_ISSUER: people's tokens from the suite's own issuer, end to end."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.oidc_issuer import AUDIENCE, Issuer, running_issuer
from tests.support.service import Service

SINGLE = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-01"}


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        yield running


def test_people_sign_in_with_the_issuer_and_get_the_role_their_groups_map_to(
    secured: Callable[..., Service], issuer: Issuer
) -> None:
    service = secured(
        OIDC_ISSUER=issuer.url,
        OIDC_AUDIENCE=AUDIENCE,
        OIDC_ROLES_CLAIM="groups",
        OIDC_ROLE_MAP="platform-ops=operator,traders=viewer",
    )

    def call(token: str, method: str, path: str, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, service.url + path, headers=headers, timeout=10, **kw)  # type: ignore[arg-type]

    ops = issuer.token("olga", groups=["platform-ops"])
    started = call(ops, "POST", "/queues/start", json=SINGLE)
    assert started.status_code == 200, started.text
    queue_id = started.json()["data"]["queue_id"]
    assert call(ops, "GET", f"/queues/{queue_id}").json()["data"]["created_by"] == "oidc:olga"

    trader = issuer.token("tom", groups="traders")
    assert call(trader, "GET", "/queues").status_code == 200
    refused = call(trader, "POST", "/queues/stop", params={"queue_id": queue_id})
    assert refused.status_code == 403
    assert refused.json()["message"] == "operator role required to stop a queue"

    wrong_audience = issuer.token("eve", groups=["platform-ops"], aud="x")
    assert call(wrong_audience, "GET", "/queues").status_code == 401
    me = call(ops, "GET", "/auth/me").json()["data"]
    assert (me["name"], me["role"], me["kind"]) == ("olga", "operator", "oidc")
