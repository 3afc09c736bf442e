"""Browser sessions: the cookie's flags, the CSRF defence, logout, and revocation ending them."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support.service import Service

SINGLE = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-01"}


def _login(service: Service, token: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{service.url}/auth/login", json={"token": token}, headers=headers)


def test_login_sets_a_strict_httponly_cookie_secure_behind_https(
    secured: Callable[..., Service], admin_token: str
) -> None:
    service = secured()
    plain = _login(service, admin_token)
    assert plain.status_code == 200, plain.text
    cookie = plain.headers["set-cookie"]
    assert "qm_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    assert admin_token not in cookie  # the cookie names the principal, never the credential
    assert plain.json()["data"]["name"] == "root"
    behind_proxy = _login(service, admin_token, **{"X-Forwarded-Proto": "https"})
    assert "Secure" in behind_proxy.headers["set-cookie"]
    assert _login(service, "qm_not-a-token").status_code == 401


def test_cookie_mutations_need_the_same_origin_and_the_csrf_header(
    secured: Callable[..., Service], admin_token: str
) -> None:
    service = secured()
    with httpx.Client(base_url=service.url) as browser:
        csrf = browser.post("/auth/login", json={"token": admin_token}).json()["data"]["csrf_token"]
        assert browser.get("/queues").status_code == 200  # reads need no CSRF token
        me = browser.get("/auth/me").json()["data"]
        assert (me["name"], me["csrf_token"]) == ("root", csrf)
        host = service.url
        no_header = browser.post("/queues/start", json=SINGLE, headers={"Origin": host})
        assert no_header.status_code == 403
        cross_site = browser.post(
            "/queues/start",
            json=SINGLE,
            headers={"Origin": "https://evil.example", "X-CSRF-Token": csrf},
        )
        assert cross_site.status_code == 403
        assert browser.get("/queues").json()["data"] == []  # neither started anything
        ok = browser.post(
            "/queues/start", json=SINGLE, headers={"Origin": host, "X-CSRF-Token": csrf}
        )
        assert ok.status_code == 200, ok.text
        created = browser.get(f"/queues/{ok.json()['data']['queue_id']}").json()["data"]
        assert created["created_by"] == "token:root"
        browser.post("/auth/logout")
        assert browser.get("/queues").status_code == 401


def test_revoking_a_token_ends_its_sessions(
    secured: Callable[..., Service], admin_token: str
) -> None:
    service = secured()
    made = service.post("/auth/tokens", json={"name": "laptop", "role": "viewer"})
    token = made.json()["data"]["token"]
    with httpx.Client(base_url=service.url) as browser:
        assert browser.post("/auth/login", json={"token": token}).status_code == 200
        assert browser.get("/queues").status_code == 200
        assert service.delete("/auth/tokens/laptop").status_code == 200
        assert browser.get("/queues").status_code == 401
