"""`dossierhub demo`: build the five reference systems, sync them, show what statistics gain."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from dossierhub import reads, stats
from dossierhub.cli.common import Format, emit, err, out, registry, settings
from dossierhub.cli.sync import run_sync
from dossierhub.settings import SourceConfig
from models import migrate


def demo(
    rows: Annotated[int, typer.Option(min=50, help="Dossiers per reference system.")] = 5_000,
    var: Annotated[Path, typer.Option(help="Folder for the demo databases and files.")] = Path(
        "var"
    ),
) -> None:
    """Build all five reference sector systems, sync them, and show what statistics gain."""
    from simulators import province

    chosen = settings(mode="demo")
    if "DOSSIERHUB_REGISTRY_URL" not in os.environ:
        chosen.registry_url = SecretStr(f"sqlite:///{var / 'registry.db'}")
    engine = registry(chosen, ready=False)
    migrate.upgrade(engine)
    err.print(f"building the reference province ({rows:,} dossiers a system) in {var}/ ...")
    rows_out = []
    balanced = True
    with province.running(var, rows=rows) as systems:
        for system in systems:
            config = SourceConfig(
                connector=system.connector, description=system.description, settings=system.settings
            )
            result = run_sync(chosen, engine, system.name, config, full_refresh=False)
            with engine.connect() as conn:
                held, set_aside = reads.source_balance(conn, source=system.name)
            ok = held + set_aside == system.rows
            balanced &= ok
            rows_out.append(
                {
                    "source": system.name,
                    "source rows": f"{system.rows:,}",
                    "read": f"{result.rows_read:,}",
                    "inserted": f"{result.inserted:,}",
                    "quarantined": f"{result.quarantined:,}",
                    "registry + quarantine": f"{held + set_aside:,}",
                    "balanced": "yes" if ok else "NO",
                }
            )
    emit(rows_out, Format.table, "sync of every reference system")
    stats.refresh(engine)
    with engine.connect() as conn:
        [headline] = stats.coverage(conn, period=stats.ALL_TIME_PERIOD)
    portal, unified = headline["portal_online_rate"] or 0.0, headline["unified_online_rate"] or 0.0
    out.print(
        f"\n[bold]Online rate, portal only:[/] {portal:.1%} of {headline['portal_received']:,} dossiers"
        f"\n[bold]Online rate, unified:    [/] {unified:.1%} of {headline['unified_received']:,} dossiers"
        " (forwarded dossiers counted once)"
    )
    out.print(
        "\nnext: `dossierhub coverage --period 2026 --by sector`, `dossierhub stats --by month`, "
        "`dossierhub quarantine list`;\n"
        "dashboard: `dossierhub tokens create --role statistics`, then `dossierhub serve` and "
        "open http://127.0.0.1:8000/ with that token"
    )
    if not balanced:
        raise typer.Exit(1)
