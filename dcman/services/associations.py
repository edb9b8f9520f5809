"""Peer group association use cases (geo-redundancy reference §3); the sync that copies a
peer group and its subclouds to the peer site is dcman.loops.association_sync."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from dcman.db import associations as associations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import peers as peers_db
from dcman.domain.associations import (
    check_operator_association,
    check_operator_association_update,
    check_primary_group,
)
from dcman.domain.commands import AssociationUpdate, NewAssociation, given
from dcman.domain.errors import Conflict, InvalidInput, NotFound
from dcman.domain.states import AssociationSyncStatus as Sync, AssociationType, PeerAvailability
from dcman.drivers.peer_site import PeerError, PeerSite
from dcman.services.context import SiteContext



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


async def create_association(ctx: SiteContext, command: NewAssociation) -> associations_db.Association:
    """POST by an operator: a primary association of a group this site owns."""
    check_operator_association(command)
    return await store_association(ctx, command)


async def store_association(ctx: SiteContext, command: NewAssociation) -> associations_db.Association:
    """Store a new association, primary (the operator's) or non-primary (a peer site's copy)."""
    try:
        async with ctx.engine.begin() as conn:
            group = await peer_groups_db.get_peer_group(conn, command.peer_group_id)
            if group is None:
                raise InvalidInput(f"Subcloud peer group {command.peer_group_id} does not exist.")
            peer = await peers_db.get_peer(conn, command.system_peer_id)
            if peer is None:
                raise InvalidInput(f"System peer {command.system_peer_id} does not exist.")
            check_primary_group(group.peer_group_name, group.group_priority, command.association_type)
            if await associations_db.find_association(conn, group.id, peer.id) is not None:
                raise Conflict(f"Peer group {group.peer_group_name} is already associated with {peer.peer_name}.")
            primary = command.association_type is AssociationType.PRIMARY
            association_id = await associations_db.insert_association(conn, {
                **given(command), "sync_status": (Sync.SYNCING if primary else Sync.UNKNOWN).value,
                "sync_message": None})
            if primary:  # every copy learns the new member of the group's protection
                await associations_db.mark_group_out_of_sync(
                    conn, group.id, f"Peer group {group.peer_group_name} is now also protected by {peer.peer_name}.",
                    except_id=association_id)
            created = await _require(conn, association_id)
    except IntegrityError:
        raise Conflict("That peer group is already associated with that system peer.") from None
    ctx.sync_wakeup.set()
    return created


async def update_association(ctx: SiteContext, ref: str, update: AssociationUpdate) -> associations_db.Association:
    """PATCH by an operator: the priority only."""
    check_operator_association_update(update)
    return await change_association(ctx, ref, update)


async def change_association(ctx: SiteContext, ref: str, update: AssociationUpdate) -> associations_db.Association:
    """Apply an update: a new priority (the peer's copy must follow), or the sync status a peer reports."""
    changes = given(update)
    if update.sync_status is not None:
        changes["sync_message"] = update.sync_message
    async with ctx.engine.begin() as conn:
        association = await _require(conn, ref)
        await associations_db.update_association(conn, association.id, changes)
        if "peer_group_priority" in changes and association.association_type == AssociationType.PRIMARY:
            # Every copy takes the new priority into the group's protection.
            await associations_db.mark_group_out_of_sync(conn, association.peer_group_id,
                                                         "The peer group priority changed.")
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


async def delete_association(ctx: SiteContext, ref: str) -> None:
    """DELETE by an operator; a primary association with an available peer first removes the
    peer's copies (its secondary subclouds of the group, the group, the non-primary association)."""
    async with ctx.engine.connect() as conn:
        association = await _require(conn, ref)
        group = await peer_groups_db.get_peer_group(conn, association.peer_group_id)
        peer = await peers_db.get_peer(conn, association.system_peer_id)
    if (association.association_type == AssociationType.PRIMARY and peer is not None and group is not None
            and peer.availability_state == PeerAvailability.AVAILABLE):
        site = ctx.peer_site(peer)
        try:
            await _remove_from_peer(site, group.peer_group_name)
        except PeerError as exc:
            raise InvalidInput(f"Cannot clean up the peer site: {exc}") from None
        finally:
            await site.close()
    await remove_association(ctx, str(association.id))


async def remove_association(ctx: SiteContext, ref: str) -> None:
    """Delete the association alone (a peer site removing its copy here cleans up itself)."""
    async with ctx.engine.begin() as conn:
        association = await _require(conn, ref)
        await associations_db.delete_association(conn, association.id)
        if association.association_type == AssociationType.PRIMARY:
            await associations_db.mark_group_out_of_sync(conn, association.peer_group_id,
                                                         "A site no longer protects the peer group.")
    ctx.sync_wakeup.set()


async def _remove_from_peer(site: PeerSite, group_name: str) -> None:
    """Delete the peer's copies: its secondary subclouds of the group, its association of the
    group, then the group."""
    remote = await site.peer_group(group_name)
    if remote is None:
        return
    for subcloud in await site.peer_group_subclouds(remote.id):
        if subcloud.secondary:
            await site.delete_secondary(subcloud.region_name)
    for association in await site.associations():
        if association.peer_group_id == remote.id:
            await site.delete_association(association.id)
    await site.delete_peer_group(remote.id)
