"""/v1.0/processes: the dcman processes sharing this site's database (dcman's own addition)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from dcman.api.state import site_context
from dcman.services.cluster_status import cluster_status
from dcman.services.context import SiteContext

router = APIRouter(prefix="/processes", tags=["processes"])


@router.get("")
async def list_processes(ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return await cluster_status(ctx)
