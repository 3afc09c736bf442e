"""`queue-manager serve`: the service under uvicorn, configured from the environment
(docs/operations.md)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import typer

# Upper bound on how long SIGTERM waits for open requests and sockets before shutting down.
GRACEFUL_SHUTDOWN_SECONDS = 10
# uvicorn's own default (or WS_IDLE_SECONDS when shorter); the timeout is WS_IDLE_SECONDS.
WS_PING_INTERVAL_SECONDS = 20.0


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn re-raises the signal that stopped it once it has shut down; by then we're done."""


def serve(host: str | None, port: int | None) -> None:
    # Imported here: the client commands must not pay for the service's imports.
    from pydantic import ValidationError

    from queue_manager.settings import Settings, describe_error

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        typer.echo(describe_error(exc), err=True)
        raise typer.Exit(2) from None

    import uvicorn

    from queue_manager.app import configure_logging, create_app
    from queue_manager.domain.errors import DomainError, Misconfigured

    configure_logging(settings)
    try:
        app = create_app(settings)
    except Misconfigured as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(2) from None
    except (OSError, DomainError) as exc:
        typer.echo(f"error: cannot start queue-manager: {exc}", err=True)
        raise typer.Exit(1) from None

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
    server = uvicorn.Server(config)
    # uvicorn handles SIGINT/SIGTERM itself (stop accepting, drain, run the lifespan shutdown),
    # then re-raises the signal against the handlers it found; make those a no-op so a graceful
    # stop ends with exit code 0 instead of a KeyboardInterrupt or a death by SIGTERM.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise typer.Exit(1)
