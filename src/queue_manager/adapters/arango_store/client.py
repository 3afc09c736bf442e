"""The driver client, built so that no request is ever sent twice.

python-arango-async re-sends a request whenever the connection fails, up to three times per
host (`BaseConnection.process_request`) — including when the request had already reached the
server and only the answer was lost. For a write that means doing it twice: an event appended
twice, a lock taken twice, a transaction committed and then "committed" again. The store
decides about retries itself (`retry`), on fresh data; the driver must not.

So the host resolver gives each host one try (`max_tries` = number of hosts), and the HTTP
client lets a failure through as retryable only when the connection could not be opened — then
the request never left and the next coordinator may take it. A connection lost after the
request went out is `RequestOutcomeUnknown`, which the driver does not retry: the store reports
itself unavailable ("store unavailable", 503), and the caller decides again later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import aiohttp
from arangoasync import ArangoClient
from arangoasync.exceptions import ArangoClientError, ClientConnectionError
from arangoasync.http import AioHTTPClient
from arangoasync.request import Request
from arangoasync.resolver import HostResolver, SingleHostResolver
from arangoasync.response import Response

#: failures that happen before a byte of the request is sent
_NOT_SENT: Final = (
    aiohttp.ClientConnectorError,
    getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ClientConnectorError),
)


class RequestOutcomeUnknown(ArangoClientError):  # type: ignore[misc]  # untyped driver
    """The connection broke after the request was sent: it may or may not have been applied."""


class SendOnce(AioHTTPClient):  # type: ignore[misc]  # untyped driver
    async def send_request(self, session: Any, request: Request) -> Response:
        try:
            return await super().send_request(session, request)
        except ClientConnectionError as exc:
            if isinstance(exc.__cause__, _NOT_SENT):
                raise  # never reached the server: the next host may take it
            raise RequestOutcomeUnknown(
                f"the connection broke after the request was sent, so it may or may not have "
                f"been applied: {exc}"
            ) from exc


def one_try_per_host(hosts: int) -> HostResolver:
    """Stays on one coordinator (stream transactions live on the one that began them) and
    moves to the next only when it cannot be reached; never tries a host twice."""
    return SingleHostResolver(hosts, max_tries=hosts)


def make_client(
    hosts: Sequence[str], *, request_timeout: float, connect_timeout: float
) -> ArangoClient:
    http = SendOnce(
        timeout=aiohttp.ClientTimeout(total=request_timeout, sock_connect=connect_timeout)
    )
    resolver = one_try_per_host(len(hosts))
    return ArangoClient(hosts=list(hosts), host_resolver=resolver, http_client=http)
