"""The `/api/v1` routes, one module per resource, gathered under one router."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from dossierhub.api.deps import AUTH_RESPONSES, caller
from dossierhub.api.params import API_PREFIX
from dossierhub.api.routes import dossiers, sources, statistics
from dossierhub.api.schemas import Caller
from dossierhub.tokens import Role

router = APIRouter(prefix=API_PREFIX, responses=AUTH_RESPONSES)


@router.get("/me", response_model=Caller, summary="The role of the calling token")
def me(role: Annotated[Role, Depends(caller)]) -> Caller:
    """What the presented token may read."""
    return Caller(role=str(role), source=role.source, reads_statistics=role.reads_statistics)


for module in (statistics, sources, dossiers):
    router.include_router(module.router)
