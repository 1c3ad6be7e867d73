"""`dossierhub simulate ...`: the reference sector systems, for demos, tests and benchmarks.

With `demo`, the only commands that know the simulators; each imports its own when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

simulate_app = typer.Typer(
    help="Reference sector systems for demos, tests and benchmarks.", no_args_is_help=True
)


# The options the simulators share, declared once with their help text.
SeedOption = Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")]
MalformedOption = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Share of deliberately malformed records.")
]
PortOption = Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1 to listen on.")]


@simulate_app.command("tax")
def simulate_tax(
    url: Annotated[str, typer.Option(help="Database URL to load (SQLite, MariaDB or PostgreSQL).")],
    rows: Annotated[int, typer.Option(min=0, help="How many dossiers.")] = 10_000,
    seed: SeedOption = 1,
    malformed_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of deliberately malformed rows.")
    ] = 0.02,
) -> None:
    """Build the Tax office's reference database; prints the truth as one JSON line."""
    from simulators import tax

    truth = tax.generate(url, rows=rows, seed=seed, malformed_share=malformed_share)
    typer.echo(truth.as_json())


@simulate_app.command("finance")
def simulate_finance(
    folder: Annotated[Path, typer.Option(help="Drop folder to write the daily export files into.")],
    days: Annotated[int, typer.Option(min=1, help="How many daily files.")] = 30,
    rows_per_day: Annotated[int, typer.Option(min=1, help="Dossiers per daily file.")] = 200,
    seed: SeedOption = 1,
    malformed_share: MalformedOption = 0.02,
) -> None:
    """Write the Finance department's daily CSV/XML exports; prints the truth as one JSON line."""
    from simulators import finance

    truth = finance.generate(
        folder, days=days, rows_per_day=rows_per_day, seed=seed, malformed_share=malformed_share
    )
    typer.echo(truth.as_json())


@simulate_app.command("land")
def simulate_land(
    url: Annotated[str, typer.Option(help="Database URL to load (PostgreSQL or SQLite).")],
    rows: Annotated[int, typer.Option(min=0, help="How many dossiers.")] = 5_000,
    seed: SeedOption = 1,
    malformed_share: MalformedOption = 0.02,
    forwarded: Annotated[
        int, typer.Option(min=0, help="Dossiers received at one-stop centres and forwarded.")
    ] = 200,
) -> None:
    """Build the Land office's registration database; prints the truth as one JSON line."""
    from simulators import land

    truth = land.generate(
        url, rows=rows, seed=seed, malformed_share=malformed_share, forwarded=forwarded
    )
    typer.echo(truth.as_json())


def _serve_command(
    name: str, summary: str, *, default_port: int, credential: Any, serve: Callable[..., None]
) -> None:
    """Add `simulate <name>`: serve a sector system's REST API on 127.0.0.1 until Ctrl-C.

    The served systems share their options; each has its own `default_port`, its own
    `credential` option (what clients must present), and `serve(port, credential, **options)`
    starting its simulator (with the demo credential when none is given).
    """

    def command(
        port: PortOption = default_port,
        rows: Annotated[int, typer.Option(min=1, help="How many dossiers.")] = 10_000,
        seed: SeedOption = 1,
        malformed_share: MalformedOption = 0.02,
        credential: str | None = credential,
    ) -> None:
        serve(port, credential, rows=rows, seed=seed, malformed_share=malformed_share)

    simulate_app.command(name, help=summary)(command)


def _serve_social_insurance(port: int, client_secret: str | None, **options: Any) -> None:
    from simulators import social_insurance as api

    api.serve(port, client_secret=client_secret or api.DEMO_CLIENT_SECRET, **options)


def _serve_one_stop(port: int, api_key: str | None, **options: Any) -> None:
    from simulators import one_stop as api

    api.serve(port, api_key=api_key or api.DEMO_API_KEY, **options)


_serve_command(
    "social_insurance",
    "Serve the Social Insurance REST API (OAuth2, cursor pages, 429s) until Ctrl-C.",
    default_port=8101,
    credential=typer.Option(
        None,
        "--client-secret",
        envvar="SOCIAL_INSURANCE_CLIENT_SECRET",
        help="OAuth2 client secret clients must present (default: the demo secret).",
        show_default=False,
    ),
    serve=_serve_social_insurance,
)
_serve_command(
    "one_stop",
    "Serve the provincial one-stop portal's REST API (API key, page/offset) until Ctrl-C.",
    default_port=8102,
    credential=typer.Option(
        None,
        "--api-key",
        envvar="ONE_STOP_API_KEY",
        help="API key clients must send (default: the demo key).",
        show_default=False,
    ),
    serve=_serve_one_stop,
)
