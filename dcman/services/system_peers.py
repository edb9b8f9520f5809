"""System peer use cases (geo-redundancy reference §1), one transaction each."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from dcman.db import associations as associations_db
from dcman.db import peers as peers_db
from dcman.db import site as site_db
from dcman.domain.alarms import AlarmId, peer_entity
from dcman.domain.commands import Column, NewSystemPeer, SystemPeerUpdate, given
from dcman.domain.errors import Conflict, InvalidInput, NotFound
from dcman.domain.peers import SystemPeer, check_not_this_site, check_peer_delete
from dcman.domain.states import AssociationSyncStatus, AssociationType, PeerAvailability
from dcman.services.context import SiteContext


async def _require(conn: AsyncConnection, ref: str | int) -> SystemPeer:
    peer = await peers_db.get_peer(conn, ref)
    if peer is None:
        raise NotFound(f"System peer {ref} not found.")
    return peer


def _changed(ctx: SiteContext) -> None:
    """Wake the peer monitor, when the site has one, so it sees the change at once."""
    notify = getattr(ctx, "peers_changed", None)
    if callable(notify):
        notify()


async def _check_unique(conn: AsyncConnection, values: dict[str, Column], except_id: int | None = None) -> None:
    if "peer_uuid" in values and await peers_db.peer_uuid_taken(conn, values["peer_uuid"], except_id):
        raise Conflict(f"A system peer with peer_uuid {values['peer_uuid']} already exists.")
    if "peer_name" in values and await peers_db.peer_name_taken(conn, values["peer_name"], except_id):
        raise Conflict(f"A system peer named {values['peer_name']} already exists.")


def _conflict(values: dict[str, Column]) -> Conflict:
    return Conflict(
        f"A system peer with peer_uuid {values.get('peer_uuid')} or name {values.get('peer_name')} already exists."
    )


async def list_peers(ctx: SiteContext) -> list[SystemPeer]:
    async with ctx.engine.connect() as conn:
        return await peers_db.list_peers(conn)


async def get_peer(ctx: SiteContext, ref: str) -> SystemPeer:
    async with ctx.engine.connect() as conn:
        return await _require(conn, ref)


async def create_peer(ctx: SiteContext, command: NewSystemPeer) -> SystemPeer:
    check_not_this_site(command.peer_uuid, ctx.site_uuid)
    values = {**given(command), "manager_password": ctx.secrets.encrypt(command.manager_password),
              "availability_state": PeerAvailability.CREATED.value, "heartbeat_failures": 0}
    try:
        async with ctx.engine.begin() as conn:
            await _check_unique(conn, values)
            peer_id = await peers_db.insert_peer(conn, values)
            peer = await _require(conn, peer_id)
    except IntegrityError:
        raise _conflict(values) from None
    _changed(ctx)
    return peer


async def update_peer(ctx: SiteContext, ref: str, update: SystemPeerUpdate) -> SystemPeer:
    if update.peer_uuid is not None:
        check_not_this_site(update.peer_uuid, ctx.site_uuid)
    changes = given(update)
    if update.manager_password is not None:
        changes["manager_password"] = ctx.secrets.encrypt(update.manager_password)
    try:
        async with ctx.engine.begin() as conn:
            peer = await _require(conn, ref)
            await _check_unique(conn, changes, except_id=peer.id)
            await peers_db.update_peer(conn, peer.id, changes)
            if changes.get("peer_controller_gateway_address", peer.peer_controller_gateway_address) != \
                    peer.peer_controller_gateway_address:  # every copy there carries that gateway
                await associations_db.mark_peer_associations(conn, peer.id, AssociationSyncStatus.OUT_OF_SYNC.value,
                                                 f"The peer controller gateway address of {peer.peer_name} changed.",
                                                 AssociationType.PRIMARY.value)
            peer = await _require(conn, peer.id)
    except IntegrityError:
        raise _conflict(changes) from None
    _changed(ctx)
    ctx.sync_wakeup.set()
    return peer


async def delete_peer(ctx: SiteContext, ref: str) -> None:
    try:
        async with ctx.engine.begin() as conn:
            peer = await _require(conn, ref)
            check_peer_delete(peer, await peers_db.count_peer_associations(conn, peer.id))
            await peers_db.delete_peer(conn, peer.id)
            # A peer that is gone cannot be unreachable: its heartbeat alarm goes with it.
            await associations_db.clear_alarm(conn, AlarmId.SYSTEM_PEER_HEARTBEAT_FAILED, peer_entity(peer.peer_uuid))
    except IntegrityError:  # an association was added meanwhile
        raise InvalidInput(f"System peer {ref} is associated with subcloud peer groups; "
                           "delete the associations first.") from None
    _changed(ctx)


async def peer_groups_of_peer(ctx: SiteContext, ref: str) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        peer = await _require(conn, ref)
        return await peers_db.peer_groups_of_peer(conn, peer.id)


async def site_identity(ctx: SiteContext) -> dict[str, str]:
    """What another site needs to register this one as a system peer."""
    async with ctx.engine.connect() as conn:
        site = await site_db.get_site(conn)
    assert site is not None
    return {"uuid": site["uuid"], "name": site["name"]}
