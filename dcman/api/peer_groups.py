"""/v1.0/subcloud-peer-groups (geo-redundancy reference §1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from typing_extensions import TypedDict

from dcman.api import views
from dcman.api.auth import from_peer
from dcman.api.bodies import read_body
from dcman.api.commands.peer_groups import (
    MIGRATE_SCHEMA,
    NEW_PEER_GROUP_SCHEMA,
    PEER_GROUP_UPDATE_SCHEMA,
    audit_copy,
    migrate_password,
    new_peer_group,
    peer_group_update,
)
from dcman.api.commands.wire import json_body
from dcman.api.responses import reads, writes
from dcman.api.state import site_context
from dcman.domain.migration import operator_audit_refused
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.services import migration, peer_groups
from dcman.services.context import SiteContext

router = APIRouter(prefix="/subcloud-peer-groups", tags=["subcloud-peer-groups"])

PeerGroup = TypedDict("PeerGroup", {
    "id": int, "peer_group_name": str, "group_priority": int, "group_state": str, "max_subcloud_rehoming": int,
    "system_leader_id": str, "system_leader_name": str, "migration_status": str | None, "created-at": str,
    "updated-at": str | None})


class PeerGroupList(TypedDict):
    subcloud_peer_groups: list[PeerGroup]


class PeerGroupStatus(TypedDict):
    peer_group_id: int
    peer_group_name: str
    total_subclouds: int
    complete: int
    waiting_for_migrate: int
    rehoming: int
    rehome_failed: int
    managed: int
    unmanaged: int
    migration_message: str | None  # dcman's: what a running migration waits for, if anything


class MigratingPeerGroup(PeerGroup):
    """The group, and the subclouds its migration queued for rehoming."""

    subclouds: list[views.SubcloudBody]


class PeerGroupCopy(TypedDict):
    """This site's copy of a group, as a peer site's audit reads it."""

    peer_group_name: str
    group_priority: int
    group_state: str
    max_subcloud_rehoming: int
    system_leader_id: str
    system_leader_name: str
    migration_status: str | None


def peer_group(g: SubcloudPeerGroup) -> dict[str, Any]:
    return {
        "id": g.id,
        "peer_group_name": g.peer_group_name,
        "group_priority": g.group_priority,
        "group_state": g.group_state,
        "max_subcloud_rehoming": g.max_subcloud_rehoming,
        "system_leader_id": g.system_leader_id,
        "system_leader_name": g.system_leader_name,
        "migration_status": g.migration_status,
        "created-at": views.timestamp(g.created_at),
        "updated-at": views.timestamp(g.updated_at),
    }


@router.get("", response_model=None, responses=reads(PeerGroupList))
async def list_peer_groups(ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return {"subcloud_peer_groups": [peer_group(g) for g in await peer_groups.list_peer_groups(ctx)]}


@router.post("", response_model=None, responses=writes(PeerGroup, 409, 413), openapi_extra=json_body(NEW_PEER_GROUP_SCHEMA))
async def create_peer_group(request: Request, ctx: SiteContext = Depends(site_context),
                            peer: bool = Depends(from_peer)) -> dict[str, Any]:
    command = new_peer_group(await read_body(request, allow_form=False), from_peer=peer)
    return peer_group(await peer_groups.create_peer_group(ctx, command))


@router.get("/{group_ref}", response_model=None, responses=reads(PeerGroup, 400, 404))
async def show_peer_group(group_ref: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return peer_group(await peer_groups.get_peer_group(ctx, group_ref))


@router.patch("/{group_ref}", response_model=None, responses=writes(PeerGroup, 404, 409, 413, 422),
              openapi_extra=json_body(PEER_GROUP_UPDATE_SCHEMA))
async def update_peer_group(group_ref: str, request: Request,
                            ctx: SiteContext = Depends(site_context),
                            peer: bool = Depends(from_peer)) -> dict[str, Any]:
    update = peer_group_update(await read_body(request, allow_form=False), from_peer=peer)
    return peer_group(await peer_groups.update_peer_group(ctx, group_ref, update))


@router.delete("/{group_ref}", response_class=Response, responses=writes(None, 404, 409, 422))
async def delete_peer_group(group_ref: str, ctx: SiteContext = Depends(site_context)) -> Response:
    await peer_groups.delete_peer_group(ctx, group_ref)
    return Response(status_code=200)


@router.get("/{group_ref}/subclouds", response_model=None, responses=reads(views.SubcloudList, 400, 404))
async def peer_group_subclouds(group_ref: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return {"subclouds": [views.subcloud(view, with_endpoints=False)
                          for view in await peer_groups.group_subclouds(ctx, group_ref)]}


@router.get("/{group_ref}/status", response_model=None, responses=reads(PeerGroupStatus, 400, 404))
async def peer_group_status(group_ref: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return await peer_groups.group_status(ctx, group_ref)


@router.patch("/{group_ref}/migrate", response_model=None, responses=writes(MigratingPeerGroup, 404, 413, 422),
              openapi_extra=json_body(MIGRATE_SCHEMA))
async def migrate_peer_group(group_ref: str, request: Request,
                             ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    password = migrate_password(await read_body(request, allow_form=False))
    group, queued = await migration.migrate(ctx, group_ref, password)
    # The group, plus the reference's answer: the subclouds queued for rehoming, which the
    # dcmanager client's `subcloud-peer-group migrate` reads as "subclouds".
    return {**peer_group(group), "subclouds": [views.subcloud(view, with_endpoints=False) for view in queued]}


@router.patch("/{group_ref}/audit", response_model=None, responses=writes(PeerGroupCopy, 404, 413, 422))
async def audit_peer_group(group_ref: str, request: Request, ctx: SiteContext = Depends(site_context),
                           peer: bool = Depends(from_peer)) -> dict[str, Any]:
    """Called by a peer site with its copy of the group and its peer_uuid (reference §5)."""
    if not peer:
        raise operator_audit_refused()
    peer_uuid, remote = audit_copy(await read_body(request, allow_form=False))
    return await migration.audit_from_peer(ctx, group_ref, peer_uuid, remote)
