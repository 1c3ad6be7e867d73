"""What every command shares: the consoles, the output formats, the settings and the registry.

Results go to stdout (a table, or JSON for scripts); what the command did and notes for the
reader go to stderr, so a script reading stdout is never confused by them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from dossierhub import connections, export, reads, store
from dossierhub.settings import Settings
from models.period import Period

out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]

_registry_origin = "the caller"  # one command per process: the setting that named the registry


def settings(**overrides: Any) -> Settings:
    """Settings whose registry is DOSSIERHUB_REGISTRY_URL, else the Airflow Connection
    dossierhub_registry (AIRFLOW_CONN_DOSSIERHUB_REGISTRY), else the default, as the DAGs'."""
    global _registry_origin
    chosen, _registry_origin = connections.settings_with_registry(**overrides)
    return chosen


def registry_origin() -> str:
    """Which setting named the registry of the last `settings()` call."""
    return _registry_origin


def registry(chosen: Settings, *, ready: bool = True) -> Engine:
    """The registry engine, said on stderr (masked) with the setting that named it."""
    err.print(
        f"registry {store.safe_registry_url(chosen.registry_url)} (from {_registry_origin})",
        highlight=False,
        soft_wrap=True,  # one line, however narrow the terminal: scripts read it
    )
    engine = store.open_registry(chosen.registry_url)
    if ready:
        store.ensure_ready(engine)
    return engine


def emit(rows: Sequence[dict[str, Any]], fmt: Format, title: str) -> None:
    if fmt is Format.json:
        out.print_json(json.dumps(list(rows), default=str, ensure_ascii=False))
        return
    if not rows:
        out.print(f"{title}: none")
        return
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    out.print(table)


def short(value: Any) -> Any:
    """A value as a table cell: floats to two places, times to the second."""
    if isinstance(value, float):
        return f"{value:.2f}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def local(moment: datetime | None) -> str | None:
    """A UTC time as the agencies' clock shows it, offset written: 2026-03-01 10:00:00+07:00."""
    shown = reads.local_time(moment)
    return None if shown is None else shown.isoformat(sep=" ", timespec="seconds")


# -- statistics output ------------------------------------------------------------------------
class ExportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    xlsx = "xlsx"


PeriodOption = Annotated[
    str, typer.Option("--period", "-p", help="Year (2026), quarter (2026-Q1) or month (2026-03).")
]
ByOption = Annotated[
    str,
    typer.Option(
        "--by",
        help="Comma-separated groupings: sector, agency, locality, admin_level, procedure, "
        "source, channel, service_level, and one of day, month, quarter, year.",
    ),
]
# A listing narrowed to one source (all sources without it).
OnlySourceOption = Annotated[str | None, typer.Option(help="Only this source.")]
ExportOption = Annotated[ExportFormat, typer.Option("--format", "-f", help="Output format.")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file instead of the screen.")
]

THIS_YEAR = str(date.today().year)
NOT_REPORTED = "—"  # a figure with nothing to compute it from; blank in CSV/XLSX, null in JSON


def parse_period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None


def export_rows(
    rows: list[dict[str, Any]], fmt: ExportFormat, output: Path | None, title: str
) -> None:
    """Statistics rows as a table, CSV, JSON or XLSX, on the screen or in a file."""
    if fmt is ExportFormat.xlsx:
        if output is None:
            raise typer.BadParameter("xlsx needs --output FILE.xlsx", param_hint="--output")
        export.write_xlsx(rows, output, title=title)
        err.print(f"wrote {len(rows)} rows to {output}")
        return
    if fmt is ExportFormat.table:
        if output is not None:
            raise typer.BadParameter("use csv, json or xlsx to write a file", param_hint="--format")
        # None is "not reported" (or no denominator): a dash, never a misleading 0.
        emit(
            [{k: NOT_REPORTED if v is None else v for k, v in r.items()} for r in rows],
            Format.table,
            title,
        )
        return
    text = export.to_csv(rows) if fmt is ExportFormat.csv else export.to_json(rows)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(rows)} rows to {output}")
