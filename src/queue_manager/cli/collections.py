"""`queue-manager collection NAME`: one collection's lineage from the catalog (docs/api.md
"GET /collections/{name}"): the step that wrote it, from what, and the steps that read it."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from queue_manager.cli.render import make_console, printable


def collection(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The collection, e.g. btc_candles_5m_2024_06.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """A collection's producer (queue, step, when, its inputs) and who read it."""

    async def call() -> dict[str, Any]:
        async with ctx.obj.client() as api:
            envelope = await api.request("GET", f"/collections/{quote(name, safe='')}")
        data: dict[str, Any] = envelope["data"]
        return data

    info = ctx.obj.run(call())
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    producer = info["producer"]
    console = make_console()
    head = Text(printable(info["name"]), style="bold")
    head.append(f"  written {info['writes']} times, first {printable(info['first_written_at'])}")
    console.print(head)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("producer", f"queue {printable(producer['queue_id'])} step {producer['step']}")
    facts.add_row("", f"{printable(producer['target'])} {printable(producer['type'])}")
    facts.add_row("symbol", f"{printable(producer['symbol'])} {printable(producer['time_range'])}")
    facts.add_row("when", printable(producer["at"]))
    facts.add_row("records", str(producer.get("records_written", 0)))
    facts.add_row("inputs", printable(", ".join(producer.get("inputs") or [])) or "—")
    console.print(facts)
    consumers = info.get("consumers") or []
    if not consumers:
        console.print("No step has read it yet.")
        return
    table = Table(header_style="bold", show_edge=False, pad_edge=False, title="Read by")
    for column in ("QUEUE", "STEP", "TARGET", "TYPE", "WHEN"):
        table.add_column(column)
    for c in consumers:
        table.add_row(
            printable(c["queue_id"]),
            str(c["step"]),
            printable(c["target"]),
            printable(c["type"]),
            printable(c["at"]),
        )
    console.print(table)
