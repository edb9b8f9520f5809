"""What the dashboard and /metrics read: one page of subclouds, and the site at a glance
(subclouds by state, alarms by severity, peers, peer groups and their associations)."""

from __future__ import annotations

from dataclasses import dataclass

from dcman.db import associations as associations_db
from dcman.db import groups as groups_db
from dcman.db import overview as overview_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.db import subclouds as subclouds_db
from dcman.db.associations import Association
from dcman.domain.errors import NotFound
from dcman.domain.listing import NO_PEER_GROUP, SubcloudQuery
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.peers import SystemPeer
from dcman.services.context import SiteContext
from dcman.services.single_flight import SingleFlight
from dcman.services.subclouds import SubcloudView


@dataclass(frozen=True)
class SubcloudPage:
    subclouds: list[SubcloudView]
    total: int  # how many match the filters, over all pages


@dataclass(frozen=True)
class PeerGroupMembers:
    """(deploy_status, management_state, count) of one peer group's subclouds."""

    group: SubcloudPeerGroup
    rows: list[tuple[str, str, int]]


@dataclass(frozen=True)
class Overview:
    # (availability, management, deploy_status, count)
    subcloud_states: list[tuple[str, str, str, int]]
    alarms_by_severity: dict[str, int]
    peers: list[SystemPeer]
    peer_groups: list[PeerGroupMembers]
    associations: list[Association]


async def search_subclouds(ctx: SiteContext, query: SubcloudQuery) -> SubcloudPage:
    """One page of the subclouds that match every filter, in id order, and how many match."""
    async with ctx.engine.connect() as conn:
        group_id = peer_group_id = None
        if query.group is not None:
            group = await groups_db.get_group(conn, query.group)
            if group is None:
                raise NotFound(f"The group parameter names no subcloud group: {query.group}.")
            group_id = group.id
        if query.peer_group is not None and query.peer_group.lower() != NO_PEER_GROUP:
            peer_group = await peer_groups_db.get_peer_group(conn, query.peer_group)
            if peer_group is None:
                raise NotFound(f"The peer_group parameter names no subcloud peer group: {query.peer_group}.")
            peer_group_id = peer_group.id
        found = overview_db.SubcloudFilter(
            name=query.name, availability=query.availability, management=query.management,
            deploy_status=query.deploy_status, group_id=group_id, peer_group_id=peer_group_id,
            no_peer_group=query.peer_group is not None and query.peer_group.lower() == NO_PEER_GROUP)
        subclouds = await overview_db.subcloud_page(conn, found, query.limit, query.offset)
        total = await overview_db.count_subclouds(conn, found)
        statuses = await subclouds_db.endpoint_statuses(conn, [s.id for s in subclouds]) if subclouds else {}
    return SubcloudPage([SubcloudView(s, statuses.get(s.id, [])) for s in subclouds], total)


_shared: SingleFlight[Overview] = SingleFlight()


async def overview(ctx: SiteContext) -> Overview:
    """The site at a glance; every count is a GROUP BY, so it costs the same at 50,000 subclouds."""
    return await _shared.run(ctx.engine, lambda: _read_overview(ctx))


async def _read_overview(ctx: SiteContext) -> Overview:
    async with ctx.engine.connect() as conn:
        states = await overview_db.subcloud_state_counts(conn)
        alarms = await overview_db.alarm_severity_counts(conn)
        peers = await peers_db.list_peers(conn)
        groups = await peer_groups_db.list_peer_groups(conn)
        members = await overview_db.peer_group_member_counts(conn)
        associations = await associations_db.list_associations(conn)
    by_group: dict[int, list[tuple[str, str, int]]] = {}
    for group_id, deploy_status, management_state, count in members:
        by_group.setdefault(group_id, []).append((deploy_status, management_state, count))
    return Overview(states, alarms, peers, [PeerGroupMembers(g, by_group.get(g.id, [])) for g in groups],
                    associations)
