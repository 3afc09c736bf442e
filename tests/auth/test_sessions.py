"""Browser sessions: the cookie's flags, the CSRF defence, logout, and revocation ending them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from queue_manager.api.sessions import COOKIE
from tests.support.service import Service, wait_for

#: AUTH_REFRESH_SECONDS (1 s in these tests) plus a margin
LOGOUT_DEADLINE = 5.0
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


def _replay(
    service: Service, cookie: str, csrf: str, method: str = "GET", path: str = "/auth/me", **kw: Any
) -> httpx.Response:
    """A request carrying a saved session cookie, as its same-origin page would send it."""
    headers = {"Cookie": f"{COOKIE}={cookie}", "Origin": service.url, "X-CSRF-Token": csrf}
    return httpx.request(method, service.url + path, headers=headers, timeout=10, **kw)


def _session(service: Service, token: str) -> tuple[str, str]:
    login = httpx.post(f"{service.url}/auth/login", json={"token": token}, timeout=10)
    assert login.status_code == 200, login.text
    return login.cookies[COOKIE], login.json()["data"]["csrf_token"]


def test_a_logged_out_session_is_refused_by_every_replica_and_after_a_restart(
    secured: Callable[..., Service], admin_token: str
) -> None:
    """Issue 27 (1): logout used to clear the browser's cookie only; a saved copy stayed admin."""
    first, second = secured(), secured()
    cookie, csrf = _session(first, admin_token)
    assert _replay(second, cookie, csrf).status_code == 200  # one session, every replica
    assert _replay(first, cookie, csrf, "POST", "/auth/logout").status_code == 200
    assert _replay(first, cookie, csrf).status_code == 401
    made = _replay(first, cookie, csrf, "POST", "/auth/tokens", json={"name": "x", "role": "admin"})
    assert made.status_code == 401
    wait_for(lambda: _replay(second, cookie, csrf).status_code == 401, LOGOUT_DEADLINE)
    first.stop()
    restarted = secured()  # the same store
    assert _replay(restarted, cookie, csrf).status_code == 401


def test_a_session_is_bound_to_its_token_not_to_the_token_name(
    secured: Callable[..., Service],
) -> None:
    """Issue 27 (2): a viewer token re-created under a revoked admin token's name must not bring
    the old admin session back."""
    service = secured()
    made = service.post("/auth/tokens", json={"name": "sess-adm", "role": "admin"})
    cookie, csrf = _session(service, made.json()["data"]["token"])
    assert _replay(service, cookie, csrf).json()["data"]["role"] == "admin"
    assert service.delete("/auth/tokens/sess-adm").status_code == 200
    again = service.post("/auth/tokens", json={"name": "sess-adm", "role": "viewer"})
    assert again.status_code == 200, again.text
    assert _replay(service, cookie, csrf).status_code == 401
    escalate = {"name": "sess-adm-2", "role": "admin"}
    assert _replay(service, cookie, csrf, "POST", "/auth/tokens", json=escalate).status_code == 401
    viewer_cookie, viewer_csrf = _session(service, again.json()["data"]["token"])
    assert _replay(service, viewer_cookie, viewer_csrf).json()["data"]["role"] == "viewer"
