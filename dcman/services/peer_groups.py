"""Subcloud peer group use cases (geo-redundancy reference §1): create, show, list, update,
delete, the group's subclouds and their status counts."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import associations as associations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import subclouds as subclouds_db
from dcman.domain.errors import Conflict, InvalidInput, NotFound
from dcman.domain.peer_groups import (
    SubcloudPeerGroup,
    check_peer_group_delete,
    status_counts,
    validate_new_peer_group,
    validate_peer_group_update,
)
from dcman.services.context import SiteContext
from dcman.services.subclouds import SubcloudView


async def _require(conn: AsyncConnection, ref: str, for_update: bool = False) -> SubcloudPeerGroup:
    group = await peer_groups_db.get_peer_group(conn, ref, for_update=for_update)
    if group is None:
        raise NotFound(f"Subcloud peer group {ref} not found.")
    return group


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    return dict(body)


def _taken(name: Any) -> Conflict:
    return Conflict(f"A subcloud peer group named {name} already exists.")


async def list_peer_groups(ctx: SiteContext) -> list[SubcloudPeerGroup]:
    async with ctx.engine.connect() as conn:
        return await peer_groups_db.list_peer_groups(conn)


async def get_peer_group(ctx: SiteContext, ref: str) -> SubcloudPeerGroup:
    async with ctx.engine.connect() as conn:
        return await _require(conn, ref)


async def create_peer_group(ctx: SiteContext, body: Any) -> SubcloudPeerGroup:
    values = validate_new_peer_group(_body(body), ctx.site_uuid, ctx.settings.site_name)
    try:
        async with ctx.engine.begin() as conn:
            if await peer_groups_db.peer_group_name_taken(conn, values["peer_group_name"]):
                raise _taken(values["peer_group_name"])
            group_id = await peer_groups_db.insert_peer_group(conn, values)
            return await _require(conn, str(group_id))
    except IntegrityError:
        raise _taken(values["peer_group_name"]) from None


async def update_peer_group(ctx: SiteContext, ref: str, body: Any) -> SubcloudPeerGroup:
    body = _body(body)
    try:
        async with ctx.engine.begin() as conn:
            group = await _require(conn, ref, for_update=True)
            changes = validate_peer_group_update(group, body)
            name = changes.get("peer_group_name")
            if name is not None and await peer_groups_db.peer_group_name_taken(conn, name, except_id=group.id):
                raise _taken(name)
            await peer_groups_db.update_peer_group(conn, group.id, changes)
            await associations_db.mark_group_out_of_sync(conn, group.id, f"Subcloud peer group {group.peer_group_name} changed.")
            updated = await _require(conn, str(group.id))
        ctx.sync_wakeup.set()
        return updated
    except IntegrityError:
        raise _taken(body.get("peer-group-name", body.get("peer_group_name"))) from None


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


async def group_status(ctx: SiteContext, ref: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        group = await _require(conn, ref)
        return status_counts(group, await peer_groups_db.group_status_rows(conn, group.id))
