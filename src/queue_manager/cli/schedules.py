"""`queue-manager schedule …` (create, list, show, runs, update, pause, resume, delete) and
`queue-manager backfill` (docs/schedules.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from queue_manager.cli.client import ApiClient, CliError, read_body
from queue_manager.cli.render import format_time, make_console, printable

app = typer.Typer(
    name="schedule",
    help="Recurring runs: create, list, show, runs, update, pause, resume, delete.",
    no_args_is_help=True,
)

Connect = Callable[[typer.Context], ApiClient]
Run = Callable[[Coroutine[Any, Any, Any]], Any]
Name = Annotated[str, typer.Argument(help="The schedule's name, e.g. nightly-candles.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's data as JSON.")]
_OUTCOME_STYLES = {"started": "green", "skipped": "yellow", "missed": "red"}
Cron = Annotated[str | None, typer.Option(help="5 fields, e.g. '15 0 * * *'.")]
Timezone = Annotated[str | None, typer.Option(help="IANA, e.g. Europe/London.")]
TemplateType = Annotated[
    str | None, typer.Option("--type", help="The template's type, e.g. api_candles_5m.")
]
Window = Annotated[
    str | None, typer.Option(help="1d = the day before the tick, 1M = the previous month.")
]
Policy = Annotated[
    str | None, typer.Option("--concurrency-policy", help="Allow, Forbid or Replace.")
]
Catchup = Annotated[str | None, typer.Option(help="none, latest or all.")]
File = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="The JSON body; '-' reads stdin.", dir_okay=False),
]


def _call(ctx: typer.Context, method: str, path: str, **kw: Any) -> Any:
    connect: Connect = ctx.obj.client
    run: Run = ctx.obj.run

    async def call() -> Any:
        async with connect(ctx) as api:
            return (await api.request(method, path, **kw))["data"]

    return run(call())


def _body(file: Path | None, what: str) -> dict[str, Any]:
    if file is None:
        return {}
    try:
        return read_body(file, what)
    except CliError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exc.code) from None


@app.command()
def create(
    ctx: typer.Context,
    name: Name,
    file: File = None,
    cron: Cron = None,
    timezone: Timezone = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Repeat for several symbols.")
    ] = None,
    type_: TemplateType = None,
    window: Window = None,
    policy: Policy = None,
    catchup: Catchup = None,
) -> None:
    """Create a schedule from --file (the body of POST /schedules) and/or flags."""
    body = _body(file, "POST /schedules")
    body["name"] = name
    template = dict(body.get("template") or {})
    if type_ is not None:
        template["type"] = type_
    if window is not None:
        template["window"] = window
    if template:
        body["template"] = template
    for key, value in (
        ("cron", cron),
        ("timezone", timezone),
        ("symbols", [s.upper() for s in symbol] if symbol else None),
        ("concurrency_policy", policy),
        ("catchup", catchup),
    ):
        if value is not None:
            body[key] = value
    created = _call(ctx, "POST", "/schedules", json=body)
    make_console(stderr=True).print(
        f"schedule {printable(created['name'])} created; "
        f"next run {format_time(created['next_run'])}"
    )


@app.command("list")
def list_schedules(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every schedule with its rhythm, symbols, policies and next run."""
    found = _call(ctx, "GET", "/schedules")
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("name", "cron", "timezone", "symbols", "policy", "catchup", "next run"):
        table.add_column(column)
    for s in found:
        table.add_row(
            *map(
                printable,
                (
                    s["name"],
                    s["cron"],
                    s["timezone"],
                    ",".join(s["symbols"]),
                    s["concurrency_policy"],
                    s["catchup"],
                ),
            ),
            "paused" if s["paused"] else format_time(s["next_run"]),
        )
    make_console().print(table)


@app.command()
def show(ctx: typer.Context, name: Name) -> None:
    """One schedule as JSON."""
    typer.echo(json.dumps(_call(ctx, "GET", f"/schedules/{name}"), indent=2))


