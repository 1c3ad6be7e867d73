"""The `dossierhub` command line: migrations, syncs, runs, quarantine, simulators and the demo."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import Connector, Period
from connectors.masking import mask_optional
from dossierhub import connections, export, stats, store
from dossierhub.cli_api import serve, tokens_app
from dossierhub.errors import DossierHubError
from dossierhub.settings import Settings, SourceConfig, load_sources
from dossierhub.sources import open_connector, source_config, source_counters
from dossierhub.sync import SyncResult, retry_quarantine, sync_source
from models import migrate
from models.tables import dossier, quarantine, sync_run

app = typer.Typer(
    help="DossierHub: pull dossiers from every sector system into one unified registry.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Registry database schema.", no_args_is_help=True)
quarantine_app = typer.Typer(
    help="Records set aside because they could not be loaded.", no_args_is_help=True
)
simulate_app = typer.Typer(
    help="Reference sector systems for demos, tests and benchmarks.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(simulate_app, name="simulate")
app.add_typer(tokens_app, name="tokens")
app.command()(serve)

out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


_registry_origin = "the caller"  # one command per process: the setting that named the registry


def _settings(**overrides: Any) -> Settings:
    """Settings whose registry is DOSSIERHUB_REGISTRY_URL, else the Airflow Connection
    dossierhub_registry (AIRFLOW_CONN_DOSSIERHUB_REGISTRY), else the default, as the DAGs'."""
    global _registry_origin
    settings, _registry_origin = connections.settings_with_registry(**overrides)
    return settings


def _registry(settings: Settings, *, ready: bool = True) -> Engine:
    err.print(
        f"registry {store.safe_registry_url(settings.registry_url)} (from {_registry_origin})",
        highlight=False,
        soft_wrap=True,  # one line, however narrow the terminal: scripts read it
    )
    engine = store.open_registry(settings.registry_url)
    if ready:
        store.ensure_ready(engine)
    return engine


def _emit(rows: Sequence[dict[str, Any]], fmt: Format, title: str) -> None:
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


# -- db -------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the registry schema to the latest version (safe to repeat)."""
    settings = _settings()
    engine = _registry(settings, ready=False)
    try:
        migrate.upgrade(engine)
    except Exception as exc:
        raise DossierHubError(
            f"cannot migrate the registry at {store.safe_registry_url(settings.registry_url)}: "
            f"{store._first_line(exc)} (check {_registry_origin} and that the database is running)"
        ) from None
    out.print(
        f"registry {store.safe_registry_url(settings.registry_url)} is at schema "
        f"{migrate.current_revision(engine)}"
    )


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="The schema version to go back to, e.g. 0003.")],
) -> None:
    """Migrate the registry schema back to an earlier version (statistics are rebuilt later)."""
    settings = _settings()
    engine = _registry(settings, ready=False)
    migrate.downgrade(engine, revision)
    out.print(
        f"registry {store.safe_registry_url(settings.registry_url)} is at schema "
        f"{migrate.current_revision(engine)}"
    )


# -- sync -----------------------------------------------------------------------------------
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


def _run_sync(
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


@app.command()
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
    settings = _settings()
    if all_sources == (source is not None):
        raise typer.BadParameter("name one SOURCE, or pass --all")
    engine = _registry(settings)
    if source is None:
        configs = load_sources(settings.sources_file)
    else:
        configs = {source: source_config(settings, source)}
    results = []
    failed = []
    for name, config in configs.items():
        try:
            results.append(_run_sync(settings, engine, name, config, full_refresh))
        except DossierHubError as exc:
            if source is not None:
                raise
            failed.append(name)  # one broken source must not keep the others from syncing
            err.print(f"[red]error:[/] {exc}", highlight=False)
    _emit([_summary(r) for r in results], fmt, "sync")
    if failed:
        err.print(f"[red]not synced:[/] {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)


@app.command()
def sources(fmt: FormatOption = Format.table) -> None:
    """List the configured sources and their connectors."""
    settings = _settings()
    rows = [
        {
            "source": name,
            "connector": c.connector,
            "schedule": c.schedule,
            "description": c.description,
            "status": f"broken: {c.problem}" if c.problem else "ok",
        }
        for name, c in load_sources(settings.sources_file).items()
    ]
    _emit(rows, fmt, "sources")


@app.command()
def runs(
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many recent runs.")] = 20,
    fmt: FormatOption = Format.table,
) -> None:
    """Recent sync runs with their counts, cursors and errors."""
    engine = _registry(_settings())
    query = select(sync_run).order_by(sync_run.c.id.desc()).limit(limit)
    if source:
        query = query.where(sync_run.c.source_system == source)
    with engine.connect() as conn:
        # Masked again as shown: a run stored before errors were masked may hold a secret.
        rows = [{**row._mapping, "error": mask_optional(row.error)} for row in conn.execute(query)]
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
        rows = [{k: _short(row[k]) for k in keep} for row in rows]
    _emit(rows, fmt, "sync runs")


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.2f}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


# -- quarantine -----------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Include resolved entries.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    fmt: FormatOption = Format.table,
) -> None:
    """Quarantined records: source, id, first reason, times seen."""
    engine = _registry(_settings())
    q = quarantine.c
    query = select(
        q.id, q.source_system, q.source_id, q.reason, q.seen_count, q.last_seen_at, q.resolved
    )
    if source:
        query = query.where(q.source_system == source)
    if not include_resolved:
        query = query.where(q.resolved.is_(False))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query.order_by(q.id).limit(limit))]
    _emit([{k: _short(v) for k, v in row.items()} for row in rows], fmt, "quarantine")


