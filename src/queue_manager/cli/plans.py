"""`queue-manager start --dry-run`: the plan of a start request (docs/api.md
"POST /queues/plan") as a table — each step, what it waits for and why, the collections it
reads and writes — and every error of the request. Nothing is started."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from queue_manager.cli.client import ApiClient, CliError
from queue_manager.cli.render import make_console, printable

#: how a step waits for another, in words
_STARTS = {"together": "starts with", "running": "once running:", "finished": "once finished:"}


def _after(edges: list[dict[str, Any]]) -> str:
    lines = []
    for edge in edges:
        why = {"topic": "topic", "collection": "reads", "depends_on": "depends_on"}[edge["reason"]]
        names = ", ".join(edge.get("names") or [])
        wait = _STARTS.get(edge["starts"], edge["starts"])
        lines.append(f"{wait} step {edge['step']} ({why}{' ' + names if names else ''})")
    return "\n".join(lines) or "—"


def _collections(step: dict[str, Any]) -> Text:
    text = Text()
    external = set(step.get("external_inputs") or [])
    for name in step.get("reads") or []:
        text.append("reads ", style="dim")
        text.append(printable(name))
        if name in external:
            text.append(" (external)", style="dim")
        text.append("\n")
    for name in step.get("writes") or []:
        text.append("writes ", style="dim")
        text.append(printable(name) + "\n")
    text.rstrip()
    return text if text.plain else Text("—")


async def fetch_plan(api: ApiClient, body: Any) -> dict[str, Any]:
    envelope = await api.request("POST", "/queues/plan", json=body)
    data: dict[str, Any] = envelope["data"]
    return data


def print_plan(plan: dict[str, Any]) -> None:
    """The plan as a table, then its errors; exits 1 when the request would be refused."""
    console = make_console()
    if plan["steps"]:
        table = Table(header_style="bold", show_edge=False, pad_edge=False, show_lines=True)
        for column in ("STEP", "TARGET", "TYPE", "AFTER (WHY)", "COLLECTIONS"):
            table.add_column(column)
        for step in plan["steps"]:
            table.add_row(
                str(step["index"]),
                printable(step["target"]),
                printable(step["type"]),
                printable(_after(step["after"])),
                _collections(step),
            )
        console.print(table)
    if plan["valid"]:
        console.print(
            Text("Plan valid: nothing was started (drop --dry-run to start it).", "green")
        )
        return
    raise CliError(
        f"the request has {len(plan['errors'])} error(s); nothing was started",
        [f"{printable(e['field'])}: {printable(e['message'])}" for e in plan["errors"]],
    )
