"""`queue-manager rate-limits`: each rate-limit group, open or closed (docs/api.md
"GET /rate-limits")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from queue_manager.cli.render import make_console, printable


def rate_limits(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the groups as JSON.")] = False,
) -> None:
    """Each rate-limit group: open (its steps wait) until when and why, or closed."""

    async def call() -> list[dict[str, Any]]:
        async with ctx.obj.client() as api:
            envelope = await api.request("GET", "/rate-limits")
        data: list[dict[str, Any]] = envelope["data"]
        return data

    groups = ctx.obj.run(call())
    if as_json:
        typer.echo(json.dumps(groups, indent=2))
        return
    table = Table(header_style="bold", show_edge=False, pad_edge=False)
    for column in ("GROUP", "STATE", "UNTIL", "REASON", "PATTERNS"):
        table.add_column(column)
    now = datetime.now(UTC)
    for group in groups:
        if group["open"]:
            until = datetime.fromisoformat(group["until"])
            left = max((until - now).total_seconds(), 0.0)
            state = Text("open", style="bold red")
            when = f"{printable(group['until'])} (in {left:.0f} s)"
        else:
            state, when = Text("closed", style="green"), ""
        table.add_row(
            printable(group["group"]),
            state,
            when,
            printable(group.get("reason") or ""),
            printable(", ".join(group.get("patterns") or [])),
        )
    if not groups:
        make_console().print("No rate-limit groups (RATE_LIMIT_GROUPS is {}).")
        return
    make_console().print(table)
