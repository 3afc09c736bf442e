"""/auth: log a browser in and out, say who is calling, manage API tokens (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from queue_manager.api.auth import identify, require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success
from queue_manager.api.sessions import COOKIE
from queue_manager.domain.errors import Unauthenticated
from queue_manager.domain.identity import ApiToken, Principal, Role, parse_duration

router = APIRouter(prefix="/auth", tags=["auth"])
Services = Annotated[Container, Depends(get_container)]
Viewer = Annotated[Principal, Depends(require(Role.VIEWER, "see who is calling"))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN, "manage API tokens"))]


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=8192, description="An API token or OIDC JWT")


class Me(BaseModel):
    name: str
    role: Role
    kind: str
    expires_at: datetime | None = None
    #: for cookie sessions: send it as X-CSRF-Token with every mutation
    csrf_token: str | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63, examples=["ci-nightly"])
    role: Role = Field(examples=["operator"])
    expires: str | None = Field(
        default=None, examples=["30d"], description="e.g. 90m, 12h, 30d, 2w"
    )

    @field_validator("expires")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class TokenInfo(BaseModel):
    name: str
    role: Role
    source: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenInfo:
        return cls(
            name=token.name,
            role=token.role,
            source=token.source,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
        )


class TokenCreated(TokenInfo):
    token: str = Field(description="Shown once; only its SHA-256 is stored")
    enforced: bool = Field(
        description="False while auth is disabled on this service: the token is stored, but "
        "every request is let in without one"
    )


def _me(principal: Principal, csrf: str | None = None) -> dict[str, Any]:
    return Me(
        name=principal.name,
        role=principal.role,
        kind=principal.kind.value,
        expires_at=principal.expires_at,
        csrf_token=csrf,
    ).model_dump(mode="json")


@router.post("/login", response_model=Envelope[Me], responses=error_responses(401, 403))
async def login(request: Request, services: Services, body: LoginBody) -> Response:
    """Trade a token for a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS)."""
    if not services.auth.enabled:
        raise Unauthenticated("auth is disabled on this service: no login needed")
    principal = await services.identity.authenticate(body.token)
    cookie, session = services.sessions.issue(principal)
    answer = success("Logged in", _me(principal, session.csrf))
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    answer.set_cookie(
        COOKIE,
        cookie,
        max_age=services.sessions.max_age,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )
    return answer


@router.post("/logout", response_model=Envelope[None], responses=error_responses(503))
async def logout(request: Request, services: Services) -> Response:
    """End the session: recorded in the store, so that a copy of the cookie is refused by every
    replica from now on (503, and the session still valid, when the store cannot record it)."""
    cookie = request.cookies.get(COOKIE)
    session = services.sessions.read(cookie) if cookie and services.auth.enabled else None
    if session is not None:
        await services.identity.end_session(session)
    answer = success("Logged out")
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return answer


@router.get("/me", response_model=Envelope[Me], responses=error_responses(401))
async def me(request: Request, services: Services) -> Response:
    caller = await identify(request, services)
    cookie = request.cookies.get(COOKIE)
    session = services.sessions.read(cookie) if cookie and services.auth.enabled else None
    return success("Caller", _me(caller.principal, session.csrf if session else None))


@router.get(
    "/tokens", response_model=Envelope[list[TokenInfo]], responses=error_responses(401, 403)
)
async def list_tokens(_: Admin, services: Services) -> Response:
    tokens = [TokenInfo.of(t).model_dump(mode="json") for t in await services.identity.list()]
    return success("Tokens", tokens)


@router.post(
    "/tokens", response_model=Envelope[TokenCreated], responses=error_responses(401, 403, 409)
)
async def create_token(
    _: Admin, services: Services, body: Annotated[TokenCreate, Body()]
) -> Response:
    expires_in = parse_duration(body.expires) if body.expires else None
    token, secret = await services.identity.create(body.name, body.role, expires_in)
    data = TokenCreated(
        **TokenInfo.of(token).model_dump(), token=secret, enforced=services.auth.enabled
    )
    return success("Token created", data.model_dump(mode="json"))


class Revoked(BaseModel):
    name: str


@router.delete(
    "/tokens/{name}",
    response_model=Envelope[Revoked],
    responses=error_responses(401, 403, 404, 409),
)
async def revoke_token(
    _: Admin, services: Services, name: Annotated[str, Path(min_length=1, max_length=63)]
) -> Response:
    await services.identity.revoke(name)
    return success("Token revoked", {"name": name})
