"""`dossierhub simulate ...`: the reference sector systems, for demos, tests and benchmarks.

With `demo`, the only commands that know the simulators; each imports its own when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

simulate_app = typer.Typer(
    help="Reference sector systems for demos, tests and benchmarks.", no_args_is_help=True
)


@simulate_app.command("tax")
def simulate_tax(
    url: Annotated[str, typer.Option(help="Database URL to load (SQLite, MariaDB or PostgreSQL).")],
    rows: Annotated[int, typer.Option(min=0, help="How many dossiers.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 1,
    malformed_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of deliberately malformed rows.")
    ] = 0.02,
) -> None:
    """Build the Tax office's reference database; prints the truth as one JSON line."""
    from simulators import tax

    truth = tax.generate(url, rows=rows, seed=seed, malformed_share=malformed_share)
    typer.echo(truth.as_json())


SeedOption = Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")]
MalformedOption = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Share of deliberately malformed records.")
]


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


PortOption = Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1 to listen on.")]


@simulate_app.command("social_insurance")
def simulate_social_insurance(
    port: PortOption = 8101,
    rows: Annotated[int, typer.Option(min=1, help="How many dossiers.")] = 10_000,
    seed: SeedOption = 1,
    malformed_share: MalformedOption = 0.02,
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar="SOCIAL_INSURANCE_CLIENT_SECRET",
            help="OAuth2 client secret clients must present (default: the demo secret).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the Social Insurance REST API (OAuth2, cursor pages, 429s) until Ctrl-C."""
    from simulators import social_insurance

    social_insurance.serve(
        port,
        rows=rows,
        seed=seed,
        malformed_share=malformed_share,
        client_secret=client_secret or social_insurance.DEMO_CLIENT_SECRET,
    )


@simulate_app.command("one_stop")
def simulate_one_stop(
    port: PortOption = 8102,
    rows: Annotated[int, typer.Option(min=1, help="How many dossiers.")] = 10_000,
    seed: SeedOption = 1,
    malformed_share: MalformedOption = 0.02,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="ONE_STOP_API_KEY",
            help="API key clients must send (default: the demo key).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the provincial one-stop portal's REST API (API key, page/offset) until Ctrl-C."""
    from simulators import one_stop

    one_stop.serve(
        port,
        rows=rows,
        seed=seed,
        malformed_share=malformed_share,
        api_key=api_key or one_stop.DEMO_API_KEY,
    )
