"""Dependencies of the routes: who is calling (bearer token → role) and what it may read.

Every `/api/v1` route depends on `caller`, which also refuses query parameters the route does
not take (a misspelt filter must not silently widen a statistic).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.dependencies.utils import get_flat_dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from dossierhub import tokens
from dossierhub.api.params import API_PREFIX, SOURCE_PATTERN, InvalidParameterError
from dossierhub.api.schemas import Problem
from dossierhub.tokens import Role

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid or revoked bearer token."},
    403: {"model": Problem, "description": "The token's role does not cover this request."},
    422: {"model": Problem, "description": "A parameter is not valid; the message says why."},
}
SOURCE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"model": Problem, "description": "The registry knows no such source."},
}
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="A token from `dossierhub tokens create --role ROLE`.",
)
_CHALLENGE = 'Bearer realm="dossierhub"'
# Each route keeps the names of the query parameters it declares (worked out once).
_QUERY_NAMES = "_dossierhub_query_names"


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Role:
    """The role of the request's bearer token, or 401."""
    if credentials is None:
        raise HTTPException(
            401,
            detail="missing bearer token: send the header 'Authorization: Bearer <token>' "
            "(an administrator creates tokens with `dossierhub tokens create`)",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    role = tokens.verify(engine_of(request), credentials.credentials)
    if role is None:
        raise HTTPException(
            401,
            detail="the bearer token is not valid or was revoked; ask an administrator for a new "
            "one (`dossierhub tokens create`)",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    _refuse_unknown_parameters(request)
    return role


def _refuse_unknown_parameters(request: Request) -> None:
    """A misspelt filter (`sectr=`) must not silently widen a statistic."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known: frozenset[str] | None = getattr(route, _QUERY_NAMES, None)
    if known is None:
        flat = get_flat_dependant(route.dependant)
        known = frozenset(p.alias for p in flat.query_params)
        setattr(route, _QUERY_NAMES, known)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "no query parameters"
        raise InvalidParameterError(
            unknown[0], f"is not a parameter of {route.path}; it takes: {takes}"
        )


def statistics_reader(role: Annotated[Role, Depends(caller)]) -> Role:
    """A role that may read statistics, or 403."""
    if not role.reads_statistics:
        raise HTTPException(
            403,
            detail=f"a token with role {str(role)!r} cannot read statistics; it may read only "
            f"{API_PREFIX}/sources/{role.source} and its runs and quarantine",
        )
    return role


def source_reader(
    source: Annotated[
        str, Path(pattern=SOURCE_PATTERN, description="Source name, e.g. tax.", max_length=64)
    ],
    role: Annotated[Role, Depends(caller)],
) -> str:
    """The source named in the path, when the role may read it (else 403)."""
    if not role.reads_source(source):
        raise HTTPException(
            403,
            detail=f"a token with role {str(role)!r} may read only source {role.source!r}, "
            f"not {source!r}",
        )
    return source


StatisticsReader = Annotated[Role, Depends(statistics_reader)]
SourceName = Annotated[str, Depends(source_reader)]
