"""The association sync: every primary association that is not in sync, and whose peer is
available, is synced to the peer site (geo-redundancy reference §3): the peer's copy of the
group, of its association back to this site and of every member subcloud, addressed by
region name; the outcome lands in the association's sync status."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from dcman.db import associations as associations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.domain.associations import SubcloudCopy, check_peer_copy, copy_changes, protection, subcloud_copy
from dcman.domain.errors import DomainError
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.peers import SystemPeer
from dcman.domain.states import AssociationSyncStatus as Sync, AssociationType, MigrationStatus
from dcman.domain.subcloud import Subcloud
from dcman.drivers.peer_site import PeerError, PeerSite, RemoteSubcloud
from dcman.loops import runner
from dcman.loops.runner import Timing
from dcman.services.context import SiteContext

log = logging.getLogger("dcman.sync")
RETRY_S = 5.0
# Subcloud copies sent to the peer at once: its database writes one at a time, but each copy
# also waits on two HTTP round trips and the peer's checks, which overlap.
SYNC_COPIES_IN_FLIGHT = 8


async def sync_pending(ctx: SiteContext) -> None:
    """One round: sync every association that needs it, one after the other."""
    async with ctx.engine.connect() as conn:
        pending = await associations_db.associations_to_sync(conn)
    for association_id in pending:
        await sync_association(ctx, association_id)


async def run(ctx: SiteContext) -> None:
    await runner.run("association sync", partial(sync_pending, ctx), Timing(RETRY_S), ctx.sync_wakeup)


async def sync_association(ctx: SiteContext, association_id: int) -> None:
    """Bring the peer site's copy of the group in line; the outcome lands in sync_status."""
    async with ctx.engine.connect() as conn:
        association = await associations_db.get_association(conn, association_id)
        if association is None:
            return
        group = await peer_groups_db.get_peer_group(conn, association.peer_group_id)
        peer = await peers_db.get_peer(conn, association.system_peer_id)
        members = await peer_groups_db.subclouds_of_group(conn, association.peer_group_id) if group else []
        protecting = []
        for sibling in await associations_db.list_associations(conn, association.peer_group_id):
            other = await peers_db.get_peer(conn, sibling.system_peer_id)
            if other is not None and sibling.association_type == AssociationType.PRIMARY:
                protecting.append((other.peer_uuid, sibling.peer_group_priority))
    if group is None or peer is None:
        return
    sites = protection(ctx.site_uuid, group.group_priority, protecting)
    status, message = Sync.IN_SYNC.value, None
    site = ctx.peer_site(peer)
    try:
        problems = await _push(ctx, site, association, group, peer, members, sites)
        if problems:
            status, message = Sync.FAILED.value, "; ".join(problems)[:2000]
    except PeerError as exc:
        status, message = Sync.FAILED.value, str(exc)
    except DomainError as exc:  # a rule refuses the peer's copy as it is
        status, message = Sync.FAILED.value, exc.message
    finally:
        await site.close()
    async with ctx.engine.begin() as conn:
        current = await associations_db.get_association(conn, association_id)
        # A change made while the sync ran leaves the association out of sync for the next round.
        if current is not None and current.updated_at == association.updated_at:
            await associations_db.update_association(conn, association_id, {"sync_status": status, "sync_message": message})
    log.info("association %s with %s: %s %s", association_id, peer.peer_name, status, message or "")


async def _push(ctx: SiteContext, site: PeerSite, association: associations_db.Association, group: SubcloudPeerGroup,
                peer: SystemPeer, members: list[Subcloud], sites: list[dict[str, object]]) -> list[str]:
    identity = await site.system()
    if identity.get("uuid") != peer.peer_uuid:
        raise PeerError(f"The peer site's UUID {identity.get('uuid')} does not match system peer {peer.peer_uuid} "
                        "(target does not match).")
    back = await site.system_peer_id(ctx.site_uuid)
    if back is None:
        raise PeerError(f"System Peer {ctx.site_uuid} does not exist on peer site.")
    priority = association.peer_group_priority
    remote = await site.peer_group(group.peer_group_name)
    if remote is None:
        remote = await site.create_peer_group(group, priority, sites)
    elif remote.migration_status == MigrationStatus.COMPLETE:
        # The peer took the group over while this site was away: its audit of this site
        # (geo-redundancy §5) comes first, then the sync carries the new leader.
        raise PeerError(f"Peer group {group.peer_group_name} was migrated to the peer site; waiting for the "
                        "peer-group audit.")
    else:
        check_peer_copy(group.peer_group_name, remote.priority)
        remote = await site.update_peer_group(remote.id, group, priority, sites)
    remote_association = None
    for candidate in await site.associations():
        if candidate.peer_group_id == remote.id and candidate.system_peer_id == back:
            remote_association = candidate
    if remote_association is None:
        remote_association = await site.add_non_primary_association(remote.id, back, priority)
    # The priority follows a change on this site (the group's copy took it with its priority).
    await site.start_sync(remote_association.id, priority)
    problems = await _push_subclouds(site, remote.id, members, peer.peer_controller_gateway_address)
    await site.end_sync(remote_association.id, "; ".join(problems)[:2000] if problems else None)
    return problems


async def _add_copy(site: PeerSite, copy: SubcloudCopy) -> RemoteSubcloud:
    """Add the secondary copy on the peer, or find the one an interrupted sync added but did
    not get to put in the group (it is the same subcloud when its region name matches)."""
    try:
        return await site.add_secondary(copy)
    except PeerError as refused:
        if refused.status not in (400, 409):  # the left-over copy trips the name or the range check
            raise
        try:
            there = await site.subcloud(copy.region_name)
        except PeerError:
            raise refused from None
        if there.region_name != copy.region_name or not there.secondary:
            raise
        changes = copy_changes(copy, there.fields)
        if changes:  # left over from an older sync: bring it up to date too
            there = await site.update_copy(copy.region_name, changes)
        return there


async def _push_subclouds(site: PeerSite, remote_group_id: int, members: list[Subcloud], gateway: str) -> list[str]:
    """Add or update the peer's copy of every member, addressed by region name as the
    reference's peers do (a rename on either site cannot orphan it); delete stale copies."""
    remote = {s.region_name: s for s in await site.peer_group_subclouds(remote_group_id)}

    async def push(subcloud: Subcloud) -> str | None:
        """Add or update the peer's copy of one subcloud; the problem, if any."""
        copy = subcloud_copy(subcloud, gateway)
        if isinstance(copy, str):
            return copy
        try:
            if subcloud.region_name in remote:
                # A resync follows any change in the group: only the copies that differ are sent.
                changes = copy_changes(copy, remote[subcloud.region_name].fields)
                if changes:
                    await site.update_copy(copy.region_name, changes)
            else:
                await _add_copy(site, copy)
                await site.put_in_group(copy.region_name, remote_group_id)
        except PeerError as exc:
            return f"subcloud {subcloud.name}: {exc}"
        return None

    problems: list[str] = []
    queue = iter(members)

    async def worker() -> None:
        for subcloud in queue:  # one shared iterator: each subcloud is taken by one worker
            problem = await push(subcloud)
            if problem:
                problems.append(problem)

    await asyncio.gather(*(worker() for _ in range(SYNC_COPIES_IN_FLIGHT)))
    local_regions = {s.region_name for s in members}
    for region, stale in remote.items():
        if region not in local_regions and stale.secondary:
            try:
                await site.delete_secondary(region)
            except PeerError as exc:
                problems.append(f"stale subcloud {stale.name}: {exc}")
    return problems
