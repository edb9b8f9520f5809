"""Subcloud group use cases (lifecycle reference §2.7)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import groups as groups_db
from dcman.domain.commands import GroupUpdate, NewGroup, given
from dcman.domain.errors import Conflict, NotFound
from dcman.domain.groups import SubcloudGroup, check_group_delete, check_group_update
from dcman.services.context import SiteContext


async def _require(conn: AsyncConnection, ref: str) -> SubcloudGroup:
    group = await groups_db.get_group(conn, ref)
    if group is None:
        raise NotFound(f"Subcloud group {ref} not found.")
    return group


async def list_groups(ctx: SiteContext) -> list[SubcloudGroup]:
    async with ctx.engine.connect() as conn:
        return await groups_db.list_groups(conn)


async def get_group(ctx: SiteContext, ref: str) -> SubcloudGroup:
    async with ctx.engine.connect() as conn:
        return await _require(conn, ref)


async def create_group(ctx: SiteContext, command: NewGroup) -> SubcloudGroup:
    values = given(command)
    try:
        async with ctx.engine.begin() as conn:
            if await groups_db.group_name_taken(conn, command.name):
                raise Conflict(f"A subcloud group named {command.name} already exists.")
            group_id = await groups_db.insert_group(conn, values)
            return await _require(conn, str(group_id))
    except IntegrityError:
        raise Conflict(f"A subcloud group named {command.name} already exists.") from None


async def update_group(ctx: SiteContext, ref: str, update: GroupUpdate) -> SubcloudGroup:
    try:
        async with ctx.engine.begin() as conn:
            group = await _require(conn, ref)
            check_group_update(group, update)
            changes = given(update)
            if "name" in changes and await groups_db.group_name_taken(conn, changes["name"], except_id=group.id):
                raise Conflict(f"A subcloud group named {changes['name']} already exists.")
            await groups_db.update_group(conn, group.id, changes)
            return await _require(conn, str(group.id))
    except IntegrityError:
        raise Conflict(f"A subcloud group named {update.name} already exists.") from None


async def delete_group(ctx: SiteContext, ref: str) -> None:
    async with ctx.engine.begin() as conn:
        group = await _require(conn, ref)
        check_group_delete(group, await groups_db.count_group_members(conn, group.id))
        await groups_db.delete_group(conn, group.id)
