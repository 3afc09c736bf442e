"""How the ArangoDB store reports failures: every driver or network error leaves the adapter as
`DependencyUnavailable("store", ...)`, never with a password, and a refused login as one line
naming the settings to check."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import aiohttp
from arangoasync.exceptions import ArangoError, ArangoServerError

from queue_manager.domain.errors import DependencyUnavailable, DomainError

# ArangoDB error numbers (arangoasync.errno) and HTTP codes the store reacts to.
ERR_CONFLICT: Final = 1200  # write-write conflict (two transactions on one key)
ERR_DOCUMENT_NOT_FOUND: Final = 1202
ERR_DUPLICATE_NAME: Final = 1207  # collection / database created concurrently
ERR_UNIQUE: Final = 1210  # unique constraint violated (key already used)
ERR_DATABASE_NOT_FOUND: Final = 1228
HTTP_UNAUTHORIZED: Final = 401
HTTP_FORBIDDEN: Final = 403

#: what the driver and its transport raise; anything else is a bug and surfaces as itself
DRIVER_ERRORS: Final = (ArangoError, aiohttp.ClientError, TimeoutError, OSError)


def server_codes(exc: BaseException) -> tuple[int | None, int | None]:
    """(HTTP status, ArangoDB errorNum) of a server error, else (None, None)."""
    if isinstance(exc, ArangoServerError):
        http = getattr(exc, "http_code", None)
        err = getattr(exc, "error_code", None)
        return (http if isinstance(http, int) else None, err if isinstance(err, int) else None)
    return None, None


class Rejected(DependencyUnavailable):
    """The server refused our credentials."""


class ErrorScrubber:
    """Turns driver errors into the store's errors, with the credentials taken out."""

    def __init__(self, username: str, password: str, database: str) -> None:
        self._username = username
        self._password = password
        self._database = database

    def scrub(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
        # credentials embedded in a URL (http://user:pass@host)
        return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)

    def unavailable(self, action: str, exc: BaseException) -> DependencyUnavailable:
        detail = str(exc) or type(exc).__name__
        http, _ = server_codes(exc)
        if http in (HTTP_UNAUTHORIZED, HTTP_FORBIDDEN):
            detail = (
                f"ArangoDB rejected user '{self._username}' on database '{self._database}' "
                f"(HTTP {http}): check ARANGO_USER / ARANGO_PASSWORD and the user's access"
            )
            return Rejected("store", self.scrub(f"{action}: {detail}"))
        return DependencyUnavailable("store", self.scrub(f"{action}: {detail}"))

    @asynccontextmanager
    async def guard(self, action: str) -> AsyncIterator[None]:
        """Every driver failure inside becomes DependencyUnavailable("store")."""
        try:
            yield
        except DomainError:
            raise
        except DRIVER_ERRORS as exc:
            raise self.unavailable(action, exc) from None
