"""The `queue-manager` command line: run the service, and drive it over its HTTP API.

Exit codes: 0 success; 1 an error answer of the API, an unreachable service, or a watched queue
that ended in error or was stopped; 2 bad usage or a bad setting; 130 interrupted.

About 350 lines on purpose: the shared options and one small function per core verb, read top to
bottom as the CLI's table of contents; the larger verbs live in their own modules (watch, tokens,
runs, logs, events).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.text import Text

from queue_manager import __version__
from queue_manager.cli import (
    collections,
    coverage,
    events,
    logs,
    plans,
    rate_limits,
    runs,
    schedules,
    tokens,
)
from queue_manager.cli.client import (
    DEFAULT_API_URL,
    ApiClient,
    CliError,
    check_api_url,
    read_body,
)
from queue_manager.cli.render import (
    attempts_table,
    make_console,
    printable,
    queue_summary,
    queues_table,
    status_text,
    steps_table,
)
from queue_manager.domain.models import QueueStatus

T = TypeVar("T")

app = typer.Typer(
    name="queue-manager",
    help="Control plane of the StreamForge market-data platform: run the service "
    "(serve) or drive a running one (start, stop, retry, resubmit, list, show, watch, logs,"
    " events, backfill, schedule, token, rate-limits).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass(frozen=True)
class Options:
    api_url: str
    timeout: float
    token: str | None = None

    def client(self, _: typer.Context | None = None) -> ApiClient:
        return ApiClient(self.api_url, timeout=self.timeout, token=self.token)

    @staticmethod
    def run(coro: Coroutine[Any, Any, T]) -> T:
        return _run(coro)


def _fail(error: CliError) -> NoReturn:
    typer.echo(f"error: {printable(error.message)}", err=True)
    for line in error.details:
        typer.echo(f"  {printable(line)}", err=True)
    raise typer.Exit(error.code)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one client coroutine; a CliError becomes its message and exit code, Ctrl-C exits 130."""
    try:
        return asyncio.run(coro)
    except CliError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _options(ctx: typer.Context) -> Options:
    options = ctx.find_object(Options)
    if options is None:  # a command invoked without the group callback (tests)
        return Options(DEFAULT_API_URL, 30.0)
    return options


def _version(value: bool) -> None:
    if value:
        typer.echo(f"queue-manager {__version__}")
        raise typer.Exit()


def _api_url(value: str) -> str:
    try:
        return check_api_url(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r}: {exc}") from None


@app.callback()
def main(
    ctx: typer.Context,
    api_url: Annotated[
        str,
        typer.Option(
            "--api-url",
            envvar="QM_API_URL",
            callback=_api_url,
            help="Base URL of the queue-manager service for the client commands.",
        ),
    ] = DEFAULT_API_URL,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for each API answer.")
    ] = 30.0,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="QUEUE_MANAGER_TOKEN",
            help="API token sent as Authorization: Bearer (prefer the environment variable: "
            "command lines are visible to other users).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = Options(api_url=api_url, timeout=timeout, token=token or None)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default: HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port to listen on (default: PORT or 8000)."),
    ] = None,
) -> None:
    """Run the service (settings from the environment and .env; Ctrl-C/SIGTERM stop it cleanly)."""
    from queue_manager.cli.serve import serve as run_server

    run_server(host, port)


@app.command()
def start(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="JSON body of POST /queues/start (single or pipeline form); '-' reads stdin.",
            dir_okay=False,
        ),
    ] = None,
    symbol: Annotated[str | None, typer.Option(help="e.g. BTCUSDT")] = None,
    type_: Annotated[
        str | None,
        typer.Option("--type", help="api, ws, rest or a full data type such as api_candles_5m"),
    ] = None,
    time_range: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD:YYYY-MM-DD, e.g. 2024-01-01:2024-01-03")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Retrying with the same key returns the same queue, launching nothing."),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            min=-1000, max=1000, help="Admission order under MAX_RUNNING_QUEUES: higher first."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan (steps, what each waits for and why, collections) and every "
            "error; start nothing.",
        ),
    ] = False,
) -> None:
    """Start a queue and print its id (qid=$(queue-manager start ...))."""
    flags = {"--symbol": symbol, "--type": type_, "--time-range": time_range}
    given = [name for name, value in flags.items() if value is not None]
    if file is not None:
        if given:
            ctx.fail(f"{', '.join(given)} cannot be combined with --file")
        try:
            body = read_body(file, "POST /queues/start")
        except CliError as exc:
            _fail(exc)
    else:
        missing = [name for name, value in flags.items() if value is None]
        if missing:
            ctx.fail(
                f"give --file, or all of --symbol, --type and --time-range "
                f"(missing {', '.join(missing)})"
            )
        body = {"symbol": symbol, "type": type_, "time_range": time_range}
    if priority is not None and isinstance(body, dict):
        body["priority"] = priority
    options = _options(ctx)
    if dry_run:
        show_plan(options, body)
        return

    async def call() -> str:
        async with options.client() as api:
            return await api.start(body, idempotency_key)

    typer.echo(_run(call()))


