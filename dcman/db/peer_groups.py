"""Queries on subcloud peer groups and what hangs off them. Every function runs on a
connection whose transaction the caller (a service or a loop) owns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, false, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.clock import utcnow
from dcman.db.refs import MAX_ID
from dcman.db.subclouds import encode_plan, entity_of
from dcman.domain.migration import MIGRATABLE, REHOME_PLAN
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.states import REHOMING_STATES, DeployStatus, ManagementState, PeerAvailability
from dcman.domain.subcloud import Subcloud

_groups = t.subcloud_peer_groups


def _ref_clause(ref: str | int) -> Any:
    """By id or by name; names are never all digits, so digits mean an id."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return _groups.c.id == ref
    ref = str(ref)
    if "\x00" in ref:
        return false()
    if ref.isascii() and ref.isdigit():
        return _groups.c.id == int(ref) if int(ref) <= MAX_ID else false()
    return _groups.c.peer_group_name == ref


async def get_peer_group(conn: AsyncConnection, ref: str | int, for_update: bool = False) -> SubcloudPeerGroup | None:
    query = select(_groups).where(_ref_clause(ref))
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return SubcloudPeerGroup(**row) if row else None


async def list_peer_groups(conn: AsyncConnection) -> list[SubcloudPeerGroup]:
    rows = await conn.execute(select(_groups).order_by(_groups.c.id))
    return [SubcloudPeerGroup(**row) for row in rows.mappings()]


async def peer_group_name_taken(conn: AsyncConnection, name: str, except_id: int | None = None) -> bool:
    query = select(_groups.c.id).where(_groups.c.peer_group_name == name)
    if except_id is not None:
        query = query.where(_groups.c.id != except_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def insert_peer_group(conn: AsyncConnection, values: dict[str, Any]) -> int:
    values = {"needs_audit": False, **values}
    result = await conn.execute(insert(_groups).values(created_at=utcnow(), **values))
    return result.inserted_primary_key[0]


async def update_peer_group(conn: AsyncConnection, group_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(_groups).where(_groups.c.id == group_id).values(updated_at=utcnow(), **values))


async def delete_peer_group(conn: AsyncConnection, group_id: int) -> None:
    await conn.execute(delete(_groups).where(_groups.c.id == group_id))


async def subclouds_of_group(conn: AsyncConnection, group_id: int) -> list[Subcloud]:
    query = select(t.subclouds).where(t.subclouds.c.peer_group_id == group_id).order_by(t.subclouds.c.id)
    return [entity_of(row) for row in (await conn.execute(query)).mappings()]


async def rehomes_under_way(conn: AsyncConnection, group_id: int) -> list[Subcloud]:
    """The members a migration round looks at besides its queue: those being rehomed, and
    those rehomed here and not yet managed (domain.migration.awaits_management). A round
    reads these, not the whole group: it runs on every rehome that ends."""
    c = t.subclouds.c
    rehoming = c.deploy_status.in_([s.value for s in REHOMING_STATES])
    unmanaged = and_(c.deploy_status == DeployStatus.COMPLETE.value, c.rehomed.is_(True),
                     c.management_state == ManagementState.UNMANAGED.value)
    query = select(t.subclouds).where(c.peer_group_id == group_id, or_(rehoming, unmanaged)).order_by(c.id)
    return [entity_of(row) for row in (await conn.execute(query)).mappings()]


async def rehome_queue(conn: AsyncConnection, group_id: int, limit: int) -> list[Subcloud]:
    """The first `limit` members, by id, waiting for their turn to be rehomed (domain.migration.is_queued)."""
    c = t.subclouds.c
    query = (select(t.subclouds)
             .where(c.peer_group_id == group_id, c.deploy_status.in_([s.value for s in MIGRATABLE]),
                    c.deploy_plan == encode_plan(REHOME_PLAN))
             .order_by(c.id).limit(limit))
    return [entity_of(row) for row in (await conn.execute(query)).mappings()]


async def count_group_subclouds(conn: AsyncConnection, group_id: int) -> int:
    query = select(func.count()).select_from(t.subclouds).where(t.subclouds.c.peer_group_id == group_id)
    return (await conn.execute(query)).scalar_one()


async def count_group_associations(conn: AsyncConnection, group_id: int) -> int:
    a = t.peer_group_associations
    query = select(func.count()).select_from(a).where(a.c.peer_group_id == group_id)
    return (await conn.execute(query)).scalar_one()


async def count_available_peers(conn: AsyncConnection, group_id: int) -> int:
    """The system peers associated with the group that are `available` now."""
    a, p = t.peer_group_associations.c, t.system_peers.c
    query = (
        select(func.count())
        .select_from(t.peer_group_associations.join(t.system_peers, a.system_peer_id == p.id))
        .where(a.peer_group_id == group_id, p.availability_state == PeerAvailability.AVAILABLE.value)
    )
    return (await conn.execute(query)).scalar_one()


async def group_status_rows(conn: AsyncConnection, group_id: int) -> list[tuple[str, str, int]]:
    """(deploy_status, management_state, count) of the group's subclouds."""
    c = t.subclouds.c
    query = (
        select(c.deploy_status, c.management_state, func.count())
        .where(c.peer_group_id == group_id)
        .group_by(c.deploy_status, c.management_state)
    )
    return [(d, m, n) for d, m, n in await conn.execute(query)]
