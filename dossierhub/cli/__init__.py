"""The `dossierhub` command line: migrations, syncs, runs, quarantine, statistics, tokens,
the API server, simulators and the demo.

One module per command group; `common` holds what they share (consoles, formats, the
registry). The registry queries are in `dossierhub.reads` and `dossierhub.stats`. Only
`simulate` and `demo` know the reference systems (`simulators`), and import them when run.
"""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import SQLAlchemyError

from dossierhub import store
from dossierhub.cli import api, connectors, db, demo, quarantine, simulate, statistics, sync
from dossierhub.cli.common import err
from dossierhub.errors import DossierHubError

app = typer.Typer(
    help="DossierHub: pull dossiers from every sector system into one unified registry.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.db_app, name="db")
app.add_typer(quarantine.quarantine_app, name="quarantine")
app.add_typer(simulate.simulate_app, name="simulate")
app.add_typer(api.tokens_app, name="tokens")
app.command()(api.serve)
app.command()(sync.sync)
app.command()(sync.sources)
app.command()(sync.runs)
app.command("stats")(statistics.stats_command)
app.command()(statistics.coverage)
app.command()(statistics.reconcile)
app.command()(sync.verify)
app.add_typer(connectors.connectors_app, name="connectors")
app.command()(demo.demo)


def main() -> None:
    """Console entry point: a DossierHub error, or the registry connection dropping, prints as
    one clear line and exits with 1."""
    try:
        app()
    except DossierHubError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        lost = store.connection_lost(exc, during=f"`dossierhub {' '.join(sys.argv[1:2])}`")
        if lost is None:
            raise
        err.print(f"[red]error:[/] {lost}", highlight=False, soft_wrap=True)
        sys.exit(1)
