"""`queue-manager logs ID STEP [-f] [--raw] [--level L] [--grep TEXT] [--pretty]`: a step's
output, as the service serves it. `--level`/`--grep` are the service's filters; on a terminal
(or with `--pretty`) each line is drawn readable — time, coloured level, message, then its
fields as key=value — from the service's parsed lines; on a pipe the lines stay as written.

A log is what a worker wrote: its control characters (terminal escape sequences, a bell, a
carriage return that hides a line) are shown escaped (`\\x1b[2J`), newlines and tabs kept;
`--raw` writes the bytes as they are (to keep a file as written, or colours for `less -R`).
"""

from __future__ import annotations

import codecs
import json
import sys
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from queue_manager.cli.client import CliError, connection_problem, envelope_error
from queue_manager.cli.render import make_console, parse_time, printable
from queue_manager.domain.log_lines import LogLevel


def logs(
    ctx: typer.Context,
    queue_id: Annotated[
        str, typer.Argument(help="The queue (its id or the id's first 6+ characters).")
    ],
    step: Annotated[int, typer.Argument(min=0, max=63, help="The step's index.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the step ends.")
    ] = False,
    tail: Annotated[int | None, typer.Option(min=0, help="Only the last N lines.")] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="The bytes as the worker wrote them, control characters included."
        ),
    ] = False,
    level: Annotated[
        LogLevel | None,
        typer.Option(help="Only lines at this level or above (lines of no level are kept)."),
    ] = None,
    grep: Annotated[
        str | None, typer.Option(help="Only lines holding this text (any case).")
    ] = None,
    pretty: Annotated[
        bool | None,
        typer.Option(
            "--pretty/--plain",
            help="Readable lines with coloured levels (default: on a terminal), or as written.",
        ),
    ] = None,
) -> None:
    """Print a step's log (its worker's output)."""
    params: dict[str, Any] = {"follow": str(follow).lower()}
    if tail is not None:
        params["tail"] = tail
    if level is not None:
        params["level"] = level.value
    if grep is not None:
        params["grep"] = grep
    console = make_console()
    readable = not raw and (console.is_terminal if pretty is None else pretty)
    if readable:
        params["format"] = "json"

    async def call() -> None:
        async with ctx.obj.client() as api:
            http: httpx.AsyncClient = api.http
            path = f"/queues/{await api.resolve(queue_id)}/steps/{step}/logs"
            try:
                async with http.stream("GET", path, params=params, timeout=None) as answer:
                    if answer.is_error:
                        await answer.aread()
                        raise envelope_error(_json(answer), answer.status_code)
                    if readable:
                        async for line in answer.aiter_lines():
                            if line:
                                console.print(pretty_line(line), soft_wrap=True)
                        return
                    # Decoded incrementally: a character may be cut between two chunks.
                    text = codecs.getincrementaldecoder("utf-8")(errors="replace")
                    async for chunk in answer.aiter_bytes():
                        out = chunk if raw else escaped(text.decode(chunk))
                        sys.stdout.buffer.write(out)
                        sys.stdout.buffer.flush()
                    if not raw:
                        sys.stdout.buffer.write(escaped(text.decode(b"", final=True)))
            except httpx.TransportError as exc:
                raise connection_problem(api.api_url, exc) from None

    ctx.obj.run(call())


#: how each level reads on a terminal
LEVEL_STYLES = {
    "debug": "dim",
    "info": "green",
    "warning": "yellow",
    "error": "bold red",
    "critical": "bold white on red",
}


def pretty_line(line: str) -> Text:
    """One parsed line (`format=json`) as a person reads it: time, level, message, fields."""
    try:
        parsed = json.loads(line)
    except ValueError:
        return Text(printable(line))
    if not isinstance(parsed, dict):
        return Text(printable(line))
    out = Text()
    moment = parsed.get("time")
    if moment:
        out.append(f"{printable(short_time(str(moment)))} ", style="dim")
    level = parsed.get("level")
    out.append(f"{printable(level or '-'):<8} ", style=LEVEL_STYLES.get(str(level), "dim"))
    out.append(printable(parsed.get("message", "")))
    fields = parsed.get("fields")
    if isinstance(fields, dict):
        for key, value in fields.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            out.append(f" {printable(key)}=", style="cyan")
            out.append(printable(shown))
    return out


def short_time(value: str) -> str:
    """`2024-06-01T12:00:01.123456Z` as `12:00:01.123`: the day is the step's."""
    moment = parse_time(value.replace("Z", "+00:00"))
    if moment is None:
        return value
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def escaped(text: str) -> bytes:
    """Log text with its control characters shown, not acted upon (newlines and tabs kept)."""
    return printable(text, lines=True).encode()


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        raise CliError(f"HTTP {answer.status_code}: {answer.text[:200]}") from None
