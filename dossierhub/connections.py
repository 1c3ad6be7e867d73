"""Airflow-style Connections as DossierHub settings, without importing Airflow.

One way to name the registry, for the CLI and the DAGs alike:

1. `DOSSIERHUB_REGISTRY_URL`, when set;
2. else the Connection `dossierhub_registry` (the variable AIRFLOW_CONN_DOSSIERHUB_REGISTRY, in
   Airflow's URI or JSON form; inside Airflow also a Connection stored in Airflow);
3. else the default `sqlite:///var/registry.db`.

A source's credentials may come from the Connection `dossierhub_source_<source>`
(AIRFLOW_CONN_DOSSIERHUB_SOURCE_<SOURCE>): for a SQL source its fields make the database URL;
for an HTTP source host and port make `base_url`, login the client id and password the
connector's secret setting; its extra JSON may name any setting directly. The sources file then
needs no `${VAR}` for them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr
from sqlalchemy.engine import URL

from dossierhub.errors import ConfigError
from dossierhub.settings import DEFAULT_REGISTRY_URL, Settings

REGISTRY_CONNECTION = "dossierhub_registry"
REGISTRY_VARIABLE = "DOSSIERHUB_REGISTRY_URL"
_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


def source_connection_id(source: str) -> str:
    return f"dossierhub_source_{source}"


def variable_name(conn_id: str) -> str:
    """The environment variable Airflow reads a Connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


@dataclass(frozen=True)
class ConnectionSpec:
    """The fields of an Airflow Connection that DossierHub uses; `repr` hides the password."""

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


def parse_connection(conn_id: str, text: str) -> ConnectionSpec:
    """An Airflow Connection from its URI (`scheme://login:password@host:port/schema?k=v`) or
    JSON (`{"conn_type": ..., "host": ...}`) form, as Airflow reads AIRFLOW_CONN_* variables."""
    where = f"Connection {conn_id} ({variable_name(conn_id)})"
    text = text.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where} is not valid JSON: {exc.msg} at {exc.pos}") from None
        if not isinstance(document, dict) or not document.get("conn_type"):
            raise ConfigError(f"{where}: the JSON form needs a conn_type")
        given = document.get("extra") or {}
        if isinstance(given, str):
            try:
                given = json.loads(given)
            except json.JSONDecodeError:
                raise ConfigError(f"{where}: extra is not a JSON object") from None
        port = document.get("port")
        return ConnectionSpec(
            conn_id=conn_id,
            conn_type=str(document["conn_type"]),
            host=document.get("host") or None,
            port=int(port) if port not in (None, "") else None,
            login=document.get("login") or None,
            password=document.get("password") or None,
            schema=document.get("schema") or None,
            extra=dict(given),
        )
    parts = urlsplit(text)
    if not parts.scheme or "://" not in text:
        raise ConfigError(
            f"{where} is neither a URI like postgresql://user:***@host:5432/db nor a JSON object"
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{where}: the port is not a number") from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in query:
        try:
            extra: dict[str, Any] = dict(json.loads(query.pop("__extra__")))
        except (json.JSONDecodeError, TypeError, ValueError):
            raise ConfigError(f"{where}: __extra__ is not a JSON object") from None
        extra.update(query)
    else:
        extra = dict(query)
    return ConnectionSpec(
        conn_id=conn_id,
        conn_type=parts.scheme.replace("-", "_"),
        host=unquote(parts.hostname or "") or None,
        port=port,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=unquote(parts.path[1:]) or None,  # as Airflow reads it: the path after one "/"
        extra=extra,
    )


def from_environment(
    conn_id: str, environ: Mapping[str, str] | None = None
) -> ConnectionSpec | None:
    """The Connection defined by its AIRFLOW_CONN_* variable, or None when it is not set."""
    text = (os.environ if environ is None else environ).get(variable_name(conn_id), "")
    return parse_connection(conn_id, text) if text.strip() else None


def database_url(conn: ConnectionSpec) -> str:
    """A SQLAlchemy URL from a database Connection (its extra `url` wins when given)."""
    if conn.extra.get("url"):
        return str(conn.extra["url"])
    if conn.conn_type == "sqlite":
        # Airflow keeps the file in host (JSON form) or in the path (URI sqlite:////abs/file.db).
        path = conn.host or ""
        if conn.schema:
            path = f"{path}/{conn.schema}" if path else conn.schema
        return f"sqlite:///{path}"
    url = URL.create(
        _DRIVERS.get(conn.conn_type, conn.conn_type),
        username=conn.login,
        password=conn.password,
        host=conn.host,
        port=conn.port,
        database=conn.schema,
    )
    return url.render_as_string(hide_password=False)


def source_settings(
    conn: ConnectionSpec, *, sql: bool, secret_setting: str | None
) -> dict[str, Any]:
    """Connector settings from a source's Connection (see the module's docstring)."""
    settings = {k: v for k, v in conn.extra.items() if k != "url" or sql}
    if sql:
        settings["url"] = database_url(conn)
        return settings
    if conn.host and "base_url" not in settings:
        scheme = "https" if conn.conn_type == "https" else "http"
        port = f":{conn.port}" if conn.port else ""
        path = f"/{conn.schema}" if conn.schema else ""
        settings["base_url"] = f"{scheme}://{conn.host}{port}{path}"
    if conn.login and "client_id" not in settings:
        settings["client_id"] = conn.login
    if conn.password and secret_setting:
        settings[secret_setting] = conn.password
    return settings


def source_overrides(
    source: str, connector: str, conn: ConnectionSpec | None = None
) -> dict[str, Any]:
    """The settings the source's Connection gives (from the environment unless `conn` is
    given); {} when it has none."""
    conn = conn or from_environment(source_connection_id(source))
    if conn is None:
        return {}
    from connectors.sql import SqlConnector
    from dossierhub.sources import connector_class

    cls = connector_class(connector)
    return source_settings(
        conn, sql=issubclass(cls, SqlConnector), secret_setting=getattr(cls, "secret_setting", None)
    )


@dataclass(frozen=True)
class RegistryChoice:
    url: SecretStr
    origin: str  # which setting named it, for the user


def choose_registry(
    *,
    environ: Mapping[str, str] | None = None,
    connection: ConnectionSpec | None = None,
) -> RegistryChoice:
    """The registry URL and where it came from, by the order in the module's docstring.

    `connection` is the registry Connection when the caller looked it up elsewhere (Airflow's
    own store); otherwise the AIRFLOW_CONN_DOSSIERHUB_REGISTRY variable is read.
    """
    env = os.environ if environ is None else environ
    if env.get(REGISTRY_VARIABLE, "").strip():
        return RegistryChoice(SecretStr(env[REGISTRY_VARIABLE].strip()), REGISTRY_VARIABLE)
    conn = connection or from_environment(REGISTRY_CONNECTION, env)
    if conn is not None:
        origin = (
            variable_name(REGISTRY_CONNECTION)
            if connection is None
            else f"Airflow Connection {REGISTRY_CONNECTION}"
        )
        return RegistryChoice(SecretStr(database_url(conn)), origin)
    return RegistryChoice(SecretStr(DEFAULT_REGISTRY_URL), "the default")


def settings_with_registry(
    *, connection: ConnectionSpec | None = None, **overrides: Any
) -> tuple[Settings, str]:
    """DossierHub settings whose registry follows `choose_registry`, and where it came from."""
    settings = Settings(**overrides)
    if "registry_url" in overrides:
        return settings, "the caller"
    choice = choose_registry(connection=connection)
    settings.registry_url = choice.url
    return settings, choice.origin
