"""`dossierhub sync`, `sources`, `runs` and `verify`: pulling sources and watching the runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from dossierhub import reads
from dossierhub.cli.common import (
    Format,
    FormatOption,
    OnlySourceOption,
    emit,
    err,
    registry,
    settings,
    short,
)
from dossierhub.errors import DossierHubError
from dossierhub.settings import Settings, SourceConfig, load_sources
from dossierhub.sources import open_connector, source_config
from dossierhub.sync import SyncResult, sync_source


@contextmanager
def _progress(source: str) -> Iterator[Any]:
    started = time.monotonic()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(f"syncing {source}", total=None, rate="")

        def update(result: SyncResult) -> None:
            elapsed = max(time.monotonic() - started, 1e-6)
            bar.update(
                task, completed=result.rows_read, rate=f"{result.rows_read / elapsed:,.0f} rows/s"
            )

        yield update


def run_sync(
    settings: Settings, engine: Engine, name: str, config: SourceConfig, full_refresh: bool
) -> SyncResult:
    connector = open_connector(settings, name, config)
    with _progress(name) as update:
        return sync_source(
            engine,
            connector,
            connector_name=config.connector,
            description=config.description,
            full_refresh=full_refresh,
            progress=update,
        )


def _summary(result: SyncResult) -> dict[str, Any]:
    return {
        "run": result.run_id,
        "source": result.source,
        "status": result.status,
        "read": result.rows_read,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "quarantined": result.quarantined,
        "seconds": round(result.duration_s, 2),
        "rows_per_s": round(result.rows_read / result.duration_s) if result.duration_s else 0,
    }


def sync(
    source: Annotated[str | None, typer.Argument(help="Source name from the sources file.")] = None,
    all_sources: Annotated[
        bool, typer.Option("--all", help="Sync every configured source.")
    ] = False,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh", help="Read the whole source again, ignoring the saved cursor."
        ),
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Pull new and changed dossiers from a source into the registry."""
    chosen = settings()
    if all_sources == (source is not None):
        raise typer.BadParameter("name one SOURCE, or pass --all")
    engine = registry(chosen)
    if source is None:
        configs = load_sources(chosen.sources_file)
    else:
        configs = {source: source_config(chosen, source)}
    results = []
    failed = []
    for name, config in configs.items():
        try:
            results.append(run_sync(chosen, engine, name, config, full_refresh))
        except DossierHubError as exc:
            if source is not None:
                raise
            failed.append(name)  # one broken source must not keep the others from syncing
            err.print(f"[red]error:[/] {exc}", highlight=False)
    emit([_summary(r) for r in results], fmt, "sync")
    if failed:
        err.print(f"[red]not synced:[/] {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)


def sources(fmt: FormatOption = Format.table) -> None:
    """List the configured sources and their connectors."""
    chosen = settings()
    rows = [
        {
            "source": name,
            "connector": c.connector,
            "schedule": c.schedule,
            "description": c.description,
            "status": f"broken: {c.problem}" if c.problem else "ok",
        }
        for name, c in load_sources(chosen.sources_file).items()
    ]
    emit(rows, fmt, "sources")


def runs(
    source: OnlySourceOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many recent runs.")] = 20,
    fmt: FormatOption = Format.table,
) -> None:
    """Recent sync runs with their counts, cursors and errors."""
    engine = registry(settings())
    with engine.connect() as conn:
        rows = reads.sync_runs(conn, source=source or None, limit=limit)
    if fmt is Format.table:
        keep = (
            "id",
            "source_system",
            "status",
            "started_at",
            "duration_s",
            "rows_read",
            "inserted",
            "updated",
            "unchanged",
            "quarantined",
            "error",
        )
        rows = [{k: short(row[k]) for k in keep} for row in rows]
    emit(rows, fmt, "sync runs")


def verify(
    source: Annotated[str, typer.Argument(help="Source name from the sources file.")],
    fmt: FormatOption = Format.table,
) -> None:
    """Check a source against its thresholds: its whole quarantine against its size
    (max_quarantine_share) and its own count against the registry (max_reconciliation_gap).
    Exits with 1 when it fails."""
    from dossierhub.verify import verify_source

    chosen = settings()
    engine = registry(chosen)
    config = source_config(chosen, source)
    connector = open_connector(chosen, source, config)
    try:
        result = verify_source(engine, connector, config=config)
    finally:
        connector.close()
    emit([result.as_dict()], fmt, f"verify {source}")
    result.raise_for_problems()