@app.command()
def runs(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: AsJson = False,
) -> None:
    """What became of its latest ticks: started (with the queues), skipped or missed."""
    decided = _call(ctx, "GET", f"/schedules/{name}/runs", params={"limit": limit})
    if as_json:
        typer.echo(json.dumps(decided, indent=2))
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("tick", "outcome", "queues", "why"):
        table.add_column(column)
    for r in decided:
        table.add_row(
            format_time(r["scheduled_for"]),
            Text(printable(r["outcome"]), style=_OUTCOME_STYLES.get(r["outcome"], "")),
            printable(" ".join(q[:8] for q in r["queue_ids"]) or "-"),
            printable(r.get("reason")),
        )
    make_console().print(table)


def _toggle(ctx: typer.Context, name: str, verb: str) -> None:
    _call(ctx, "POST", f"/schedules/{name}/{verb}")
    make_console(stderr=True).print(f"schedule {name} {verb}d")


@app.command()
def pause(ctx: typer.Context, name: Name) -> None:
    """No tick runs until resumed; runs already started go on."""
    _toggle(ctx, name, "pause")


@app.command()
def resume(ctx: typer.Context, name: Name) -> None:
    """Ticks from now on run; those of the pause are not caught up."""
    _toggle(ctx, name, "resume")


@app.command()
def update(
    ctx: typer.Context,
    name: Name,
    file: File = None,
    cron: Cron = None,
    timezone: Timezone = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option("--symbol", help="Repeat for several; replaces the list."),
    ] = None,
    type_: TemplateType = None,
    window: Window = None,
    policy: Policy = None,
    catchup: Catchup = None,
    deadline: Annotated[
        int | None,
        typer.Option("--starting-deadline", help="Seconds a late tick may still start."),
    ] = None,
) -> None:
    """Change a schedule (PATCH /schedules/NAME): only what is given changes. --type and
    --window change those keys of its template and keep the rest; --file is a PATCH body."""
    body = _body(file, "PATCH /schedules/NAME")
    if type_ is not None or window is not None:
        template = dict(body.get("template") or _call(ctx, "GET", f"/schedules/{name}")["template"])
        if type_ is not None:
            template["type"] = type_
        if window is not None:
            template.pop("time_range", None)  # one of window or time_range
            template["window"] = window
        body["template"] = template
    for key, value in (
        ("cron", cron),
        ("timezone", timezone),
        ("symbols", [s.upper() for s in symbol] if symbol else None),
        ("concurrency_policy", policy),
        ("catchup", catchup),
        ("starting_deadline_seconds", deadline),
    ):
        if value is not None:
            body[key] = value
    if not body:
        typer.echo(
            "error: nothing to change: give --file or at least one of --cron, --timezone, "
            "--symbol, --type, --window, --concurrency-policy, --catchup, --starting-deadline",
            err=True,
        )
        raise typer.Exit(2)
    changed = _call(ctx, "PATCH", f"/schedules/{name}", json=body)
    make_console(stderr=True).print(
        f"schedule {printable(changed['name'])} changed ({', '.join(sorted(body))}); "
        f"next run {format_time(changed['next_run'])}"
    )


@app.command()
def delete(ctx: typer.Context, name: Name) -> None:
    """Delete it and the record of its ticks; its queues stay."""
    _call(ctx, "DELETE", f"/schedules/{name}")
    make_console(stderr=True).print(f"schedule {name} deleted")


def backfill(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            "-f",
            help="A start request (either form) with the whole time_range; '-' reads stdin.",
            dir_okay=False,
        ),
    ],
    chunk: Annotated[str, typer.Option(help="day, week or month.")] = "month",
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Repeat for several symbols.")
    ] = None,
    max_parallel: Annotated[int, typer.Option(min=1, max=100)] = 1,
) -> None:
    """Cut a long range into chunks, one child queue per (symbol, chunk); print the parent's id
    (watch it, list its children with `list --parent ID`, stop or retry it as one)."""
    body = _body(file, "POST /queues/backfill")
    body.update(chunk=chunk, max_parallel=max_parallel)
    if symbol:
        body.pop("symbol", None)
        body["symbols"] = [s.upper() for s in symbol]
    typer.echo(_call(ctx, "POST", "/queues/backfill", json=body)["queue_id"])
