"""`queue-manager events ID [--follow]`: a queue's history (docs/api.md).

Following opens the queue's WebSocket first and reads the history after it, like `watch`, so no
event falls between the two; each update then fetches what was recorded after the last `seq`
printed, and a reconnect does the same, so nothing is missed or printed twice.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.text import Text

from queue_manager.cli.client import ApiClient, ws_url
from queue_manager.cli.render import format_time, make_console, printable, status_text
from queue_manager.cli.watch import follow as follow_socket

_ENDED = frozenset({"finished", "stopped", "error"})


def events(
    ctx: typer.Context,
    queue_id: Annotated[
        str, typer.Argument(help="The queue (its id or the id's first 6+ characters).")
    ],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until the queue ends.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print a queue's history: every transition of the queue and its steps, oldest first."""
    console = make_console()
    notices = make_console(stderr=True)

    def show(event: dict[str, Any]) -> None:
        if as_json:
            typer.echo(json.dumps(event))
            return
        line = Text(f"{event['seq']:>4}  {format_time(event.get('at'))}  ")
        line.append(f"{printable(event.get('kind', '')):<13} ")
        step = event.get("step")
        line.append(f"{'' if step is None else f'step {step}':<8}")
        if event.get("from") is not None:
            line.append_text(status_text(event["from"]))
            line.append(" -> ")
        line.append_text(status_text(event.get("to")))
        line.append(f"  {printable(event.get('actor', ''))}", style="dim")
        if event.get("message"):
            line.append(f"  {printable(event['message'])}")
        console.print(line)

    async def call() -> None:
        api: ApiClient
        async with ctx.obj.client() as api:
            full_id = await api.resolve(queue_id)
            path = f"/queues/{quote(full_id, safe='')}/events"
            last = 0
            ended = False

            async def fetch_new() -> bool:
                """Print what was recorded since the last event shown; True once it ended."""
                nonlocal last, ended
                while True:
                    params = {"limit": 1000, **({"cursor": str(last)} if last else {})}
                    envelope = await api.request("GET", path, params=params)
                    for event in envelope.get("data") or []:
                        show(event)
                        last = int(event["seq"])
                        if event.get("kind") == "queue.status":
                            ended = event.get("to") in _ENDED
                    if not envelope.get("next_cursor"):
                        return ended

            async def on_update(_: dict[str, Any]) -> bool:
                return await fetch_new()

            if not follow:
                await fetch_new()
                return
            await follow_socket(
                api.api_url,
                ws_url(api.api_url, full_id),
                on_open=fetch_new,
                on_update=on_update,
                notice=lambda text: notices.print(Text(printable(text), style="yellow")),
                headers=api.auth_headers,
            )

    ctx.obj.run(call())
