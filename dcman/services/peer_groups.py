"""Subcloud peer group use cases (geo-redundancy reference §1): create, show, list, update,
delete, the group's subclouds and their status counts."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import associations as associations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import subclouds as subclouds_db
from dcman.domain.commands import NewPeerGroup, PeerGroupUpdate, given
from dcman.domain.errors import Conflict, NotFound
from dcman.domain.peer_groups import (
    SubcloudPeerGroup,
    check_peer_group_delete,
    check_peer_group_update,
    new_peer_group_columns,
    status_counts,
)
from dcman.services.context import SiteContext
from dcman.services.subclouds import SubcloudView


async def _require(conn: AsyncConnection, ref: str, for_update: bool = False) -> SubcloudPeerGroup:
    group = await peer_groups_db.get_peer_group(conn, ref, for_update=for_update)
    if group is None:
        raise NotFound(f"Subcloud peer group {ref} not found.")
    return group


def _taken(name: str | None) -> Conflict:
    return Conflict(f"A subcloud peer group named {name} already exists.")


async def list_peer_groups(ctx: SiteContext) -> list[SubcloudPeerGroup]:
    async with ctx.engine.connect() as conn:
        return await peer_groups_db.list_peer_groups(conn)


async def get_peer_group(ctx: SiteContext, ref: str) -> SubcloudPeerGroup:
    async with ctx.engine.connect() as conn:
        return await _require(conn, ref)


async def create_peer_group(ctx: SiteContext, command: NewPeerGroup) -> SubcloudPeerGroup:
    values = new_peer_group_columns(command, ctx.site_uuid, ctx.settings.site_name)
    try:
        async with ctx.engine.begin() as conn:
            if await peer_groups_db.peer_group_name_taken(conn, command.peer_group_name):
                raise _taken(command.peer_group_name)
            group_id = await peer_groups_db.insert_peer_group(conn, values)
            return await _require(conn, str(group_id))
    except IntegrityError:
        raise _taken(command.peer_group_name) from None


async def update_peer_group(ctx: SiteContext, ref: str, update: PeerGroupUpdate) -> SubcloudPeerGroup:
    try:
        async with ctx.engine.begin() as conn:
            group = await _require(conn, ref, for_update=True)
            check_peer_group_update(group, update)
            changes = given(update)
            if update.failover_password is not None:  # sealed; only the automatic failover reads it
                changes["failover_password"] = ctx.secrets.encrypt(update.failover_password)
            name = update.peer_group_name
            if name is not None and await peer_groups_db.peer_group_name_taken(conn, name, except_id=group.id):
                raise _taken(name)
            await peer_groups_db.update_peer_group(conn, group.id, changes)
            if changes.keys() - {"failover_password", "protection"}:  # what the peers' copies hold changed
                await associations_db.mark_group_out_of_sync(conn, group.id,
                                                             f"Subcloud peer group {group.peer_group_name} changed.")
            updated = await _require(conn, str(group.id))
        ctx.sync_wakeup.set()
        return updated
    except IntegrityError:
        raise _taken(update.peer_group_name) from None


async def delete_peer_group(ctx: SiteContext, ref: str) -> None:
    async with ctx.engine.begin() as conn:
        group = await _require(conn, ref, for_update=True)
        check_peer_group_delete(group, await peer_groups_db.count_group_subclouds(conn, group.id),
                                await peer_groups_db.count_group_associations(conn, group.id))
        await peer_groups_db.delete_peer_group(conn, group.id)


async def group_subclouds(ctx: SiteContext, ref: str) -> list[SubcloudView]:
    async with ctx.engine.connect() as conn:
        group = await _require(conn, ref)
        members = await peer_groups_db.subclouds_of_group(conn, group.id)
        statuses = await subclouds_db.endpoint_statuses(conn, [s.id for s in members]) if members else {}
    return [SubcloudView(s, statuses.get(s.id, [])) for s in members]


async def group_status(ctx: SiteContext, ref: str) -> dict[str, str | int | None]:
    async with ctx.engine.connect() as conn:
        group = await _require(conn, ref)
        return status_counts(group, await peer_groups_db.group_status_rows(conn, group.id))
