"""The fault alarms raised on subclouds, as the operator lists them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t


async def rename_alarm_entities(conn: AsyncConnection, subcloud_id: int, old: str, new: str) -> None:
    """A renamed subcloud keeps its active alarms, under its new name."""
    c = t.fault_alarms.c
    rows = (await conn.execute(select(c.id, c.entity_instance_id, c.reason_text).where(c.subcloud_id == subcloud_id))).all()
    old_entity, new_entity = f"subcloud={old}", f"subcloud={new}"
    for alarm_id, entity, reason in rows:
        await conn.execute(update(t.fault_alarms).where(c.id == alarm_id).values(
            entity_instance_id=new_entity + entity.removeprefix(old_entity),
            reason_text=new + reason.removeprefix(old) if reason.startswith(old) else reason))


async def list_fault_alarms(conn: AsyncConnection, alarm_id: str | None = None, entity: str | None = None,
                            subcloud_id: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    c = t.fault_alarms.c
    query = select(c.alarm_id, c.entity_instance_id, c.severity, c.reason_text, c.timestamp)
    query = query.order_by(c.id) if limit is None else query.order_by(c.id.desc()).limit(limit)
    if alarm_id is not None:
        query = query.where(c.alarm_id == alarm_id)
    if entity is not None:
        query = query.where(c.entity_instance_id == entity)
    if subcloud_id is not None:
        query = query.where(c.subcloud_id == subcloud_id)
    return [dict(row) for row in (await conn.execute(query)).mappings()]

