"""Peer group association use cases, and the sync that copies a peer group and its
subclouds to the peer site (geo-redundancy reference §3)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import yaml

from sqlalchemy.exc import IntegrityError

from dcman.db import associations as associations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.domain.associations import (
    SubcloudCopy,
    check_peer_copy,
    copy_changes,
    subcloud_copy,
    check_primary_group,
    validate_association_update,
    validate_new_association,
)
from dcman.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from dcman.domain.states import AssociationSyncStatus as Sync, AssociationType, DeployStatus, PeerAvailability
from dcman.domain.subcloud import Subcloud
from dcman.drivers.peer_client import PeerClient, PeerError, subcloud_path
from dcman.services.context import SiteContext

log = logging.getLogger("dcman.sync")
# Subcloud copies sent to the peer at once: its database writes one at a time, but each copy
# also waits on two HTTP round trips and the peer's checks, which overlap.
SYNC_COPIES_IN_FLIGHT = 8


async def _require(conn, association_id: str | int) -> associations_db.Association:  # type: ignore[no-untyped-def]
    ref = str(association_id)
    found = await associations_db.get_association(conn, int(ref)) if ref.isascii() and ref.isdigit() and len(ref) < 10 else None
    if found is None:
        raise NotFound(f"Peer group association {association_id} not found.")
    return found


async def list_associations(ctx: SiteContext) -> list[associations_db.Association]:
    async with ctx.engine.connect() as conn:
        return await associations_db.list_associations(conn)


async def get_association(ctx: SiteContext, ref: str) -> associations_db.Association:
    async with ctx.engine.connect() as conn:
        return await _require(conn, ref)


async def create_association(ctx: SiteContext, body: dict[str, Any], from_peer: bool) -> associations_db.Association:
    values = validate_new_association(body, from_peer)
    try:
        async with ctx.engine.begin() as conn:
            group = await peer_groups_db.get_peer_group(conn, values["peer_group_id"])
            if group is None:
                raise InvalidInput(f"Subcloud peer group {values['peer_group_id']} does not exist.")
            peer = await peers_db.get_peer(conn, values["system_peer_id"])
            if peer is None:
                raise InvalidInput(f"System peer {values['system_peer_id']} does not exist.")
            check_primary_group(group.peer_group_name, group.group_priority, values["association_type"])
            if await associations_db.find_association(conn, group.id, peer.id) is not None:
                raise Conflict(f"Peer group {group.peer_group_name} is already associated with {peer.peer_name}.")
            primary = values["association_type"] == AssociationType.PRIMARY
            association_id = await associations_db.insert_association(conn, {
                **values, "sync_status": (Sync.SYNCING if primary else Sync.UNKNOWN).value, "sync_message": None})
            created = await _require(conn, association_id)
    except IntegrityError:
        raise Conflict("That peer group is already associated with that system peer.") from None
    ctx.sync_wakeup.set()
    return created


async def update_association(ctx: SiteContext, ref: str, body: dict[str, Any], from_peer: bool) -> associations_db.Association:
    changes = validate_association_update(body, from_peer)
    async with ctx.engine.begin() as conn:
        association = await _require(conn, ref)
        if "peer_group_priority" in changes and association.association_type == AssociationType.PRIMARY:
            changes["sync_status"] = Sync.OUT_OF_SYNC.value  # the peer's copy must take the new priority
            changes["sync_message"] = "The peer group priority changed."
        await associations_db.update_association(conn, association.id, changes)
        updated = await _require(conn, association.id)
    ctx.sync_wakeup.set()
    return updated


async def request_sync(ctx: SiteContext, ref: str) -> associations_db.Association:
    async with ctx.engine.begin() as conn:
        association = await _require(conn, ref)
        if association.association_type != AssociationType.PRIMARY:
            raise InvalidInput("Only a primary association is synced from this site.")
        await associations_db.update_association(conn, association.id, {"sync_status": Sync.SYNCING.value, "sync_message": None})
        updated = await _require(conn, association.id)
    ctx.sync_wakeup.set()
    return updated


def _client(ctx: SiteContext, peer: Any) -> PeerClient:
    return PeerClient(peer.manager_endpoint, peer.manager_username, ctx.secrets.decrypt(peer.manager_password),
                      ca_file=ctx.settings.peer_ca_file)


async def delete_association(ctx: SiteContext, ref: str, from_peer: bool) -> None:
    """Delete; a primary association with an available peer first removes the peer's copies
    (its secondary subclouds of the group, the group, the non-primary association)."""
    async with ctx.engine.connect() as conn:
        association = await _require(conn, ref)
        group = await peer_groups_db.get_peer_group(conn, association.peer_group_id)
        peer = await peers_db.get_peer(conn, association.system_peer_id)
    if (association.association_type == AssociationType.PRIMARY and peer is not None and group is not None
            and peer.availability_state == PeerAvailability.AVAILABLE and not from_peer):
        client = _client(ctx, peer)
        try:
            await _remove_from_peer(client, group.peer_group_name)
        except PeerError as exc:
            raise InvalidInput(f"Cannot clean up the peer site: {exc}") from None
        finally:
            await client.close()
    async with ctx.engine.begin() as conn:
        await associations_db.delete_association(conn, association.id)


async def _remote_group(client: PeerClient, name: str) -> dict | None:
    try:
        return await client.call("GET", f"/subcloud-peer-groups/{name}")
    except PeerError as exc:
        if exc.status == 404:
            return None
        raise


async def _remove_from_peer(client: PeerClient, group_name: str) -> None:
    remote = await _remote_group(client, group_name)
    if remote is None:
        return
    for subcloud in (await client.call("GET", f"/subcloud-peer-groups/{remote['id']}/subclouds"))["subclouds"]:
        if subcloud["deploy-status"] == DeployStatus.SECONDARY:
            await client.call("PATCH", subcloud_path(subcloud['region-name']), json={"peer_group": "none"})
            await client.call("DELETE", subcloud_path(subcloud['region-name']))
    for association in (await client.call("GET", "/peer-group-associations"))["peer_group_associations"]:
        if association["peer-group-id"] == remote["id"]:
            await client.call("DELETE", f"/peer-group-associations/{association['id']}")
    await client.call("DELETE", f"/subcloud-peer-groups/{remote['id']}")


# --- the sync -------------------------------------------------------------------------------


async def sync_association(ctx: SiteContext, association_id: int) -> None:
    """Bring the peer site's copy of the group in line; the outcome lands in sync_status."""
    async with ctx.engine.connect() as conn:
        association = await associations_db.get_association(conn, association_id)
        if association is None:
            return
        group = await peer_groups_db.get_peer_group(conn, association.peer_group_id)
        peer = await peers_db.get_peer(conn, association.system_peer_id)
        members = await peer_groups_db.subclouds_of_group(conn, association.peer_group_id) if group else []
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
        current = await associations_db.get_association(conn, association_id)
        # A change made while the sync ran leaves the association out of sync for the next round.
        if current is not None and current.updated_at == association.updated_at:
            await associations_db.update_association(conn, association_id, {"sync_status": status, "sync_message": message})
    log.info("association %s with %s: %s %s", association_id, peer.peer_name, status, message or "")


async def _push(ctx: SiteContext, client: PeerClient, association: associations_db.Association, group: Any, peer: Any,
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
