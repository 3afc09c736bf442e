"""A stand-in for ArangoDB's HTTP API, just enough of it (stream transactions and AQL cursors)
to watch what the ArangoDB store sends and to answer it with the errors a real server gives,
where no server can run. The real driver talks to it over real sockets; what a test checks is
the store's own decisions: which errors it runs again, what goes in one transaction, what it
never sends twice. The store contract suite checks the same against a real server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from queue_manager.adapters.arango_store.client import make_client
from queue_manager.adapters.arango_store.connection import Database
from queue_manager.adapters.arango_store.errors import ErrorScrubber

DATABASE = "qm"


@dataclass
class Call:
    """One request the server received: what and in which transaction."""

    method: str
    path: str
    trx: str | None
    query: str | None = None
    bind: dict[str, Any] = field(default_factory=dict)


#: what the server answers an AQL query: its rows, or an error number
Answer = list[Any] | int


@dataclass
class FakeArango:
    url: str
    calls: list[Call]
    #: decides each AQL query's answer from the query and its bind parameters
    answer: Callable[[str, dict[str, Any]], Answer]

    def committed(self) -> list[str]:
        return [c.path.rsplit("/", 1)[1] for c in self.calls if c.method == "PUT"]

    def aborted(self) -> list[str]:
        return [c.path.rsplit("/", 1)[1] for c in self.calls if c.method == "DELETE"]

    def queries(self) -> list[Call]:
        return [c for c in self.calls if c.query is not None]


def error(status: int, num: int) -> web.Response:
    body = {"error": True, "code": status, "errorNum": num, "errorMessage": f"error {num}"}
    return web.json_response(body, status=status)


#: the HTTP status ArangoDB answers each error number with
STATUS = {1200: 409, 1202: 404, 1210: 409}


@asynccontextmanager
async def fake_arango(answer: Callable[[str, dict[str, Any]], Answer]) -> AsyncIterator[FakeArango]:
    calls: list[Call] = []
    transactions = iter(range(1, 10_000))

    async def begin(request: web.Request) -> web.Response:
        calls.append(Call("POST", request.path, None))
        trx = str(next(transactions))
        return web.json_response({"result": {"id": trx, "status": "running"}}, status=201)

    async def end(request: web.Request) -> web.Response:
        calls.append(Call(request.method, request.path, request.match_info["trx"]))
        status = "committed" if request.method == "PUT" else "aborted"
        return web.json_response({"result": {"id": request.match_info["trx"], "status": status}})

    async def cursor(request: web.Request) -> web.Response:
        body = await request.json()
        call = Call(
            "POST",
            request.path,
            request.headers.get("x-arango-trx-id"),
            body["query"],
            body.get("bindVars", {}),
        )
        calls.append(call)
        result = answer(call.query or "", call.bind)
        if isinstance(result, int):
            return error(STATUS.get(result, 500), result)
        return web.json_response({"result": result, "hasMore": False}, status=201)

    app = web.Application()
    prefix = f"/_db/{DATABASE}/_api"
    app.router.add_post(f"{prefix}/transaction/begin", begin)
    app.router.add_route("PUT", f"{prefix}/transaction/{{trx}}", end)
    app.router.add_route("DELETE", f"{prefix}/transaction/{{trx}}", end)
    app.router.add_post(f"{prefix}/cursor", cursor)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield FakeArango(f"http://127.0.0.1:{port}", calls, answer)
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def database(*hosts: str, max_attempts: int = 5) -> AsyncIterator[Database]:
    """The store's `Database` on `hosts`, as the store opens it."""
    from arangoasync.auth import Auth

    client = make_client(list(hosts), request_timeout=5, connect_timeout=2)
    db = Database(ErrorScrubber("root", "pw", DATABASE), max_attempts)
    db.handle = await client.db(DATABASE, auth=Auth(username="root", password="pw"))
    try:
        yield db
    finally:
        await client.close()


@asynccontextmanager
async def dropping_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server that reads each request whole and closes the connection without answering:
    the request arrived, its answer is lost. Yields its URL and the requests it read."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        received.append(head + await reader.readexactly(length))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.close()
        await server.wait_closed()
