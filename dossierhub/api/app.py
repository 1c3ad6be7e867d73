"""The app: the API under /api/v1, the dashboard at /, security headers and log masking."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path as FilePath

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from connectors.masking import mask_text, secret_parameters
from dossierhub import store
from dossierhub.api.errors import (
    invalid_parameter,
    invalid_request,
    problem_response,
    registry_unreachable,
)
from dossierhub.api.params import API_PREFIX, InvalidParameterError
from dossierhub.api.routes import router
from dossierhub.settings import Settings

STATIC_DIR = FilePath(__file__).parent.parent / "static"
DESCRIPTION = "The HTTP API (`/api/v1`) and the dashboard (`/`), read-only over the registry."


# The dashboard loads only its own files: no CDN, no inline script. Plotly injects <style>
# elements, hence 'unsafe-inline' for styles only. Its forms are handled by its script and
# never submitted (form-action 'none'): a token typed before the script loads goes nowhere.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def plotly_js() -> FilePath | None:
    """The plotly.min.js shipped in the plotly package's wheel, if installed."""
    spec = importlib.util.find_spec("plotly")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = FilePath(folder) / "package_data" / "plotly.min.js"
        if candidate.is_file():
            return candidate
    return None


async def _refuse_credentials_in_url(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """400 for a token, password or key in the query string: URLs end up in logs and history."""
    found = secret_parameters(list(request.query_params))
    if found:
        return problem_response(
            400,
            f"credentials must not be sent in the URL (query parameter {found[0]!r}): send the "
            "token in the header 'Authorization: Bearer <token>'; treat a token sent this way "
            "as exposed and have it revoked (`dossierhub tokens revoke`)",
        )
    return await call_next(request)


class MaskedLog(logging.Filter):
    """Masks secrets in a log record's message and arguments (e.g. `?token=` in access logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in record.args)
        return True


def mask_server_logs() -> None:
    """Mask secrets in the web server's access and error logs (call after logging is set up)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskedLog) for f in logger.filters):
            logger.addFilter(MaskedLog())


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.url.path.startswith(API_PREFIX):
        headers.setdefault("Cache-Control", "no-store")
    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("Content-Security-Policy", DASHBOARD_CSP)
    return response


def create_app(engine: Engine) -> FastAPI:
    """The API under /api/v1 (OpenAPI at /api/v1/openapi.json) and the dashboard at /.

    The engine may use a read-only database role: the app never writes.
    """
    app = FastAPI(
        title="DossierHub API",
        version="1",
        summary="Unified registry statistics for the provincial statistics office.",
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # Swagger UI would load its scripts from a CDN
        redoc_url=None,
    )
    app.state.engine = engine
    app.include_router(router)
    app.add_exception_handler(InvalidParameterError, invalid_parameter)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(OperationalError, registry_unreachable)
    app.middleware("http")(_refuse_credentials_in_url)
    app.middleware("http")(_security_headers)  # outermost: the 400 above gets the headers too
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> Response:
        found = plotly_js()
        if found is None:
            return problem_response(404, "plotly is not installed; install the `plotly` package")
        return FileResponse(
            found, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def app_from_settings(settings: Settings | None = None) -> FastAPI:
    """The app on the registry named by DOSSIERHUB_REGISTRY_URL (`uvicorn --factory` target).

    Raises RegistryError naming the fix when the registry is unreachable or not migrated.
    """
    settings = settings or Settings()
    engine = store.open_registry(settings.registry_url)
    store.ensure_ready(engine)
    return create_app(engine)
