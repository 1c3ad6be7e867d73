"""`dossierhub connectors ...`: the installed connectors and their conformance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

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
    from connectors import testing

    settings = _settings()
    connector = open_connector(settings, source)
    checks: list[tuple[str, Callable[[], object]]] = [
        ("check() reports the source healthy", lambda: testing.check_health(connector)),
    ]
    state: dict[str, Any] = {}

    def full_read() -> None:
        state["reading"] = testing.check_pagination(connector)

    checks += [
        ("pagination ends; batch size changes nothing", full_read),
        ("source ids are unique", lambda: testing.check_unique_ids(connector, state["reading"])),
        (
            "every record maps or is rejected with reasons",
            lambda: testing.check_mapping(connector, state["reading"].records),
        ),
        (
            "resuming from a saved cursor skips nothing",
            lambda: testing.check_resume(connector, state["reading"]),
        ),
        ("count() agrees with read()", lambda: testing.check_count(connector, state["reading"])),
    ]
    failed = 0
    try:
        for title, check in checks:
            try:
                check()
            except (AssertionError, KeyError) as exc:
                failed += 1
                out.print(f"[red]FAIL[/] {title}: {exc}", highlight=False)
                if "reading" not in state:
                    break
            else:
                out.print(f"[green]ok[/]   {title}")
    finally:
        connector.close()
    if failed:
        raise typer.Exit(1)
