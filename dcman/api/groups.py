"""/v1.0/subcloud-groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from dcman.api import views
from dcman.api.bodies import read_body
from dcman.api.commands.groups import GROUP_UPDATE_SCHEMA, NEW_GROUP_SCHEMA, group_update, new_group
from dcman.api.commands.wire import json_body
from dcman.api.responses import reads, writes
from dcman.api.state import site_context
from dcman.services import groups, subclouds
from dcman.services.context import SiteContext

router = APIRouter(prefix="/subcloud-groups", tags=["subcloud-groups"])


@router.get("", response_model=None, responses=reads(views.GroupList))
async def list_groups(ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return {"subcloud_groups": [views.group(g) for g in await groups.list_groups(ctx)]}


@router.post("", response_model=None, responses=writes(views.Group, 409, 413), openapi_extra=json_body(NEW_GROUP_SCHEMA))
async def create_group(request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.group(await groups.create_group(ctx, new_group(await read_body(request, allow_form=False))))


@router.get("/{group_ref}", response_model=None, responses=reads(views.Group, 400, 404))
async def show_group(group_ref: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.group(await groups.get_group(ctx, group_ref))


@router.patch("/{group_ref}", response_model=None, responses=writes(views.Group, 404, 409, 413),
              openapi_extra=json_body(GROUP_UPDATE_SCHEMA))
async def update_group(group_ref: str, request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.group(await groups.update_group(
        ctx, group_ref, group_update(await read_body(request, allow_form=False))))


@router.delete("/{group_ref}", response_class=Response, responses=writes(None, 404))
async def delete_group(group_ref: str, ctx: SiteContext = Depends(site_context)) -> Response:
    await groups.delete_group(ctx, group_ref)
    return Response(status_code=200)


@router.get("/{group_ref}/subclouds", response_model=None, responses=reads(views.SubcloudList, 400, 404))
async def group_subclouds(group_ref: str, ctx: SiteContext = Depends(site_context)) -> Response:
    return Response(await subclouds.list_subclouds_json(ctx, group_ref, with_endpoints=False),
                    media_type="application/json")