def show_plan(options: Options, body: Any) -> None:
    """`start --dry-run`: the plan of `body` and its errors (exit 1 with errors)."""

    async def call() -> dict[str, Any]:
        async with options.client() as api:
            return await plans.fetch_plan(api, body)

    try:
        plans.print_plan(_run(call()))
    except CliError as exc:
        _fail(exc)


@app.command()
def stop(
    ctx: typer.Context,
    queue_id: Annotated[
        str, typer.Argument(help="The queue to stop (its id or the id's first 6+ characters).")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Delete the jobs now, without the grace period.")
    ] = False,
) -> None:
    """Stop a queue: its jobs get STOP_GRACE_SECONDS to end by themselves (none with --force)."""
    options = _options(ctx)

    async def call() -> dict[str, Any]:
        async with options.client() as api:
            return await api.stop(await api.resolve(queue_id), force=force)

    data = _run(call())
    line = Text(f"Queue {printable(data.get('queue_id', queue_id))} → ")
    line.append_text(status_text(data.get("status", "stopping")))
    make_console().print(line)


@app.command("list")
def list_queues(
    ctx: typer.Context,
    status: Annotated[QueueStatus | None, typer.Option(help="Only queues in this status.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Only queues of this symbol.")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=1000, help="Page size (default 100).")
    ] = None,
    cursor: Annotated[
        str | None, typer.Option(help="The next cursor a previous page printed.")
    ] = None,
    parent: Annotated[str | None, typer.Option(help="Only the children of this backfill.")] = None,
    created_from: Annotated[
        str | None,
        typer.Option(
            "--created-from",
            help="Only queues created at or after this ISO 8601 date or date-time (UTC "
            "without a zone), e.g. 2024-06-01.",
        ),
    ] = None,
    created_to: Annotated[
        str | None,
        typer.Option("--created-to", help="Only queues created before this (exclusive)."),
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Backfills' children too, as rows of their own (folded by default)."
        ),
    ] = False,
    expand: Annotated[
        bool,
        typer.Option("--expand", help="Each backfill's children listed under it."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"queues": [...], "next_cursor": ...} as JSON.')
    ] = False,
) -> None:
    """List queues, newest first: a backfill's children are folded under it (--expand shows
    them there, --all lists them as rows)."""
    options = _options(ctx)

    async def call() -> tuple[list[dict[str, Any]], str | None, dict[str, list[dict[str, Any]]]]:
        async with options.client() as api:
            queues, next_cursor = await api.list(
                status=status.value if status else None,
                symbol=symbol,
                limit=limit,
                cursor=cursor,
                parent=await api.resolve(parent) if parent else None,
                top_level=parent is None and not every,
                created_from=created_from,
                created_to=created_to,
            )
            children: dict[str, list[dict[str, Any]]] = {}
            if expand and not as_json:
                for queue in queues:
                    if queue.get("backfill"):
                        kids, _ = await api.list(parent=str(queue["id"]), limit=1000)
                        children[str(queue["id"])] = sorted(
                            kids, key=lambda q: str(q.get("time_range"))
                        )
            return queues, next_cursor, children

    queues, next_cursor, children = _run(call())
    if as_json:
        typer.echo(json.dumps({"queues": queues, "next_cursor": next_cursor}, indent=2))
        return
    console = make_console()
    if queues:
        console.print(queues_table(queues, children))
    else:
        console.print("No queues.")
    if next_cursor:
        console.print(Text(f"next cursor: {printable(next_cursor)}"))


