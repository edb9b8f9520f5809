"""Subcloud group use cases (lifecycle reference §2.7)."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import groups as groups_db
from dcman.domain.errors import Conflict, InvalidInput, NotFound
from dcman.domain.groups import SubcloudGroup, check_group_delete, validate_group_update, validate_new_group
from dcman.services.context import SiteContext


async def _require(conn: AsyncConnection, ref: str) -> SubcloudGroup:
    group = await groups_db.get_group(conn, ref)
    if group is None:
        raise NotFound(f"Subcloud group {ref} not found.")
    return group


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    return dict(body)


async def list_groups(ctx: SiteContext) -> list[SubcloudGroup]:
    async with ctx.engine.connect() as conn:
        return await groups_db.list_groups(conn)


async def get_group(ctx: SiteContext, ref: str) -> SubcloudGroup:
    async with ctx.engine.connect() as conn:
        return await _require(conn, ref)


async def create_group(ctx: SiteContext, body: Any) -> SubcloudGroup:
    values = validate_new_group(_body(body))
    try:
        async with ctx.engine.begin() as conn:
            if await groups_db.group_name_taken(conn, values["name"]):
                raise Conflict(f"A subcloud group named {values['name']} already exists.")
            group_id = await groups_db.insert_group(conn, values)
            return await _require(conn, str(group_id))
    except IntegrityError:
        raise Conflict(f"A subcloud group named {values['name']} already exists.") from None


async def update_group(ctx: SiteContext, ref: str, body: Any) -> SubcloudGroup:
    body = _body(body)
    try:
        async with ctx.engine.begin() as conn:
            group = await _require(conn, ref)
            changes = validate_group_update(group, body)
            if "name" in changes and await groups_db.group_name_taken(conn, changes["name"], except_id=group.id):
                raise Conflict(f"A subcloud group named {changes['name']} already exists.")
            await groups_db.update_group(conn, group.id, changes)
            return await _require(conn, str(group.id))
    except IntegrityError:
        raise Conflict(f"A subcloud group named {body.get('name')} already exists.") from None


async def delete_group(ctx: SiteContext, ref: str) -> None:
    async with ctx.engine.begin() as conn:
        group = await _require(conn, ref)
        check_group_delete(group, await groups_db.count_group_members(conn, group.id))
        await groups_db.delete_group(conn, group.id)
