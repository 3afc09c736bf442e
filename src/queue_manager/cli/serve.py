"""`queue-manager serve`: the service under uvicorn, configured from the environment
(docs/operations.md).

Start-up goes in an order that keeps a bad setting from doing anything: the settings are read
and checked (a missing or malformed one: exit 2 with one line `cannot start: NAME: ...`, never
a traceback), the app is built (a backend without its settings: the same), the port is bound,
and only then does the service start its work and listen.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import typer
import uvicorn

# Upper bound on how long SIGTERM waits for open requests and sockets before shutting down.
GRACEFUL_SHUTDOWN_SECONDS = 10
# uvicorn's own default (or WS_IDLE_SECONDS when shorter); the timeout is WS_IDLE_SECONDS.
WS_PING_INTERVAL_SECONDS = 20.0


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn re-raises the signal that stopped it once it has shut down; by then we're done."""


class _Server(uvicorn.Server):
    """uvicorn on sockets bound beforehand, saying where it listens once it does (uvicorn says
    so only for the sockets it binds itself)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            for sock in sockets or []:
                where, port = sock.getsockname()[:2]
                shown = f"[{where}]" if sock.family == socket.AF_INET6 else where
                logging.getLogger("uvicorn.error").info(
                    "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port
                )


def _misconfigured(message: object) -> NoReturn:
    """A bad setting: one line, exit 2."""
    typer.echo(f"cannot start: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(2)


def _failed(message: object) -> NoReturn:
    """Anything else that keeps the service from starting: one line, exit 1."""
    typer.echo(f"error: cannot start queue-manager: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(1)


def _inside(path: object, directory: Path) -> bool:
    where, top = Path(str(path)).absolute(), directory.absolute()
    return where == top or top in where.parents


def _addresses(host: str, port: int) -> list[Any]:
    """Where HOST:PORT listens, as asyncio would bind it. A HOST that names no address, or none
    of this machine, is a bad setting: told apart here without taking PORT (each address is
    tried on a port of the system's choosing, let go at once)."""
    rule = "must be an address or a host name of this machine"
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else exc
        _misconfigured(f"HOST: {rule} ({host!r}: {reason})")
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind((address[0], 0, *address[2:]))
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    _misconfigured(f"HOST: {rule} ({host!r}: {exc.strerror})")
    return found


def _bind(host: str, port: int, addresses: list[Any]) -> list[socket.socket]:
    """The listening sockets, bound (not yet listening) before anything starts: a port in use
    or an address not of this machine stops start-up here, before any work begins."""
    bound: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in bound:
            sock.close()
        _failed(f"cannot listen on {host}:{port}: {exc.strerror}")
    return bound


def serve(host: str | None, port: int | None) -> None:
    # Imported here: the client commands must not pay for the service's imports.
    from queue_manager.domain.errors import Misconfigured
    from queue_manager.settings import load_settings

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        settings = load_settings(**overrides)
    except Misconfigured as exc:
        _misconfigured(exc)
    addresses = _addresses(settings.host, settings.port)

    from queue_manager.app import configure_logging, create_app
    from queue_manager.domain.errors import DomainError

    configure_logging(settings)
    try:
        app = create_app(settings)
    except Misconfigured as exc:
        _misconfigured(exc)
    except OSError as exc:
        if exc.filename and _inside(exc.filename, settings.data_dir):
            rule = "must be a directory the service can create and write"
            _misconfigured(f"DATA_DIR: {rule} ({exc.filename}: {exc.strerror})")
        _failed(exc)
    except DomainError as exc:
        _failed(exc)
    sockets = _bind(settings.host, settings.port, addresses)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        # Compressing every small update costs more CPU than it saves bandwidth on fan-out.
        ws_per_message_deflate=False,
        # uvicorn pings every socket; one that answers no ping within WS_IDLE_SECONDS is closed
        # (1011), the same bound as the hub's rule for a send blocked that long (1013).
        ws_ping_interval=min(WS_PING_INTERVAL_SECONDS, settings.ws_idle_seconds),
        ws_ping_timeout=settings.ws_idle_seconds,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _Server(config)
    # uvicorn handles SIGINT/SIGTERM itself (stop accepting, drain, run the lifespan shutdown),
    # then re-raises the signal against the handlers it found; make those a no-op so a graceful
    # stop ends with exit code 0 instead of a KeyboardInterrupt or a death by SIGTERM.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=sockets)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise typer.Exit(1)
