"""Scratch databases for sample sources: a new one for each check, dropped afterwards.

A conformance check may change its source (`make_changes`), so each check needs a sample of
its own. For a connector that reads a database, `scratch_database` makes that cheap: create an
empty database on a test server, load the sample into it, drop it when the check ends.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from connectors.errors import ConfigError


@contextmanager
def scratch_database(server_url: str, *, label: str = "sample") -> Iterator[str]:
    """A new, empty database; yields its URL and drops it afterwards.

    `server_url` is any database URL on a PostgreSQL or MariaDB/MySQL server the tests may
    create databases on (e.g. `postgresql+psycopg://postgres@127.0.0.1/postgres`); the new
    database is named `conformance_<label>_<random>`. For `sqlite://` URLs the database is a
    file in a temporary folder. The yielded URL keeps the server URL's password: hand it to
    the connector's settings, do not log it.
    """
    try:
        server = make_url(server_url)
    except ArgumentError:
        raise ConfigError(
            f"scratch database: {server_url.split('://')[0]}://... is not a database URL "
            "(e.g. postgresql+psycopg://user@host/postgres)"
        ) from None
    name = f"conformance_{label}_{secrets.token_hex(4)}"
    if server.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="conformance-") as folder:
            yield server.set(database=str(Path(folder) / f"{name}.db")).render_as_string(False)
        return
    create, drop = _statements(server, name)
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        _execute(engine, server, create)
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            _execute(engine, server, drop)
    finally:
        engine.dispose()


def _statements(server: URL, name: str) -> tuple[str, str]:
    backend = server.get_backend_name()
    if backend == "postgresql":
        return f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    if backend in {"mysql", "mariadb"}:
        return (
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
            f"DROP DATABASE IF EXISTS `{name}`",
        )
    raise ConfigError(
        f"scratch database: {backend} is not supported; give a PostgreSQL, MariaDB/MySQL or "
        "SQLite URL"
    )


def _execute(engine: Engine, server: URL, statement: str) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    except SQLAlchemyError as exc:
        where = server.render_as_string(hide_password=True)
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigError(
            f"scratch database: {statement.split(' ')[0].lower()} on {where} failed ({first}); "
            "check the server URL and that its user may create databases"
        ) from None
