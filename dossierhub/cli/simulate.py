"""`dossierhub simulate ...`: the reference sector systems, for demos, tests and benchmarks.

With `demo`, the only commands that know the simulators; each imports its own when it runs.
"""

from __future__ import annotations

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
ServedRowsOption = Annotated[int, typer.Option(min=1, help="How many dossiers.")]


def _credential(envvar: str, what: str) -> Any:
    """A served API's credential: from the environment or the option, else the demo one."""
    return typer.Option(envvar=envvar, help=what, show_default=False)


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


@simulate_app.command("social_insurance")
def simulate_social_insurance(
    port: PortOption = 8101,
    rows: ServedRowsOption = 10_000,
    seed: SeedOption = 1,
    malformed_share: MalformedOption = 0.02,
    client_secret: Annotated[
        str | None,
        _credential(
            "SOCIAL_INSURANCE_CLIENT_SECRET",
            "OAuth2 client secret clients must present (default: the demo secret).",
        ),
    ] = None,
) -> None:
    """Serve the Social Insurance REST API (OAuth2, cursor pages, 429s) until Ctrl-C."""
    from simulators import social_insurance as api

    secret = client_secret or api.DEMO_CLIENT_SECRET
    api.serve(port, rows=rows, seed=seed, malformed_share=malformed_share, client_secret=secret)


@simulate_app.command("one_stop")
def simulate_one_stop(
    port: PortOption = 8102,
    rows: ServedRowsOption = 10_000,
    seed: SeedOption = 1,
    malformed_share: MalformedOption = 0.02,
    api_key: Annotated[
        str | None,
        _credential("ONE_STOP_API_KEY", "API key clients must send (default: the demo key)."),
    ] = None,
) -> None:
    """Serve the provincial one-stop portal's REST API (API key, page/offset) until Ctrl-C."""
    from simulators import one_stop as api

    key = api_key or api.DEMO_API_KEY
    api.serve(port, rows=rows, seed=seed, malformed_share=malformed_share, api_key=key)
