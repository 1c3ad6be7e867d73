"""`dossierhub tokens ...` and `dossierhub serve`: the API's bearer tokens and its server."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Engine

from dossierhub import store, tokens
from dossierhub.cli.common import Format, err, out, settings
from dossierhub.errors import ConfigError

tokens_app = typer.Typer(
    help="API bearer tokens: create one per user or system, list them, revoke them.",
    no_args_is_help=True,
)


def _registry() -> Engine:
    """The registry, opened without the stderr line other commands print: a token command's
    output is the token or the list, nothing else."""
    engine = store.open_registry(settings().registry_url)
    store.ensure_ready(engine)
    return engine


def _role(value: str) -> str:
    try:
        return str(tokens.Role.parse(value))
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


@tokens_app.command("create")
def tokens_create(
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help=f"What the token may read: {tokens.ROLE_HELP}.",
            callback=_role,
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Who or what holds the token (shown by `tokens list`), e.g. 'statistics office'.",
        ),
    ] = None,
) -> None:
    """Create a token and print it once: only its SHA-256 digest is stored."""
    if name is not None and len(name) > tokens.NAME_MAX:
        raise typer.BadParameter(f"use at most {tokens.NAME_MAX} characters", param_hint="--name")
    token = tokens.create_token(_registry(), role=role, name=name)
    err.print(
        f"token for role [bold]{role}[/] created; copy it now, it cannot be shown again:",
        highlight=False,
    )
    typer.echo(token)


@tokens_app.command("list")
def tokens_list(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
) -> None:
    """List tokens: id, role, name, when created and revoked (never the token or its digest)."""
    rows = [
        {
            "id": info.id,
            "role": info.role,
            "name": info.name,
            "created": info.created_at.isoformat(timespec="seconds"),
            "revoked": info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else None,
        }
        for info in tokens.list_tokens(_registry())
    ]
    if fmt is Format.json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        out.print("tokens: none (create one with `dossierhub tokens create --role ROLE`)")
        return
    table = Table(title="API tokens")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[
        int, typer.Argument(help="Token id, as `tokens list` shows it.", min=1, metavar="ID")
    ],
) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    if not tokens.revoke_token(_registry(), token_id=token_id):
        raise typer.BadParameter(
            f"no active token {token_id}; see `dossierhub tokens list`", param_hint="ID"
        )
    out.print(f"token {token_id} revoked")


def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Keep 127.0.0.1 unless a TLS reverse proxy fronts it."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8000,
) -> None:
    """Serve the API (/api/v1) and the dashboard (/) on the registry from the settings.

    The server only reads: it may use a read-only database role (docs/operations.md).
    Statistics are as fresh as the last `dossierhub stats` or statistics DAG run.
    """
    import uvicorn

    from dossierhub.api import create_app, mask_server_logs

    chosen = settings()
    engine = store.open_registry(chosen.registry_url)
    store.ensure_ready(engine)
    err.print(
        f"serving registry {store.safe_registry_url(chosen.registry_url)} on "
        f"http://{host}:{port}/ (dashboard) and http://{host}:{port}/api/v1/openapi.json",
        highlight=False,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            "[yellow]note:[/] bearer tokens travel in clear over plain HTTP; "
            "put a TLS reverse proxy in front of this address",
            highlight=False,
        )
    config = uvicorn.Config(
        create_app(engine), host=host, port=port, server_header=False, log_level="info"
    )
    mask_server_logs()  # after uvicorn set its logging up: no token from a URL in the log
    uvicorn.Server(config).run()
