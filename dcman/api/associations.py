"""/v1.0/peer-group-associations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from typing_extensions import TypedDict

from dcman.db.associations import Association
from dcman.api.auth import from_peer
from dcman.api.bodies import read_body
from dcman.api.commands.associations import (
    ASSOCIATION_UPDATE_SCHEMA,
    NEW_ASSOCIATION_SCHEMA,
    association_update,
    new_association,
)
from dcman.api.commands.wire import json_body
from dcman.api.responses import reads, writes
from dcman.api.state import site_context
from dcman.api.views import timestamp
from dcman.services import associations, peer_requests
from dcman.services.context import SiteContext

router = APIRouter(prefix="/peer-group-associations", tags=["peer-group-associations"])

AssociationBody = TypedDict("AssociationBody", {
    "id": int, "peer-group-id": int, "system-peer-id": int, "peer-group-priority": int | None,
    "association-type": str, "sync-status": str, "sync-message": str | None, "created-at": str,
    "updated-at": str | None})


class AssociationList(TypedDict):
    peer_group_associations: list[AssociationBody]


def view(a: Association) -> dict[str, Any]:
    return {
        "id": a.id,
        "peer-group-id": a.peer_group_id,
        "system-peer-id": a.system_peer_id,
        "peer-group-priority": a.peer_group_priority,
        "association-type": a.association_type,
        "sync-status": a.sync_status,
        "sync-message": a.sync_message,
        "created-at": timestamp(a.created_at),
        "updated-at": timestamp(a.updated_at),
    }


@router.get("", response_model=None, responses=reads(AssociationList))
async def list_associations(ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return {"peer_group_associations": [view(a) for a in await associations.list_associations(ctx)]}


@router.post("", response_model=None, responses=writes(AssociationBody, 409, 413, 422), openapi_extra=json_body(NEW_ASSOCIATION_SCHEMA))
async def create(request: Request, ctx: SiteContext = Depends(site_context),
                 peer: bool = Depends(from_peer)) -> dict[str, Any]:
    command = new_association(await read_body(request, allow_form=False))
    return view(await (peer_requests.copy_association(ctx, command) if peer
                       else associations.create_association(ctx, command)))


@router.get("/{association_id}", response_model=None, responses=reads(AssociationBody, 400, 404))
async def show(association_id: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return view(await associations.get_association(ctx, association_id))


@router.patch("/{association_id}", response_model=None, responses=writes(AssociationBody, 404, 413, 422),
              openapi_extra=json_body(ASSOCIATION_UPDATE_SCHEMA))
async def update(association_id: str, request: Request, ctx: SiteContext = Depends(site_context),
                 peer: bool = Depends(from_peer)) -> dict[str, Any]:
    update = association_update(await read_body(request, allow_form=False))
    return view(await (peer_requests.update_association_copy(ctx, association_id, update) if peer
                       else associations.update_association(ctx, association_id, update)))


@router.patch("/{association_id}/sync", response_model=None, responses=writes(AssociationBody, 404, 422))
async def sync(association_id: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return view(await associations.request_sync(ctx, association_id))


@router.delete("/{association_id}", response_class=Response, responses=writes(None, 404, 422))
async def delete(association_id: str, ctx: SiteContext = Depends(site_context),
                 peer: bool = Depends(from_peer)) -> Response:
    await (peer_requests.delete_association_copy(ctx, association_id) if peer
           else associations.delete_association(ctx, association_id))
    return Response(status_code=200)
