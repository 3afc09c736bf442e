"""`queue-manager logs ID STEP [-f] [--raw]`: a step's output, as the service serves it.

A log is what a worker wrote: its control characters (terminal escape sequences, a bell, a
carriage return that hides a line) are shown escaped (`\\x1b[2J`), newlines and tabs kept;
`--raw` writes the bytes as they are (to keep a file as written, or colours for `less -R`).
"""

from __future__ import annotations

import codecs
import sys
from typing import Annotated, Any

import httpx
import typer

from queue_manager.cli.client import CliError, connection_problem, envelope_error
from queue_manager.cli.render import printable


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
) -> None:
    """Print a step's log (its worker's output)."""
    params: dict[str, Any] = {"follow": str(follow).lower()}
    if tail is not None:
        params["tail"] = tail

    async def call() -> None:
        async with ctx.obj.client() as api:
            http: httpx.AsyncClient = api.http
            path = f"/queues/{await api.resolve(queue_id)}/steps/{step}/logs"
            try:
                async with http.stream("GET", path, params=params, timeout=None) as answer:
                    if answer.is_error:
                        await answer.aread()
                        raise envelope_error(_json(answer), answer.status_code)
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


def escaped(text: str) -> bytes:
    """Log text with its control characters shown, not acted upon (newlines and tabs kept)."""
    return printable(text, lines=True).encode()


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        raise CliError(f"HTTP {answer.status_code}: {answer.text[:200]}") from None
