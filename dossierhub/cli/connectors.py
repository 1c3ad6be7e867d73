"""`dossierhub connectors ...`: the installed connectors and their conformance."""

from __future__ import annotations

from typing import Annotated

import typer

from dossierhub.cli.common import Format, FormatOption, out
from dossierhub.cli.common import emit as _emit  # short names kept: bodies unchanged
from dossierhub.cli.common import settings as _settings
from dossierhub.sources import open_connector

connectors_app = typer.Typer(
    help="Installed connectors and their conformance.", no_args_is_help=True
)


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