@quarantine_app.command("show")
def quarantine_show(
    entry: Annotated[int, typer.Argument(help="Quarantine entry id.")],
    fmt: FormatOption = Format.table,
) -> None:
    """One quarantined record: its raw payload and every reason."""
    engine = _registry(_settings())
    with engine.connect() as conn:
        row = conn.execute(select(quarantine).where(quarantine.c.id == entry)).first()
    if row is None:
        raise DossierHubError(f"no quarantine entry {entry}; see `dossierhub quarantine list`")
    data = dict(row._mapping)
    if fmt is Format.json:
        out.print_json(json.dumps(data, default=str, ensure_ascii=False))
        return
    out.print(
        f"[bold]quarantine {entry}[/]: source {data['source_system']} id {data['source_id']} "
        f"(seen {data['seen_count']}x, resolved={data['resolved']})"
    )
    for reason in data["reasons"]:
        out.print(f"  - {reason['field']}: {reason['message']} [{reason['code']}]")
    out.print_json(json.dumps(data["payload"], default=str, ensure_ascii=False))


@quarantine_app.command("retry")
def quarantine_retry(
    source: Annotated[str, typer.Argument(help="Source whose quarantine to retry.")],
    entries: Annotated[
        list[int] | None, typer.Argument(help="Entry ids (default: all unresolved).")
    ] = None,
) -> None:
    """Map quarantined records again (after a mapping fix) and load those that now pass."""
    settings = _settings()
    engine = _registry(settings)
    result = retry_quarantine(engine, open_connector(settings, source), ids=entries or None)
    out.print(f"{source}: {result.loaded} loaded, {result.still_rejected} still rejected")


# -- statistics -----------------------------------------------------------------------------
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
ExportOption = Annotated[ExportFormat, typer.Option("--format", "-f", help="Output format.")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file instead of the screen.")
]


THIS_YEAR = str(date.today().year)
NOT_REPORTED = "—"  # a figure with nothing to compute it from; blank in CSV/XLSX, null in JSON


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None


