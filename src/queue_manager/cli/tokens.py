"""`queue-manager token …`: API tokens for scripts and people (the admin role manages them).

`create` prints only the token on stdout, so `tok=$(queue-manager token create ci --role
operator)` works; it is shown this once. `generate` needs no service: it makes a token and the
`AUTH_TOKENS_FILE` line for it, to bootstrap the first admin from a Kubernetes Secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from rich.table import Table

from queue_manager.cli.client import ApiClient
from queue_manager.cli.render import format_time, make_console, printable
from queue_manager.domain.identity import (
    TOKEN_NAME_RULE,
    Role,
    new_token,
    token_hash,
    valid_token_name,
)

app = typer.Typer(
    name="token",
    help="Manage API tokens: create (shown once), list, revoke; generate one offline.",
    no_args_is_help=True,
)

#: set by the main CLI: builds a client with --api-url, --timeout and --token
Connect = Callable[[typer.Context], ApiClient]
Run = Callable[[Coroutine[Any, Any, Any]], Any]


def _client(ctx: typer.Context) -> ApiClient:
    connect: Connect = ctx.obj.client
    return connect(ctx)


def _run(ctx: typer.Context, coro: Coroutine[Any, Any, Any]) -> Any:
    run: Run = ctx.obj.run
    return run(coro)


def _client_url(ctx: typer.Context) -> str:
    url: str = ctx.obj.api_url
    return url


def _name(value: str) -> str:
    if not valid_token_name(value):
        raise typer.BadParameter(f"{value!r}: must be {TOKEN_NAME_RULE}")
    return value


Name = Annotated[str, typer.Argument(callback=_name, help="The token's name, e.g. ci-nightly.")]
RoleOption = Annotated[Role, typer.Option("--role", help="viewer, operator or admin.")]


@app.command()
def create(
    ctx: typer.Context,
    name: Name,
    role: RoleOption,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90m, 12h, 30d, 2w (default: none).")
    ] = None,
) -> None:
    """Create a token and print it once (stdout); only its hash is stored."""
    body = {"name": name, "role": role.value, "expires": expires}

    async def call() -> dict[str, Any]:
        async with _client(ctx) as api:
            envelope = await api.request("POST", "/auth/tokens", json=body)
        data: dict[str, Any] = envelope["data"]
        return data

    data = _run(ctx, call())
    err = make_console(stderr=True)
    expiry = format_time(data.get("expires_at")) if data.get("expires_at") else "never"
    if data.get("enforced") is False:
        typer.echo(
            f"warning: auth is disabled on {printable(_client_url(ctx))}: the token is stored "
            "but not enforced, every request is let in without one until auth is configured "
            "(docs/security.md)",
            err=True,
        )
    err.print(
        f"token {printable(data['name'])} ({printable(data['role'])}, expires {expiry}); "
        "shown only now:"
    )
    typer.echo(data["token"])


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Names, roles, creation, last use and expiry; never a token's value."""

    async def call() -> list[dict[str, Any]]:
        async with _client(ctx) as api:
            envelope = await api.request("GET", "/auth/tokens")
        data: list[dict[str, Any]] = envelope["data"]
        return data

    tokens = _run(ctx, call())
    if as_json:
        typer.echo(json.dumps({"tokens": tokens}, indent=2))
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("name", "role", "source", "created", "last used", "expires"):
        table.add_column(column)
    for t in tokens:
        table.add_row(
            printable(t["name"]),
            printable(t["role"]),
            printable(t["source"]),
            format_time(t["created_at"]),
            format_time(t["last_used_at"]) if t.get("last_used_at") else "-",
            format_time(t["expires_at"]) if t.get("expires_at") else "never",
        )
    make_console().print(table)


@app.command()
def revoke(ctx: typer.Context, name: Name) -> None:
    """Revoke a token; every replica refuses it within seconds, open sockets included."""

    async def call() -> None:
        async with _client(ctx) as api:
            await api.request("DELETE", f"/auth/tokens/{name}")

    _run(ctx, call())
    make_console(stderr=True).print(f"token {name} revoked")


@app.command()
def generate(name: Name, role: RoleOption) -> None:
    """Make a token offline: the token on stdout, its AUTH_TOKENS_FILE line on stderr."""
    token = new_token()
    typer.echo(token)
    typer.echo(f"{name} {role.value} {token_hash(token)}", err=True)
