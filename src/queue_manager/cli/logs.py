"""`queue-manager logs ID STEP [-f]`: a step's output, as the service serves it."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import httpx
import typer

from queue_manager.cli.client import CliError, connection_problem, envelope_error


def logs(
    ctx: typer.Context,
    queue_id: Annotated[str, typer.Argument(help="The queue.")],
    step: Annotated[int, typer.Argument(min=0, max=63, help="The step's index.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the step ends.")
    ] = False,
    tail: Annotated[int | None, typer.Option(min=0, help="Only the last N lines.")] = None,
) -> None:
    """Print a step's log (its worker's output)."""
    params: dict[str, Any] = {"follow": str(follow).lower()}
    if tail is not None:
        params["tail"] = tail

    async def call() -> None:
        async with ctx.obj.client() as api:
            http: httpx.AsyncClient = api.http
            path = f"/queues/{queue_id}/steps/{step}/logs"
            try:
                async with http.stream("GET", path, params=params, timeout=None) as answer:
                    if answer.is_error:
                        await answer.aread()
                        raise envelope_error(_json(answer), answer.status_code)
                    async for chunk in answer.aiter_bytes():
                        sys.stdout.buffer.write(chunk)
                        sys.stdout.buffer.flush()
            except httpx.TransportError as exc:
                raise connection_problem(api.api_url, exc) from None

    ctx.obj.run(call())


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        raise CliError(f"HTTP {answer.status_code}: {answer.text[:200]}") from None