def _export(rows: list[dict[str, Any]], fmt: ExportFormat, output: Path | None, title: str) -> None:
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
        _emit(
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


def _fresh_registry() -> Engine:
    engine = _registry(_settings())
    stats.refresh(engine)
    return engine


@app.command("stats")
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
    chosen = _period(period)
    if rebuild:
        engine = _registry(_settings())
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
        _export(rows, fmt, output, f"open as of {day}")
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
    _export(rows, fmt, output, f"indicators {period}")


@app.command()
def coverage(
    period: PeriodOption = THIS_YEAR,
    by: ByOption = "",
    fmt: ExportOption = ExportFormat.table,
    output: OutputOption = None,
) -> None:
    """Portal-only against unified figures, side by side: what the province was missing."""
    chosen = _period(period)
    engine = _fresh_registry()
    with engine.connect() as conn:
        rows = stats.coverage(conn, period=chosen, by=by.split(","))
    _export(rows, fmt, output, f"coverage {period}")


@app.command()
def reconcile(
    period: Annotated[
        str, typer.Option("--period", "-p", help="'all' (default), a year, quarter or month.")
    ] = stats.ALL_TIME,
    fmt: ExportOption = ExportFormat.table,
    output: OutputOption = None,
) -> None:
    """Ask every source how many dossiers it holds and compare with the registry."""
    if period != stats.ALL_TIME:
        _period(period)
    settings = _settings()
    engine = _registry(settings)
    configs = load_sources(settings.sources_file)

    def opener(name: str) -> Connector:
        return open_connector(settings, name, configs[name])

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
    _export([{k: row[k] for k in keep} for row in rows], fmt, output, f"reconciliation {period}")


@app.command()
def verify(
    source: Annotated[str, typer.Argument(help="Source name from the sources file.")],
    fmt: FormatOption = Format.table,
) -> None:
    """Check a source against its thresholds: its whole quarantine against its size
    (max_quarantine_share) and its own count against the registry (max_reconciliation_gap).
    Exits with 1 when it fails."""
    from dossierhub.verify import verify_source

    settings = _settings()
    engine = _registry(settings)
    config = source_config(settings, source)
    connector = open_connector(settings, source, config)
    try:
        result = verify_source(engine, connector, config=config)
    finally:
        connector.close()
    _emit([result.as_dict()], fmt, f"verify {source}")
    result.raise_for_problems()


# -- connectors -----------------------------------------------------------------------------
connectors_app = typer.Typer(
    help="Installed connectors and their conformance.", no_args_is_help=True
)
app.add_typer(connectors_app, name="connectors")


@connectors_app.command("list")
def connectors_list(fmt: FormatOption = Format.table) -> None:
    """Connectors installed through the dossierhub.connectors entry points."""
    from importlib.metadata import entry_points

    rows = []
    for ep in sorted(entry_points(group="dossierhub.connectors"), key=lambda e: e.name):
        try:
            cls = ep.load()
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            status = "ok"
        except Exception as exc:  # a broken package must not hide the others
            doc, status = "", f"cannot load: {type(exc).__name__}: {exc}"
        package = ep.dist.name if ep.dist else ""
        rows.append(
            {
                "connector": ep.name,
                "class": ep.value,
                "package": package,
                "status": status,
                "about": doc,
            }
        )
    _emit(rows, fmt, "connectors")


@connectors_app.command("test")
def connectors_test(
    source: Annotated[str, typer.Argument(help="A source from the sources file.")],
) -> None:
    """Run the conformance checks on a configured source (reads it; changes nothing)."""
    from rich.markup import escape

    from connectors.conformance import SourceConformance

    settings = _settings()
    open_connector(settings, source).close()  # an unknown source or bad setting stops here
    mark = {"passed": "[green]ok[/]  ", "failed": "[red]FAIL[/]", "skipped": "[yellow]skip[/]"}
    failed = 0
    for result in SourceConformance(lambda: open_connector(settings, source)).run():
        failed += result.outcome == "failed"
        line = f"{mark[result.outcome]} {escape(result.title)}"
        if result.outcome == "failed":
            line += "".join(f"\n     {escape(text)}" for text in result.detail.splitlines())
            line += f"\n     promise broken: {escape(result.promise)}"
        elif result.detail:
            line += f" ({escape(result.detail)})"
        out.print(line, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


# -- simulators -----------------------------------------------------------------------------
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


# -- demo -----------------------------------------------------------------------------------
@app.command()
def demo(
    rows: Annotated[int, typer.Option(min=50, help="Dossiers per reference system.")] = 5_000,
    var: Annotated[Path, typer.Option(help="Folder for the demo databases and files.")] = Path(
        "var"
    ),
) -> None:
    """Build all five reference sector systems, sync them, and show what statistics gain."""
    from simulators import province

    settings = _settings(mode="demo")
    if "DOSSIERHUB_REGISTRY_URL" not in os.environ:
        settings.registry_url = SecretStr(f"sqlite:///{var / 'registry.db'}")
    engine = _registry(settings, ready=False)
    migrate.upgrade(engine)
    err.print(f"building the reference province ({rows:,} dossiers a system) in {var}/ ...")
    rows_out = []
    balanced = True
    with province.running(var, rows=rows) as systems:
        for system in systems:
            config = SourceConfig(
                connector=system.connector, description=system.description, settings=system.settings
            )
            result = _run_sync(settings, engine, system.name, config, full_refresh=False)
            with engine.connect() as conn:
                held = conn.execute(
                    select(func.count()).where(dossier.c.source_system == system.name)
                ).scalar_one()
                set_aside = conn.execute(
                    select(func.count()).where(
                        quarantine.c.source_system == system.name, quarantine.c.resolved.is_(False)
                    )
                ).scalar_one()
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
    _emit(rows_out, Format.table, "sync of every reference system")
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
