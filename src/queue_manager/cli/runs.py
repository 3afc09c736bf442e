"""`queue-manager retry` and `resubmit`: run an ended queue again (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from queue_manager.cli.render import make_console, printable, status_text

QueueId = Annotated[str, typer.Argument(help="The queue (its id or the id's first 6+ characters).")]


def retry(
    ctx: typer.Context,
    queue_id: QueueId,
    from_step: Annotated[
        int | None,
        typer.Option(min=0, max=63, help="Also re-run this step and everything downstream."),
    ] = None,
) -> None:
    """Run again what did not finish in an error or stopped queue; finished steps are kept."""
    params = {"from_step": from_step} if from_step is not None else None

    async def call() -> dict[str, Any]:
        async with ctx.obj.client() as api:
            full_id = await api.resolve(queue_id)
            envelope = await api.request("POST", f"/queues/{full_id}/retry", params=params)
        data: dict[str, Any] = envelope["data"]
        return data

    data = ctx.obj.run(call())
    line = Text(f"Queue {printable(data['queue_id'])} retried → ")
    line.append_text(status_text(data["status"]))
    make_console().print(line)


def resubmit(ctx: typer.Context, queue_id: QueueId) -> None:
    """Start a new queue from the same request as an ended one; prints the new id."""

    async def call() -> dict[str, Any]:
        async with ctx.obj.client() as api:
            full_id = await api.resolve(queue_id)
            envelope = await api.request("POST", f"/queues/{full_id}/resubmit")
        data: dict[str, Any] = envelope["data"]
        return data

    typer.echo(ctx.obj.run(call())["queue_id"])
