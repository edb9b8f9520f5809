"""/v1.0/system-peers (geo-redundancy reference §1; API reference "System peers")."""

from __future__ import annotations

from typing import Any, Mapping

from fastapi import APIRouter, Depends, Request, Response

from typing_extensions import TypedDict

from dcman.api.bodies import read_body
from dcman.api.commands.system_peers import NEW_PEER_SCHEMA, PEER_UPDATE_SCHEMA, new_system_peer, system_peer_update
from dcman.api.commands.wire import json_body
from dcman.api.responses import reads, writes
from dcman.api.state import site_context
from dcman.api.views import timestamp
from dcman.domain.peers import SystemPeer
from dcman.services import system_peers
from dcman.services.context import SiteContext

router = APIRouter(prefix="/system-peers", tags=["system-peers"])


Peer = TypedDict("Peer", {
    "id": int, "peer-uuid": str, "peer-name": str, "manager-endpoint": str, "manager-username": str,
    "peer-controller-gateway-address": str, "administrative-state": str, "heartbeat-interval": int,
    "heartbeat-failure-threshold": int, "heartbeat-failure-policy": str, "heartbeat-maintenance-timeout": int,
    "availability-state": str, "created-at": str, "updated-at": str | None})
PeerGroupOfPeer = TypedDict("PeerGroupOfPeer", {
    "id": int, "peer_group_name": str, "group_priority": int, "group_state": str, "max_subcloud_rehoming": int,
    "system_leader_id": str, "system_leader_name": str, "migration_status": str | None, "created-at": str,
    "updated-at": str | None})


class PeerList(TypedDict):
    system_peers: list[Peer]


class PeerGroupsOfPeer(TypedDict):
    subcloud_peer_groups: list[PeerGroupOfPeer]


def peer_view(p: SystemPeer) -> dict[str, Any]:
    """A system peer as the reference shows it; the password never leaves the site."""
    return {
        "id": p.id,
        "peer-uuid": p.peer_uuid,
        "peer-name": p.peer_name,
        "manager-endpoint": p.manager_endpoint,
        "manager-username": p.manager_username,
        "peer-controller-gateway-address": p.peer_controller_gateway_address,
        "administrative-state": p.administrative_state,
        "heartbeat-interval": p.heartbeat_interval,
        "heartbeat-failure-threshold": p.heartbeat_failure_threshold,
        "heartbeat-failure-policy": p.heartbeat_failure_policy,
        "heartbeat-maintenance-timeout": p.heartbeat_maintenance_timeout,
        "availability-state": p.availability_state,
        "created-at": timestamp(p.created_at),
        "updated-at": timestamp(p.updated_at),
    }


def peer_group_view(g: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": g["id"],
        "peer_group_name": g["peer_group_name"],
        "group_priority": g["group_priority"],
        "group_state": g["group_state"],
        "max_subcloud_rehoming": g["max_subcloud_rehoming"],
        "system_leader_id": g["system_leader_id"],
        "system_leader_name": g["system_leader_name"],
        "migration_status": g["migration_status"],
        "created-at": timestamp(g["created_at"]),
        "updated-at": timestamp(g["updated_at"]),
    }


@router.get("", response_model=None, responses=reads(PeerList))
async def list_peers(ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return {"system_peers": [peer_view(p) for p in await system_peers.list_peers(ctx)]}


@router.post("", response_model=None, responses=writes(Peer, 409, 413), openapi_extra=json_body(NEW_PEER_SCHEMA))
async def create_peer(request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    command = new_system_peer(await read_body(request, allow_form=False))
    return peer_view(await system_peers.create_peer(ctx, command))


@router.get("/{peer_ref}", response_model=None, responses=reads(Peer, 400, 404))
async def show_peer(peer_ref: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return peer_view(await system_peers.get_peer(ctx, peer_ref))


@router.patch("/{peer_ref}", response_model=None, responses=writes(Peer, 404, 409, 413),
              openapi_extra=json_body(PEER_UPDATE_SCHEMA))
async def update_peer(peer_ref: str, request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    update = system_peer_update(await read_body(request, allow_form=False))
    return peer_view(await system_peers.update_peer(ctx, peer_ref, update))


@router.delete("/{peer_ref}", response_class=Response, responses=writes(None, 404, 409))
async def delete_peer(peer_ref: str, ctx: SiteContext = Depends(site_context)) -> Response:
    await system_peers.delete_peer(ctx, peer_ref)
    return Response(status_code=200)


@router.get("/{peer_ref}/subcloud-peer-groups", response_model=None, responses=reads(PeerGroupsOfPeer, 400, 404))
async def peer_groups(peer_ref: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return {"subcloud_peer_groups": [peer_group_view(g) for g in await system_peers.peer_groups_of_peer(ctx, peer_ref)]}
