"""The association sync: every primary association that is not in sync, and whose peer is
available, is synced to the peer site (geo-redundancy reference §3): the peer's copy of the
group, of its association back to this site and of every member subcloud, addressed by
region name; the outcome lands in the association's sync status."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import yaml

from dcman.db import geo_repository as geo
from dcman.db import peer_group_repository as groups_db
from dcman.db import peer_repository as peers_db
from dcman.domain.associations import SubcloudCopy, check_peer_copy, copy_changes, subcloud_copy
from dcman.domain.errors import DomainError
from dcman.domain.states import AssociationSyncStatus as Sync, DeployStatus
from dcman.domain.subcloud import Subcloud
from dcman.drivers.peer_client import PeerClient, PeerError, subcloud_path
from dcman.loops import runner
from dcman.loops.runner import Timing
from dcman.services.associations import _client, _remote_group
from dcman.services.context import SiteContext

log = logging.getLogger("dcman.sync")
RETRY_S = 5.0
# Subcloud copies sent to the peer at once: its database writes one at a time, but each copy
# also waits on two HTTP round trips and the peer's checks, which overlap.
SYNC_COPIES_IN_FLIGHT = 8


async def sync_pending(ctx: SiteContext) -> None:
    """One round: sync every association that needs it, one after the other."""
    async with ctx.engine.connect() as conn:
        pending = await geo.associations_to_sync(conn)
    for association_id in pending:
        await sync_association(ctx, association_id)


async def run(ctx: SiteContext) -> None:
    await runner.run("association sync", partial(sync_pending, ctx), Timing(RETRY_S), ctx.sync_wakeup)


async def sync_association(ctx: SiteContext, association_id: int) -> None:
    """Bring the peer site's copy of the group in line; the outcome lands in sync_status."""
    async with ctx.engine.connect() as conn:
        association = await geo.get_association(conn, association_id)
        if association is None:
            return
        group = await groups_db.get_peer_group(conn, association.peer_group_id)
        peer = await peers_db.get_peer(conn, association.system_peer_id)
        members = await groups_db.subclouds_of_group(conn, association.peer_group_id) if group else []
    if group is None or peer is None:
        return
    status, message = Sync.IN_SYNC.value, None
    client = _client(ctx, peer)
    try:
        problems = await _push(ctx, client, association, group, peer, members)
        if problems:
            status, message = Sync.FAILED.value, "; ".join(problems)[:2000]
    except PeerError as exc:
        status, message = Sync.FAILED.value, str(exc)
    except DomainError as exc:  # a rule refuses the peer's copy as it is
        status, message = Sync.FAILED.value, exc.message
    finally:
        await client.close()
    async with ctx.engine.begin() as conn:
        current = await geo.get_association(conn, association_id)
        # A change made while the sync ran leaves the association out of sync for the next round.
        if current is not None and current.updated_at == association.updated_at:
            await geo.update_association(conn, association_id, {"sync_status": status, "sync_message": message})
    log.info("association %s with %s: %s %s", association_id, peer.peer_name, status, message or "")


