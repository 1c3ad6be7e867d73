"""The HTTP API (`/api/v1`) and the dashboard (`/`), read-only over the registry.

What the API promises:

* every `/api/v1` endpoint needs a bearer token (`dossierhub tokens create`): none or an
  invalid one gives 401 with `WWW-Authenticate: Bearer`; a token whose role does not cover
  the request gives 403 (an `agency:<source>` token reads only its own source's health, runs
  and quarantine);
* a bad parameter (an unknown period or grouping, a malformed date, a limit above the cap, a
  query parameter the endpoint does not take) gives 422 with a message naming the parameter
  and the fix, never a 500; parameters reach SQL only as bound values;
* responses are the shapes declared here, kept apart from the canonical record and the
  registry tables, and never carry personal data: the dossier list has no applicant key.

The API only reads, so it can run on the read-only database role of docs/operations.md. It
therefore does not refresh the statistics itself: the statistics DAG (after each sync) and
`dossierhub stats` do, and every statistics response says how fresh it is
(`statistics_as_of`). A refresh on read would also race when several API workers found the
rollup stale at once.

The package, one module per role: `schemas` (response shapes), `params` (request parameters
and their fix hints), `deps` (bearer token → role), `errors` (refusals as Problems),
`routes/` (one module per resource; the queries they run are in `dossierhub.reads` and
`dossierhub.stats`) and `app` (the app factory, the dashboard, security headers).
"""

from __future__ import annotations

from dossierhub.api.app import (
    DASHBOARD_CSP,
    STATIC_DIR,
    MaskedLog,
    app_from_settings,
    create_app,
    mask_server_logs,
    plotly_js,
)
from dossierhub.api.params import API_PREFIX, MAX_PAGE, InvalidParameterError
from dossierhub.api.schemas import DossierView, Problem

__all__ = [
    "API_PREFIX",
    "DASHBOARD_CSP",
    "MAX_PAGE",
    "STATIC_DIR",
    "DossierView",
    "InvalidParameterError",
    "MaskedLog",
    "Problem",
    "app_from_settings",
    "create_app",
    "mask_server_logs",
    "plotly_js",
]
