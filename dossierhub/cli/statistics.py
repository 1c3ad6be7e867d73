"""`dossierhub stats`, `coverage` and `reconcile`: the office's figures, on screen or in files."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from sqlalchemy import Engine

from connectors.base import Connector
from dossierhub import stats
from dossierhub.cli.common import (
    THIS_YEAR,
    ByOption,
    ExportFormat,
    ExportOption,
    OutputOption,
    PeriodOption,
    err,
    export_rows,
    parse_period,
    registry,
    settings,
)
from dossierhub.settings import load_sources
from dossierhub.sources import open_connector, source_counters


def _fresh_registry() -> Engine:
    engine = registry(settings())
    stats.refresh(engine)
    return engine


def stats_command(
    period: PeriodOption = THIS_YEAR,
    by: ByOption = "",
    portal_only: Annotated[
        bool, typer.Option("--portal-only", help="Only what the provincial portal sees.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Open and overdue dossiers at the end of this local day (YYYY-MM-DD), as the "
            "status history stood then, instead of the period's indicators.",
        ),
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Rebuild every case and rollup from the registry first."),
    ] = False,
    fmt: ExportOption = ExportFormat.table,
    output: OutputOption = None,
) -> None:
    """Indicators for a period: received, online rate, on-time rate, payment, digitisation;
    or, with --as-of, the dossiers open and overdue at a date."""
    chosen = parse_period(period)
    if rebuild:
        engine = registry(settings())
        result = stats.rebuild(engine)
        err.print(f"rebuilt {result.cases} cases over {result.days} days")
    else:
        engine = _fresh_registry()
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            raise typer.BadParameter(
                f"{as_of!r} is not a date YYYY-MM-DD", param_hint="--as-of"
            ) from None
        names = [n for n in stats.parse_grouping(by.split(",")) if n in stats.DIMENSIONS]
        if "source" in names:
            raise typer.BadParameter(
                "a case spans sources: no grouping by source", param_hint="--by"
            )
        with engine.connect() as conn:
            rows = stats.open_at_end(conn, as_of=day, by=names, portal_only=portal_only)
        export_rows(rows, fmt, output, f"open as of {day}")
        return
    with engine.connect() as conn:
        rows = stats.indicators(conn, period=chosen, by=by.split(","), portal_only=portal_only)
    if fmt is ExportFormat.table:
        keep = [
            *stats.parse_grouping(by.split(",")),
            "received",
            "received_online",
            "online_rate",
            "refused_intake",
            "resolved",
            "on_time_rate",
            "withdrawn",
            "stopped",
            "online_payment_rate",
            "digitisation_rate",
            "digitisation_coverage",
            "service_level_coverage",
        ]
        rows = [{k: row[k] for k in keep} for row in rows]
    export_rows(rows, fmt, output, f"indicators {period}")


def coverage(
    period: PeriodOption = THIS_YEAR,
    by: ByOption = "",
    fmt: ExportOption = ExportFormat.table,
    output: OutputOption = None,
) -> None:
    """Portal-only against unified figures, side by side: what the province was missing."""
    chosen = parse_period(period)
    engine = _fresh_registry()
    with engine.connect() as conn:
        rows = stats.coverage(conn, period=chosen, by=by.split(","))
    export_rows(rows, fmt, output, f"coverage {period}")


def reconcile(
    period: Annotated[
        str, typer.Option("--period", "-p", help="'all' (default), a year, quarter or month.")
    ] = stats.ALL_TIME,
    fmt: ExportOption = ExportFormat.table,
    output: OutputOption = None,
) -> None:
    """Ask every source how many dossiers it holds and compare with the registry."""
    if period != stats.ALL_TIME:
        parse_period(period)
    chosen = settings()
    engine = registry(chosen)
    configs = load_sources(chosen.sources_file)

    def opener(name: str) -> Connector:
        return open_connector(chosen, name, configs[name])

    with source_counters(configs, opener) as counting:
        rows = stats.reconcile(
            engine,
            counters=counting.counters,
            period_text=period,
            receipt_days=counting.receipt_days,
        )
    keep = (
        "source_system",
        "period",
        "source_count",
        "registry_count",
        "quarantined",
        "unplaceable",
        "gap",
        "error",
    )
    export_rows(
        [{k: row[k] for k in keep} for row in rows], fmt, output, f"reconciliation {period}"
    )