async def _push(ctx: SiteContext, client: PeerClient, association: geo.Association, group: Any, peer: Any,
                members: list) -> list[str]:
    site = await client.call("GET", "/system")
    if site.get("uuid") != peer.peer_uuid:
        raise PeerError(f"The peer site's UUID {site.get('uuid')} does not match system peer {peer.peer_uuid} "
                        "(target does not match).")
    try:
        back = await client.call("GET", f"/system-peers/{ctx.site_uuid}")
    except PeerError as exc:
        if exc.status == 404:
            raise PeerError(f"System Peer {ctx.site_uuid} does not exist on peer site.") from None
        raise
    fields = {"peer-group-name": group.peer_group_name, "group-priority": association.peer_group_priority,
              "group-state": group.group_state, "max-subcloud-rehoming": group.max_subcloud_rehoming,
              "system-leader-id": group.system_leader_id, "system-leader-name": group.system_leader_name}
    remote = await _remote_group(client, group.peer_group_name)
    if remote is None:
        remote = await client.call("POST", "/subcloud-peer-groups", json=fields)
    elif remote.get("migration_status") == "complete":
        # The peer took the group over while this site was away: its audit of this site
        # (geo-redundancy §5) comes first, then the sync carries the new leader.
        raise PeerError(f"Peer group {group.peer_group_name} was migrated to the peer site; waiting for the "
                        "peer-group audit.")
    else:
        check_peer_copy(group.peer_group_name, remote["group_priority"])
        fields.pop("peer-group-name")
        remote = await client.call("PATCH", f"/subcloud-peer-groups/{remote['id']}", json=fields)
    remote_association = None
    for candidate in (await client.call("GET", "/peer-group-associations"))["peer_group_associations"]:
        if candidate["peer-group-id"] == remote["id"] and candidate["system-peer-id"] == back["id"]:
            remote_association = candidate
    if remote_association is None:
        remote_association = await client.call("POST", "/peer-group-associations", json={
            "peer_group_id": remote["id"], "system_peer_id": back["id"],
            "peer_group_priority": association.peer_group_priority, "association_type": "non-primary"})
    # The priority follows a change on this site (the group's copy took it with group-priority).
    await client.call("PATCH", f"/peer-group-associations/{remote_association['id']}",
                      json={"sync_status": Sync.SYNCING.value, "peer_group_priority": association.peer_group_priority})
    problems = await _push_subclouds(client, remote["id"], members, peer.peer_controller_gateway_address)
    await client.call("PATCH", f"/peer-group-associations/{remote_association['id']}", json={
        "sync_status": Sync.FAILED.value if problems else Sync.IN_SYNC.value,
        "sync_message": "; ".join(problems)[:2000] if problems else None})
    return problems


def _copy_form(copy: SubcloudCopy) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """The secondary add of a copy, as the reference's sync sends it (multipart)."""
    data = {"secondary": "true", "region_name": copy.region_name, "bootstrap-address": copy.bootstrap_address,
            "release": copy.release}
    data.update({k: v for k, v in (("description", copy.description), ("location", copy.location))
                 if v is not None})  # a null stays null
    files = {"bootstrap_values": ("bootstrap.yaml", yaml.safe_dump(copy.bootstrap_values).encode())}
    if copy.install_values is not None:
        files["install_values"] = ("install.yaml", yaml.safe_dump(copy.install_values).encode())
    return data, files


async def _add_copy(client: PeerClient, copy: SubcloudCopy) -> dict:
    """Add the secondary copy on the peer, or find the one an interrupted sync added but did
    not get to put in the group (it is the same subcloud when its region name matches)."""
    data, files = _copy_form(copy)
    try:
        return await client.call("POST", "/subclouds", data=data, files=files)
    except PeerError as refused:
        if refused.status not in (400, 409):  # the left-over copy trips the name or the range check
            raise
        try:
            there = await client.call("GET", subcloud_path(copy.region_name))
        except PeerError:
            raise refused from None
        if there.get("region-name") != copy.region_name or there.get("deploy-status") != DeployStatus.SECONDARY:
            raise
        changes = copy_changes(copy, there)
        if changes:  # left over from an older sync: bring it up to date too
            there = await client.call("PATCH", subcloud_path(copy.region_name), json=changes)
        return there


async def _push_subclouds(client: PeerClient, remote_group_id: int, members: list, gateway: str) -> list[str]:
    """Add or update the peer's copy of every member, addressed by region name as the
    reference's peers do (a rename on either site cannot orphan it); delete stale copies."""
    remote = {s["region-name"]: s for s in
              (await client.call("GET", f"/subcloud-peer-groups/{remote_group_id}/subclouds"))["subclouds"]}

    async def push(subcloud: Subcloud) -> str | None:
        """Add or update the peer's copy of one subcloud; the problem, if any."""
        copy = subcloud_copy(subcloud, gateway)
        if isinstance(copy, str):
            return copy
        try:
            if subcloud.region_name in remote:
                # A resync follows any change in the group: only the copies that differ are sent.
                changes = copy_changes(copy, remote[subcloud.region_name])
                if changes:
                    await client.call("PATCH", subcloud_path(copy.region_name), json=changes)
            else:
                await _add_copy(client, copy)
                await client.call("PATCH", subcloud_path(copy.region_name), json={"peer_group": str(remote_group_id)})
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
        if region not in local_regions and stale["deploy-status"] == DeployStatus.SECONDARY:
            try:
                await client.call("PATCH", subcloud_path(region), json={"peer_group": "none"})
                await client.call("DELETE", subcloud_path(region))
            except PeerError as exc:
                problems.append(f"stale subcloud {stale['name']}: {exc}")
    return problems
