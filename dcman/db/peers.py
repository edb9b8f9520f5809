"""Queries on system peers (and their peer-group associations), returning domain dataclasses.
Every function runs on a connection whose transaction the caller owns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, false, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.clock import utcnow
from dcman.db.refs import MAX_ID
from dcman.domain.peers import SystemPeer

_peers = t.system_peers


def _ref_clause(ref: str | int) -> Any:
    """A peer is named by id, by its UUID or by its name (names are never all digits)."""
    if isinstance(ref, int):
        return _peers.c.id == ref
    if "\x00" in ref:
        return false()
    if ref.isascii() and ref.isdigit():
        return _peers.c.id == int(ref) if int(ref) <= MAX_ID else false()
    return or_(func.lower(_peers.c.peer_uuid) == ref.lower(), _peers.c.peer_name == ref)


async def get_peer(conn: AsyncConnection, ref: str | int) -> SystemPeer | None:
    query = select(_peers).where(_ref_clause(ref))
    if not isinstance(ref, int):  # a UUID match wins over a peer named like another's UUID
        query = query.order_by(case((func.lower(_peers.c.peer_uuid) == str(ref).lower(), 0), else_=1))
    row = (await conn.execute(query.limit(1))).mappings().first()
    return SystemPeer(**row) if row else None


async def list_peers(conn: AsyncConnection) -> list[SystemPeer]:
    query = select(_peers).order_by(_peers.c.id)
    return [SystemPeer(**row) for row in (await conn.execute(query)).mappings()]


async def peer_uuid_taken(conn: AsyncConnection, peer_uuid: str, except_id: int | None = None) -> bool:
    query = select(_peers.c.id).where(func.lower(_peers.c.peer_uuid) == peer_uuid.lower())
    if except_id is not None:
        query = query.where(_peers.c.id != except_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def peer_name_taken(conn: AsyncConnection, peer_name: str, except_id: int | None = None) -> bool:
    query = select(_peers.c.id).where(_peers.c.peer_name == peer_name)
    if except_id is not None:
        query = query.where(_peers.c.id != except_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def insert_peer(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(insert(_peers).values(created_at=utcnow(), **values))
    return result.inserted_primary_key[0]


async def update_peer(conn: AsyncConnection, peer_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(_peers).where(_peers.c.id == peer_id).values(updated_at=utcnow(), **values))


async def delete_peer(conn: AsyncConnection, peer_id: int) -> None:
    await conn.execute(delete(_peers).where(_peers.c.id == peer_id))


async def record_heartbeat(conn: AsyncConnection, peer_id: int, at: datetime, answered: bool) -> None:
    """When the peer monitor sent a heartbeat, and when the peer last answered one."""
    values: dict[str, Any] = {"last_heartbeat_at": at}
    if answered:
        values["last_answered_at"] = at
    await conn.execute(update(_peers).where(_peers.c.id == peer_id).values(**values))


async def set_peer_health(conn: AsyncConnection, peer_id: int, availability_state: str,
                          heartbeat_failures: int) -> None:
    """The peer monitor's verdict; `updated_at` moves only when the availability changes."""
    await conn.execute(
        update(_peers)
        .where(_peers.c.id == peer_id)
        .values(
            availability_state=availability_state,
            heartbeat_failures=heartbeat_failures,
            updated_at=case((_peers.c.availability_state != availability_state, utcnow()),
                            else_=_peers.c.updated_at),
        )
    )


async def count_peer_associations(conn: AsyncConnection, peer_id: int) -> int:
    assoc = t.peer_group_associations
    query = select(func.count()).select_from(assoc).where(assoc.c.system_peer_id == peer_id)
    return (await conn.execute(query)).scalar_one()


async def peer_groups_of_peer(conn: AsyncConnection, peer_id: int) -> list[dict[str, Any]]:
    """The subcloud peer groups associated with a peer, as row mappings."""
    assoc, groups = t.peer_group_associations, t.subcloud_peer_groups
    query = (
        select(groups)
        .join(assoc, assoc.c.peer_group_id == groups.c.id)
        .where(assoc.c.system_peer_id == peer_id)
        .order_by(groups.c.id)
    )
    return [dict(row) for row in (await conn.execute(query)).mappings()]
