"""/v1.0/subcloud-groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from dcman.api import views
from dcman.api.bodies import read_body
from dcman.api.state import site_context
from dcman.services import groups, subclouds
from dcman.services.context import SiteContext

router = APIRouter(prefix="/subcloud-groups", tags=["subcloud-groups"])

GROUP_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": {"type": "string", "minLength": 1, "maxLength": 254},
        "update_apply_type": {"type": "string", "enum": ["parallel", "serial"]},
        "max_parallel_subclouds": {"type": "integer", "minimum": 1, "maximum": 5000},
    },
}
NEW_GROUP_SCHEMA = {**GROUP_SCHEMA, "required": list(GROUP_SCHEMA["properties"])}


def _body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.get("")
async def list_groups(ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return {"subcloud_groups": [views.group(g) for g in await groups.list_groups(ctx)]}


@router.post("", openapi_extra=_body(NEW_GROUP_SCHEMA))
async def create_group(request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.group(await groups.create_group(ctx, await read_body(request, allow_form=False)))


@router.get("/{group_ref}")
async def show_group(group_ref: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.group(await groups.get_group(ctx, group_ref))


@router.patch("/{group_ref}", openapi_extra=_body(GROUP_SCHEMA))
async def update_group(group_ref: str, request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.group(await groups.update_group(ctx, group_ref, await read_body(request, allow_form=False)))


@router.delete("/{group_ref}")
async def delete_group(group_ref: str, ctx: SiteContext = Depends(site_context)) -> Response:
    await groups.delete_group(ctx, group_ref)
    return Response(status_code=200)


@router.get("/{group_ref}/subclouds")
async def group_subclouds(group_ref: str, ctx: SiteContext = Depends(site_context)) -> Response:
    return Response(await subclouds.list_subclouds_json(ctx, group_ref, with_endpoints=False),
                    media_type="application/json")
