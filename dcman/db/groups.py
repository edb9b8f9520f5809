"""The subcloud group rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.clock import utcnow
from dcman.db.refs import ref_clause
from dcman.domain.groups import SubcloudGroup

async def get_group(conn: AsyncConnection, ref: str | int) -> SubcloudGroup | None:
    clause = t.subcloud_group.c.id == ref if isinstance(ref, int) else ref_clause(t.subcloud_group, ref)
    row = (await conn.execute(select(t.subcloud_group).where(clause))).mappings().first()
    return SubcloudGroup(**row) if row else None


async def list_groups(conn: AsyncConnection) -> list[SubcloudGroup]:
    query = select(t.subcloud_group).order_by(t.subcloud_group.c.id)
    return [SubcloudGroup(**row) for row in (await conn.execute(query)).mappings()]


async def group_name_taken(conn: AsyncConnection, name: str, except_id: int | None = None) -> bool:
    query = select(t.subcloud_group.c.id).where(func.lower(t.subcloud_group.c.name) == name.lower())
    if except_id is not None:
        query = query.where(t.subcloud_group.c.id != except_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def insert_group(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(insert(t.subcloud_group).values(created_at=utcnow(), **values))
    return result.inserted_primary_key[0]


async def update_group(conn: AsyncConnection, group_id: int, values: dict[str, Any]) -> None:
    await conn.execute(
        update(t.subcloud_group).where(t.subcloud_group.c.id == group_id).values(updated_at=utcnow(), **values)
    )


async def delete_group(conn: AsyncConnection, group_id: int) -> None:
    await conn.execute(delete(t.subcloud_group).where(t.subcloud_group.c.id == group_id))


async def count_group_members(conn: AsyncConnection, group_id: int) -> int:
    query = select(func.count()).select_from(t.subclouds).where(t.subclouds.c.group_id == group_id)
    return (await conn.execute(query)).scalar_one()

