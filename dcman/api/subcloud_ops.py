"""/v1.0/subclouds/{sc}/prestage (the reference's PATCH verb, and POST as the issue names it).
Network reconfiguration is a PATCH of the subcloud itself (dcman.api.subclouds)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dcman.api import views
from dcman.api.bodies import read_body
from dcman.api.commands.prestage import PRESTAGE_SCHEMA, prestage_request
from dcman.api.responses import writes
from dcman.api.state import site_context
from dcman.services import subcloud_ops
from dcman.services.context import SiteContext

router = APIRouter(tags=["subclouds"])

async def _prestage(subcloud_ref: str, request: Request, ctx: SiteContext) -> dict[str, Any]:
    view, release = await subcloud_ops.prestage(ctx, subcloud_ref, prestage_request(await read_body(request)))
    # As the reference: the subcloud, with the release being prestaged.
    return {**views.subcloud(view), "prestage-software-version": release}


@router.patch("/subclouds/{subcloud_ref}/prestage", response_model=None,
              responses=writes(views.SubcloudBody, 404, 422),
              openapi_extra={"requestBody": {"required": True,
                                             "content": {"application/json": {"schema": PRESTAGE_SCHEMA}}}})
async def prestage(subcloud_ref: str, request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    """Prestage a managed, online, deployed subcloud: packages, then images (prestage-status)."""
    return await _prestage(subcloud_ref, request, ctx)


@router.post("/subclouds/{subcloud_ref}/prestage", response_model=None,
             responses=writes(views.SubcloudBody, 404, 422),
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"application/json": {"schema": PRESTAGE_SCHEMA}}}})
async def prestage_post(subcloud_ref: str, request: Request,
                        ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    """The same prestage, as POST."""
    return await _prestage(subcloud_ref, request, ctx)
