"""Queries on peer group associations, and the geo-redundancy bookkeeping the peer loops do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.clock import utcnow


@dataclass
class Association:
    id: int
    peer_group_id: int
    system_peer_id: int
    peer_group_priority: int
    association_type: str
    sync_status: str
    sync_message: str | None
    created_at: datetime
    updated_at: datetime | None


async def get_association(conn: AsyncConnection, association_id: int) -> Association | None:
    row = (await conn.execute(select(t.peer_group_associations).where(
        t.peer_group_associations.c.id == association_id))).mappings().first()
    return Association(**row) if row else None


async def find_association(conn: AsyncConnection, peer_group_id: int, system_peer_id: int) -> Association | None:
    c = t.peer_group_associations.c
    row = (await conn.execute(select(t.peer_group_associations).where(
        c.peer_group_id == peer_group_id, c.system_peer_id == system_peer_id))).mappings().first()
    return Association(**row) if row else None


async def list_associations(conn: AsyncConnection, peer_group_id: int | None = None) -> list[Association]:
    query = select(t.peer_group_associations).order_by(t.peer_group_associations.c.id)
    if peer_group_id is not None:
        query = query.where(t.peer_group_associations.c.peer_group_id == peer_group_id)
    return [Association(**row) for row in (await conn.execute(query)).mappings()]


async def insert_association(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(insert(t.peer_group_associations).values(created_at=utcnow(), **values))
    return result.inserted_primary_key[0]


async def update_association(conn: AsyncConnection, association_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(t.peer_group_associations).where(t.peer_group_associations.c.id == association_id)
                       .values(updated_at=utcnow(), **values))


async def delete_association(conn: AsyncConnection, association_id: int) -> None:
    await conn.execute(delete(t.peer_group_associations).where(t.peer_group_associations.c.id == association_id))


async def associations_to_sync(conn: AsyncConnection) -> list[int]:
    """Primary associations waiting for a sync whose peer is available."""
    a, p = t.peer_group_associations.c, t.system_peers.c
    query = (select(a.id).select_from(t.peer_group_associations.join(t.system_peers, a.system_peer_id == p.id))
             .where(a.association_type == "primary", a.sync_status.in_(("out-of-sync", "syncing", "unknown")),
                    p.availability_state == "available"))
    return list((await conn.execute(query)).scalars())


async def mark_group_out_of_sync(conn: AsyncConnection, peer_group_id: int, message: str,
                                 except_id: int | None = None) -> None:
    """A change on the leader: every primary association of the group (but `except_id`) must sync again."""
    c = t.peer_group_associations.c
    query = update(t.peer_group_associations).where(c.peer_group_id == peer_group_id, c.association_type == "primary")
    if except_id is not None:
        query = query.where(c.id != except_id)
    await conn.execute(query.values(sync_status="out-of-sync", sync_message=message, updated_at=utcnow()))


async def mark_peer_associations(conn: AsyncConnection, peer_id: int, status: str, message: str | None,
                                 association_type: str | None = None) -> None:
    """Set the sync status of the peer's associations (of one type, when given)."""
    c = t.peer_group_associations.c
    query = update(t.peer_group_associations).where(c.system_peer_id == peer_id)
    if association_type is not None:
        query = query.where(c.association_type == association_type)
    await conn.execute(query.values(sync_status=status, sync_message=message, updated_at=utcnow()))


async def groups_led_by(conn: AsyncConnection, leader_uuid: str) -> list[str]:
    g = t.subcloud_peer_groups.c
    query = select(g.peer_group_name).where(g.system_leader_id == leader_uuid).order_by(g.id)
    return list((await conn.execute(query)).scalars())


async def flag_shared_groups_for_audit(conn: AsyncConnection, peer_id: int) -> None:
    a, g = t.peer_group_associations.c, t.subcloud_peer_groups.c
    shared = select(a.peer_group_id).where(a.system_peer_id == peer_id)
    await conn.execute(update(t.subcloud_peer_groups).where(g.id.in_(shared)).values(needs_audit=True))


async def clear_alarm(conn: AsyncConnection, alarm_id: str, entity: str) -> None:
    c = t.fault_alarms.c
    await conn.execute(delete(t.fault_alarms).where(and_(c.alarm_id == alarm_id, c.entity_instance_id == entity)))


async def associated_priorities(conn: AsyncConnection, peer_group_id: int) -> list[tuple[str, int]]:
    """(peer uuid, the group's priority there) of each of the group's associations on this site."""
    a, p = t.peer_group_associations.c, t.system_peers.c
    query = (select(p.peer_uuid, a.peer_group_priority)
             .select_from(t.peer_group_associations.join(t.system_peers, p.id == a.system_peer_id))
             .where(a.peer_group_id == peer_group_id).order_by(a.id))
    return [(uuid, priority) for uuid, priority in await conn.execute(query)]
