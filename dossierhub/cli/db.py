"""`dossierhub db ...`: the registry's schema."""

from __future__ import annotations

from typing import Annotated

import typer

from connectors.masking import first_line
from dossierhub import store
from dossierhub.cli.common import out, registry, registry_origin, settings
from dossierhub.errors import DossierHubError
from models import migrate

db_app = typer.Typer(help="Registry database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the registry schema to the latest version (safe to repeat)."""
    chosen = settings()
    engine = registry(chosen, ready=False)
    try:
        migrate.upgrade(engine)
    except Exception as exc:
        raise DossierHubError(
            f"cannot migrate the registry at {store.safe_registry_url(chosen.registry_url)}: "
            f"{first_line(exc)} (check {registry_origin()} and that the database is running)"
        ) from None
    out.print(
        f"registry {store.safe_registry_url(chosen.registry_url)} is at schema "
        f"{migrate.current_revision(engine)}"
    )


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="The schema version to go back to, e.g. 0003.")],
) -> None:
    """Migrate the registry schema back to an earlier version (statistics are rebuilt later)."""
    chosen = settings()
    engine = registry(chosen, ready=False)
    migrate.downgrade(engine, revision)
    out.print(
        f"registry {store.safe_registry_url(chosen.registry_url)} is at schema "
        f"{migrate.current_revision(engine)}"
    )
