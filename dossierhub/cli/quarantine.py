"""`dossierhub quarantine ...`: the records set aside, their reasons, and loading them again.

Times are stored in UTC while the agencies' rows are local, so every time shown here has the
local time (Asia/Ho_Chi_Minh, +07:00) beside it; the stored reasons are not changed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from dossierhub import reads
from dossierhub.cli.common import (
    Format,
    FormatOption,
    OnlySourceOption,
    emit,
    err,
    local,
    out,
    registry,
    settings,
    short,
)
from dossierhub.errors import DossierHubError
from dossierhub.sources import open_connector
from dossierhub.sync import retry_quarantine

quarantine_app = typer.Typer(
    help="Records set aside because they could not be loaded.", no_args_is_help=True
)


def _listed(entry: reads.QuarantineEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "source_system": entry.source_system,
        "source_id": entry.source_id,
        "reason": entry.reason,
        "seen_count": entry.seen_count,
        "last_seen_at": short(entry.last_seen_at),
        "last_seen_local": local(entry.last_seen_at),
        "resolved": entry.resolved,
    }


@quarantine_app.command("list")
def quarantine_list(
    source: OnlySourceOption = None,
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Include resolved entries.")
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, help="List at most this many entries (oldest first).")
    ] = 50,
    fmt: FormatOption = Format.table,
) -> None:
    """Quarantined records: source, id, first reason, times seen, last seen (UTC and local).

    Says on stderr when there are more entries than --limit lists.
    """
    engine = registry(settings())
    with engine.connect() as conn:
        listing = reads.quarantine_entries(
            conn, source=source or None, include_resolved=include_resolved, limit=limit
        )
    shown = len(listing.entries)
    title = "quarantine" if shown == listing.total else f"quarantine ({shown} of {listing.total})"
    emit([_listed(entry) for entry in listing.entries], fmt, title)
    if listing.total > shown:
        err.print(
            f"listed {shown} of {listing.total} quarantine entries (oldest first); "
            f"`--limit {listing.total}` lists them all",
            highlight=False,
        )


@quarantine_app.command("show")
def quarantine_show(
    entry: Annotated[int, typer.Argument(help="Quarantine entry id.")],
    fmt: FormatOption = Format.table,
) -> None:
    """One quarantined record: its raw payload and every reason (times also in local time)."""
    engine = registry(settings())
    with engine.connect() as conn:
        data = reads.quarantine_record(conn, entry_id=entry)
    if data is None:
        raise DossierHubError(f"no quarantine entry {entry}; see `dossierhub quarantine list`")
    for name in ("first_seen", "last_seen", "resolved"):
        data[f"{name}_local"] = local(data[f"{name}_at"])
    for reason in data["reasons"]:
        if isinstance(reason, dict) and isinstance(reason.get("message"), str):
            reason["message_local"] = reads.with_local_times(reason["message"])
    if fmt is Format.json:
        out.print_json(json.dumps(data, default=str, ensure_ascii=False))
        return
    out.print(
        f"[bold]quarantine {entry}[/]: source {data['source_system']} id "
        f"{escape(str(data['source_id']))} "
        f"(seen {data['seen_count']}x, resolved={data['resolved']})",
        highlight=False,
    )
    out.print(
        f"  first seen {short(data['first_seen_at'])} UTC ({data['first_seen_local']}), "
        f"last seen {short(data['last_seen_at'])} UTC ({data['last_seen_local']})",
        highlight=False,
    )
    for reason in data["reasons"]:
        # Escaped: a code in brackets ([invalid_date]) would read as rich markup and vanish.
        message = reason.get("message_local", reason["message"])
        out.print(escape(f"  - {reason['field']}: {message} [{reason['code']}]"), highlight=False)
    out.print_json(json.dumps(data["payload"], default=str, ensure_ascii=False))


@quarantine_app.command("retry")
def quarantine_retry(
    source: Annotated[str, typer.Argument(help="Source whose quarantine to retry.")],
    entries: Annotated[
        list[int] | None, typer.Argument(help="Entry ids (default: all unresolved).")
    ] = None,
) -> None:
    """Map quarantined records again (after a mapping fix) and load those that now pass."""
    chosen = settings()
    engine = registry(chosen)
    result = retry_quarantine(engine, open_connector(chosen, source), ids=entries or None)
    out.print(f"{source}: {result.loaded} loaded, {result.still_rejected} still rejected")
