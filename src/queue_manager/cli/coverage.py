"""`queue-manager coverage` and `queue-manager fill` (docs/coverage.md): the ledger as a
calendar strip per symbol, one coloured cell per day; a fill's plan, or the backfill it starts."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated, Any

import typer
from rich.text import Text

from queue_manager.cli.render import make_console, printable

#: one colour per state, as the dashboard's legend
STYLES = {
    "complete": "green",
    "partial": "yellow",
    "failed": "red",
    "running": "blue",
    "missing": "grey50",
    "expected_gap": "magenta",
}
CELL = "█"

Symbols = Annotated[list[str], typer.Argument(help="Symbols, e.g. BTCUSDT ETHUSDT.")]
Types = Annotated[
    list[str], typer.Option("--type", "-t", help="A data type such as api_candles_5m (repeat).")
]
From = Annotated[str, typer.Option("--from", help="The first day, YYYY-MM-DD.")]
To = Annotated[str, typer.Option("--to", help="The last day, YYYY-MM-DD.")]


def _days(run: dict[str, Any]) -> int:
    return (date.fromisoformat(run["to"]) - date.fromisoformat(run["from"])).days + 1


def strip(runs: list[dict[str, Any]], first: date, width: int) -> list[Text]:
    """The runs as lines of at most `width` cells, each line starting with its first day."""
    cells = [run["state"] for run in runs for _ in range(_days(run))]
    lines = []
    for start in range(0, len(cells), width):
        line = Text(f"{first + timedelta(days=start)} ")
        for state in cells[start : start + width]:
            line.append(CELL, style=STYLES.get(state, ""))
        lines.append(line)
    return lines


def legend() -> Text:
    text = Text()
    for state, style in STYLES.items():
        text.append(CELL, style=style)
        text.append(f" {state}  ")
    return text


def coverage(
    ctx: typer.Context,
    symbols: Symbols,
    types: Types,
    first: From,
    last: To,
    width: Annotated[int, typer.Option(min=7, max=400, help="Days per line.")] = 61,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Coverage per symbol and data type: a calendar strip, one coloured cell per day."""

    async def call() -> list[dict[str, Any]]:
        params = {"symbol": symbols, "type": types, "from": first, "to": last}
        async with ctx.obj.client() as api:
            envelope = await api.request("GET", "/coverage", params=params)
        rows: list[dict[str, Any]] = envelope["data"]["rows"]
        return rows

    rows = ctx.obj.run(call())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    console = make_console()
    start = date.fromisoformat(first)
    for row in rows:
        counts: dict[str, int] = {}
        for run in row["runs"]:
            counts[run["state"]] = counts.get(run["state"], 0) + _days(run)
        summary = ", ".join(f"{n} {state}" for state, n in counts.items())
        console.print(Text(f"{printable(row['symbol'])} {printable(row['type'])}", style="bold"))
        for line in strip(row["runs"], start, width):
            console.print(line)
        console.print(Text(f"  {summary}", style="dim"))
    console.print(legend())


def fill(
    ctx: typer.Context,
    symbols: Symbols,
    types: Types,
    first: From,
    last: To,
    chunk: Annotated[str, typer.Option(help="day, week or month.")] = "month",
    max_parallel: Annotated[int, typer.Option(min=1, max=100, help="Children at once.")] = 1,
    template: Annotated[
        str | None,
        typer.Option(
            help="What each child runs: a start request as JSON, without symbol and "
            "time_range (default: the single form of the one type)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; start nothing.")
    ] = False,
) -> None:
    """Fill the gaps: a backfill of only the missing, failed and partial days."""
    body: dict[str, Any] = {
        "symbols": symbols,
        "types": types,
        "time_range": f"{first}:{last}",
        "chunk": chunk,
        "max_parallel": max_parallel,
        "dry_run": dry_run,
    }
    if template is not None:
        try:
            body["template"] = json.loads(template)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--template: not JSON ({exc.msg})") from None

    async def call() -> dict[str, Any]:
        async with ctx.obj.client() as api:
            envelope: dict[str, Any] = await api.request("POST", "/coverage/fill", json=body)
        return envelope

    envelope = ctx.obj.run(call())
    data = envelope["data"]
    console = make_console()
    for piece in data["chunks"]:
        console.print(
            f"{printable(piece['symbol'])}  {printable(piece['type'])}  "
            f"{printable(piece['time_range'])}"
        )
    if dry_run:
        console.print(f"{len(data['chunks'])} chunks to fill (dry run: nothing started)")
    elif data["queue_id"] is None:
        console.print("Nothing to fill.")
    else:
        console.print(f"Backfill {data['queue_id']} started: {len(data['chunks'])} chunks")
