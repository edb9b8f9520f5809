"""/v1.0/subcloud-backup: create, delete and restore subcloud backups. Every verb takes its
fields as the multipart form the dcmanager client sends, or as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from dcman.api import views
from dcman.api.bodies import read_body
from dcman.api.responses import writes
from dcman.api.state import site_context
from dcman.services import backup
from dcman.services.context import SiteContext

router = APIRouter(tags=["subcloud-backup"])

_FLAG = {"type": "string", "enum": ["true", "false"]}
_TARGET = {"subcloud": {"type": "string", "description": "name or id"},
           "group": {"type": "string", "description": "name or id"}}
CREATE_SCHEMA = {"type": "object", "required": ["sysadmin_password"], "properties": {
    **_TARGET, "local_only": _FLAG, "registry_images": _FLAG,
    "backup_values": {"type": "string", "format": "binary"},
    "sysadmin_password": {"type": "string", "description": "base64"}}}
DELETE_SCHEMA = {"type": "object", "properties": {
    **_TARGET, "local_only": _FLAG, "sysadmin_password": {"type": "string", "description": "base64; for local_only"}}}
RESTORE_SCHEMA = {"type": "object", "required": ["sysadmin_password"], "properties": {
    **_TARGET, "local_only": _FLAG, "with_install": _FLAG, "registry_images": _FLAG, "release": {"type": "string"},
    "restore_values": {"type": "string", "format": "binary"},
    "sysadmin_password": {"type": "string", "description": "base64"}}}


def _form(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema},
                                                          "application/json": {"schema": schema}}}}


def _listed(found: list) -> dict[str, Any]:
    return {"subclouds": [views.subcloud(view) for view in found]}


@router.post("/subcloud-backup", response_model=None, responses=writes(views.SubcloudList, 404, 413),
             openapi_extra=_form(CREATE_SCHEMA))
async def create(request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    """Back up a subcloud or every valid subcloud of a group; the answer lists those admitted."""
    return _listed(await backup.create(ctx, await read_body(request)))


@router.patch("/subcloud-backup/delete/{release}", response_model=None, status_code=204,
              responses={**writes(None, 404, 413, 422, status=204),
                         207: {"description": "Some subclouds were skipped or failed: the notice says which.",
                               "content": {"application/json": {"schema": {"type": "string"}}}}},
              openapi_extra=_form(DELETE_SCHEMA))
async def delete(release: str, request: Request, ctx: SiteContext = Depends(site_context)) -> Response:
    """Delete the backups of `release`; 204 when all went, 207 with a notice otherwise."""
    notice = await backup.delete(ctx, release, await read_body(request), ctx.agents)
    if notice is None:
        return Response(status_code=204)
    return JSONResponse(notice, status_code=207)


@router.patch("/subcloud-backup/restore", response_model=None, responses=writes(views.SubcloudList, 404, 413),
              openapi_extra=_form(RESTORE_SCHEMA))
async def restore(request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    """Restore a subcloud or every valid subcloud of a group from its backup."""
    return _listed(await backup.restore(ctx, await read_body(request)))
