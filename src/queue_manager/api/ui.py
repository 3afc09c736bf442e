"""The dashboard (docs/dashboard.md): static ES modules at /ui/, `/` redirects there.

The page holds no data of its own; everything it shows comes from the API with the caller's
credential, so its files are public, as the login form must be. `/ui/config.json` tells the page
whether to ask for a login and, with OIDC configured, where people sign in (public facts: the
issuer's URL and queue-manager's client id).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import success

router = APIRouter(include_in_schema=False)
Services = Annotated[Container, Depends(get_container)]

PREFIX = "/ui"
_SAFE_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    # revalidate every time (ETag): a new release is picked up on the next load
    b"cache-control": b"no-cache",
}


def _csp(issuer: str | None) -> str:
    """Scripts and styles from this origin only; the issuer may be fetched for SSO."""
    connect = "'self'"
    if issuer is not None:
        parts = urlsplit(issuer)
        connect += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


@router.get("/")
async def root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get(f"{PREFIX}/config.json")
async def config(services: Services) -> Response:
    settings = services.settings
    oidc = None
    if settings.oidc_issuer is not None and settings.oidc_audience:
        oidc = {"issuer": settings.oidc_issuer, "client_id": settings.oidc_audience}
    return success("Dashboard configuration", {"auth": services.auth.enabled, "oidc": oidc})


class DashboardFiles(StaticFiles):
    """The page's files, with the headers a page that holds a session should carry."""

    def __init__(self, issuer: str | None) -> None:
        super().__init__(packages=[("queue_manager.ui", "static")], html=True)
        self._headers = {**_SAFE_HEADERS, b"content-security-policy": _csp(issuer).encode()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k not in self._headers]
                message["headers"] = kept + list(self._headers.items())
            await send(message)

        await super().__call__(scope, receive, with_headers)


def files(issuer: str | None) -> DashboardFiles:
    return DashboardFiles(issuer)