@app.command()
def show(
    ctx: typer.Context,
    queue_id: Annotated[
        str, typer.Argument(help="The queue to show (its id or the id's first 6+ characters).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full state as JSON.")] = False,
) -> None:
    """Show one queue and its steps."""
    options = _options(ctx)

    async def call() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with options.client() as api:
            queue = await api.get(await api.resolve(queue_id))
            children: list[dict[str, Any]] = []
            if queue.get("backfill") and not as_json:
                children, _ = await api.list(parent=str(queue["id"]), limit=1000)
            return queue, children

    queue, children = _run(call())
    if as_json:
        typer.echo(json.dumps(queue, indent=2))
        return
    console = make_console()
    console.print(queue_summary(queue))
    console.print()
    backfill = queue.get("backfill")
    if isinstance(backfill, dict):
        # A backfill's parent runs no step itself: its chunks are its children.
        from queue_manager.cli.watch_render import children_progress

        progress = {str(k): int(v) for k, v in (backfill.get("progress") or {}).items()}
        console.print(children_progress(int(backfill.get("children") or 0), progress))
        console.print()
        ordered = sorted(children, key=lambda q: str(q.get("time_range")))
        console.print(queues_table(ordered) if ordered else "No children.")
        return
    steps = [s for s in queue.get("steps") or [] if isinstance(s, dict)]
    console.print(steps_table(steps))
    attempts = attempts_table(steps)
    if attempts is not None:
        console.print()
        console.print(attempts)


@app.command()
def watch(
    ctx: typer.Context,
    queue_id: Annotated[
        str | None,
        typer.Argument(
            help="The queue to follow (its id or the id's first 6+ characters); "
            "without it, every queue."
        ),
    ] = None,
    plain: Annotated[
        bool,
        typer.Option("--plain", help="One line per update instead of live progress bars."),
    ] = False,
) -> None:
    """Follow live progress of one queue (progress bars) or of every queue (a table).

    With QUEUE_ID: exits when the queue ends, 0 if it finished, 1 on error or stop.
    Without: one row per top-level queue, redrawn in place until Ctrl-C (a backfill's
    children counted in its row); on a pipe or with --plain, one line per update.
    """
    from queue_manager.cli import watch as live
    from queue_manager.cli.watch_render import Display, LineDisplay, LiveDisplay
    from queue_manager.cli.watch_view import QueueView

    options = _options(ctx)
    out = make_console()
    err = make_console(stderr=True)
    if queue_id is None and out.is_terminal and not plain:
        from rich.live import Live

        async def board() -> None:
            async with options.client() as api:
                with Live(console=out, auto_refresh=False, transient=False) as shown:
                    await live.watch_board(api, shown)

        try:
            asyncio.run(board())
        except CliError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            return
        return
    if queue_id is None:
        err.print(Text(f"Watching all queues at {options.api_url} (Ctrl-C to stop)", style="dim"))
        try:
            asyncio.run(
                live.watch_all(
                    options.api_url,
                    emit=lambda text: out.print(Text(printable(text))),
                    notice=lambda text: err.print(Text(printable(text), style="yellow")),
                    headers={"Authorization": f"Bearer {options.token}"} if options.token else None,
                )
            )
        except CliError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            return
        return

    display: Display = LiveDisplay(out) if out.is_terminal and not plain else LineDisplay(out, err)

    async def follow() -> QueueView:
        async with options.client() as api:
            full_id = await api.resolve(queue_id)
            with display:
                return await live.watch_queue(api, full_id, display)

    view = _run(follow())
    out.print(view.final_line())
    if view.status is not QueueStatus.FINISHED:
        raise typer.Exit(1)


app.command()(runs.retry)
app.command()(runs.resubmit)
app.command()(logs.logs)
app.command()(coverage.coverage)
app.command()(coverage.fill)
app.command()(events.events)
app.command("rate-limits")(rate_limits.rate_limits)
app.command()(schedules.backfill)
app.command()(collections.collection)
app.add_typer(tokens.app)
app.add_typer(schedules.app)


if __name__ == "__main__":
    app(prog_name="queue-manager")
