"""Shared fixtures: real SQLite, PostgreSQL and MariaDB databases, fresh for each test.

A test that needs a server skips with the reason when the server is unreachable on a
developer machine; with CI=true a missing server fails the test instead, so CI cannot pass
by skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from connectors.identifiers import IdentifierHasher
from dossierhub import store
from models import migrate

PG_SERVER = os.environ.get(
    "DOSSIERHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_SERVER = os.environ.get(
    "DOSSIERHUB_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

TEST_KEY = SecretStr("test-key-" + "x" * 32)


def unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    if IN_CI:
        pytest.fail(f"{message}; CI must run this test, start the server (see .ci/run)")
    pytest.skip(message)


def _server(url: str, what: str) -> Engine:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        unavailable(what, exc)
    return engine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a `slow` test first, the rest in their usual order: --dist loadfile hands
    the files to the workers in this order, and a long file handed out last would leave one
    worker running it alone while the other idles."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


_dropping: list[Future[None]] = []
_dropper: ThreadPoolExecutor | None = None


def drop_database_later(name: str) -> None:
    """Drop the PostgreSQL test database `name` in the background, so the next test need not
    wait: every DROP DATABASE makes PostgreSQL checkpoint (seconds on a busy server). The
    session waits for every drop at its end, and a failed drop fails it."""
    global _dropper
    if _dropper is None:
        _dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-database")

    def drop() -> None:
        server = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        try:
            with server.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            server.dispose()

    _dropping.append(_dropper.submit(drop))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _dropper is not None:
        _dropper.shutdown(wait=True)
    for dropped in _dropping:
        dropped.result()


@pytest.fixture
def databases() -> Iterator[Callable[[], str]]:
    """Fresh, empty PostgreSQL databases on demand (a source and registries), dropped after
    the test."""
    server = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"dh_test_{secrets.token_hex(4)}"
        try:
            with server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except SQLAlchemyError as exc:
            unavailable("PostgreSQL", exc)
        made.append(name)
        return server.url.set(database=name).render_as_string(hide_password=False)

    yield make
    server.dispose()
    for name in made:
        drop_database_later(name)


@pytest.fixture
def pg_url(databases: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    return databases()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database, dropped afterwards."""
    server = _server(MARIADB_SERVER, "MariaDB")
    name = f"dh_test_{secrets.token_hex(4)}"
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = server.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'source.db'}"


@pytest.fixture(scope="session")
def sqlite_registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite registry migrated once per test process, copied for each test that needs one:
    the same schema as migrating each (the migrations are tested in
    tests/models/test_migrations.py), without running Alembic hundreds of times."""
    path = tmp_path_factory.mktemp("registry-template") / "registry.db"
    engine = store.open_registry(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_registry_template() -> Iterator[str]:
    """A PostgreSQL registry migrated once per test process, the template of each test's
    (CREATE DATABASE ... TEMPLATE); nothing connects to it after the migration."""
    server = _server(PG_SERVER, "PostgreSQL")
    name = f"dh_template_{secrets.token_hex(4)}"
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = store.open_registry(server.url.set(database=name).render_as_string(False))
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield name
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def sqlite_registry_copy(request: pytest.FixtureRequest, folder: Path) -> str:
    path = folder / "registry.db"
    shutil.copyfile(request.getfixturevalue("sqlite_registry_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated registry on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        engine = store.open_registry(sqlite_registry_copy(request, tmp_path))
    elif "pg_url" in request.fixturenames:  # the test uses this database for more
        engine = store.open_registry(request.getfixturevalue("pg_url"))
        migrate.upgrade(engine)
    else:
        template = request.getfixturevalue("pg_registry_template")
        server = _server(PG_SERVER, "PostgreSQL")
        name = f"dh_test_{secrets.token_hex(4)}"
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        engine = store.open_registry(server.url.set(database=name).render_as_string(False))
        server.dispose()
        request.addfinalizer(lambda: drop_database_later(name))
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite registry alone, for tests about a source rather than the registry."""
    engine = store.open_registry(sqlite_registry_copy(request, tmp_path))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def source_url(request: pytest.FixtureRequest) -> str:
    """A fresh source database of each kind the Tax system runs on."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mariadb": "mariadb_url"}
    return str(request.getfixturevalue(fixture[request.param]))


@pytest.fixture
def hasher() -> IdentifierHasher:
    return IdentifierHasher(TEST_KEY)
