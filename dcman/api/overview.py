"""GET /v1.0/dashboard (dcman's addition): the site at a glance in one call, for the web
dashboard and for scripts. Every figure is counted by the database."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from typing_extensions import TypedDict

from dcman.api.responses import reads
from dcman.api.state import site_context
from dcman.domain.alarms import Severity
from dcman.domain.peer_groups import status_counts
from dcman.domain.states import AvailabilityStatus, ManagementState
from dcman.services import overview
from dcman.services.context import SiteContext

router = APIRouter(tags=["dashboard"])

SubcloudCounts = TypedDict("SubcloudCounts", {"total": int, "availability-status": dict[str, int],
                                              "management-state": dict[str, int], "deploy-status": dict[str, int]})


class AlarmCounts(TypedDict):
    critical: int
    major: int
    minor: int
    warning: int
    total: int


DashboardPeer = TypedDict("DashboardPeer", {
    "id": int, "peer-uuid": str, "peer-name": str, "administrative-state": str, "availability-state": str,
    "heartbeat-interval": int, "heartbeat-failures": int, "last-heartbeat": str | None,
    "last-heartbeat-answered": bool | None, "last-answered-heartbeat": str | None})
DashboardAssociation = TypedDict("DashboardAssociation", {
    "id": int, "system-peer-id": int, "peer-name": str | None, "peer-group-priority": int | None,
    "association-type": str, "sync-status": str, "sync-message": str | None})
DashboardPeerGroup = TypedDict("DashboardPeerGroup", {
    "id": int, "peer_group_name": str, "group_priority": int, "group_state": str, "system_leader_id": str,
    "system_leader_name": str, "migration_status": str | None, "migration_message": str | None,
    "leader-is-this-site": bool,
    "subclouds": dict[str, int], "associations": list[DashboardAssociation]})


class Dashboard(TypedDict):
    subclouds: SubcloudCounts
    alarms: AlarmCounts
    system_peers: list[DashboardPeer]
    subcloud_peer_groups: list[DashboardPeerGroup]



def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else None


def subcloud_counts(states: list[tuple[str, str, str, int]]) -> dict[str, Any]:
    availability: Counter[str] = Counter({s.value: 0 for s in AvailabilityStatus})
    management: Counter[str] = Counter({s.value: 0 for s in ManagementState})
    deploy: Counter[str] = Counter()
    for a, m, d, n in states:
        availability[a] += n
        management[m] += n
        deploy[d] += n
    return {"total": sum(n for *_, n in states), "availability-status": dict(availability),
            "management-state": dict(management), "deploy-status": dict(sorted(deploy.items()))}


@router.get("/dashboard", response_model=None, responses=reads(Dashboard))
async def dashboard(ctx: Annotated[SiteContext, Depends(site_context)]) -> dict[str, Any]:
    """Subclouds by state, alarms by severity, system peers with their last heartbeat, and
    peer groups with their leader, members and association sync status."""
    seen = await overview.overview(ctx)
    peer_names = {p.id: p.peer_name for p in seen.peers}
    alarms = {s.value: seen.alarms_by_severity.get(s.value, 0) for s in Severity}
    peers = []
    for p in seen.peers:
        peers.append({
            "id": p.id, "peer-uuid": p.peer_uuid, "peer-name": p.peer_name,
            "administrative-state": p.administrative_state, "availability-state": p.availability_state,
            "heartbeat-interval": p.heartbeat_interval, "heartbeat-failures": p.heartbeat_failures,
            "last-heartbeat": _when(p.last_heartbeat_at),
            "last-heartbeat-answered": (p.last_heartbeat_at == p.last_answered_at) if p.last_heartbeat_at else None,
            "last-answered-heartbeat": _when(p.last_answered_at),
        })
    groups = []
    for members in seen.peer_groups:
        g = members.group
        counts = status_counts(g, members.rows)
        groups.append({
            "id": g.id, "peer_group_name": g.peer_group_name, "group_priority": g.group_priority,
            "group_state": g.group_state, "system_leader_id": g.system_leader_id,
            "system_leader_name": g.system_leader_name, "migration_status": g.migration_status,
            "migration_message": g.migration_message,
            "leader-is-this-site": g.system_leader_id == ctx.site_uuid,
            "subclouds": {k: v for k, v in counts.items()
                          if k not in ("peer_group_id", "peer_group_name", "migration_message")},
            "associations": [
                {"id": a.id, "system-peer-id": a.system_peer_id, "peer-name": peer_names.get(a.system_peer_id),
                 "peer-group-priority": a.peer_group_priority, "association-type": a.association_type,
                 "sync-status": a.sync_status, "sync-message": a.sync_message}
                for a in seen.associations if a.peer_group_id == g.id
            ],
        })
    return {"subclouds": subcloud_counts(seen.subcloud_states),
            "alarms": {**alarms, "total": sum(seen.alarms_by_severity.values())},
            "system_peers": peers, "subcloud_peer_groups": groups}
