"""How the API answers a refused request: a Problem naming what is wrong and the fix."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from connectors.masking import first_line
from dossierhub.api.params import HINTS, InvalidParameterError
from dossierhub.api.schemas import ParameterProblem, Problem

log = logging.getLogger("dossierhub.api")


def problem_response(
    status: int, detail: str, errors: Sequence[ParameterProblem] = ()
) -> JSONResponse:
    body = Problem(detail=detail, errors=list(errors))
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


async def invalid_parameter(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidParameterError)
    refused = ParameterProblem(parameter=exc.parameter, message=exc.message)
    return problem_response(422, str(exc), [refused])


async def invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    details = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where = loc[0] if len(loc) > 1 else "query"
        name = loc[-1] if loc else "request"
        shown = error.get("input")
        text = repr(shown) if isinstance(shown, str | int | float) else None
        if text is not None and len(text) > 60:
            text = text[:57] + "..."
        if error.get("type") == "missing":
            message = "is required"
        elif error.get("type") == "string_pattern_mismatch" and text is not None:
            message = f"{text} is not valid"  # the regex itself would not help a reader
        else:
            message = str(error.get("msg", "is not valid"))
            if text is not None:
                message += f" (got {text})"
        if name in HINTS:
            message += f"; {HINTS[name]}"
        problems.append(ParameterProblem(parameter=name, message=message))
        details.append(f"{where} parameter {name!r}: {message}")
    return problem_response(422, "; ".join(details) or "invalid request", problems)


async def registry_unreachable(_request: Request, exc: Exception) -> Response:
    log.error("registry unreachable: %s", first_line(exc))
    return problem_response(503, "the registry database is not reachable; try again shortly")
