"""The queries of the operations loop (dcman.loops.subcloud_ops)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.cluster import shard_filter
from dcman.domain.states import DeployStatus
from dcman.domain.subcloud_ops import PRESTAGE, PRESTAGE_RECOVERY, PRESTAGE_STEPS

NETWORK = "network"


async def subclouds_with_operations(conn: AsyncConnection, exclude: list[int], limit: int,
                                    shards: frozenset[int]) -> list[tuple[int, str]]:
    """(id, operation) of the subclouds of these shards with an operation under way."""
    c = t.subclouds.c
    reconfiguring = c.deploy_status == DeployStatus.RECONFIGURING_NETWORK.value
    query = select(c.id, reconfiguring.label("network")).where(
        or_(reconfiguring, c.prestage_status.in_(list(PRESTAGE_STEPS))), shard_filter(c.id, shards)
    ).order_by(c.id).limit(limit)
    if exclude:
        query = query.where(c.id.not_in(exclude))
    return [(subcloud_id, NETWORK if network else PRESTAGE) for subcloud_id, network in await conn.execute(query)]


async def management_alarms(conn: AsyncConnection, subcloud_id: int) -> int:
    """The critical and major alarms the subcloud last reported: dcman counts these as the
    management-affecting ones (the agent's summary has no such flag)."""
    c = t.subcloud_alarms.c
    row = (await conn.execute(select(c.critical_alarms, c.major_alarms).where(c.subcloud_id == subcloud_id))).first()
    return 0 if row is None else max(row[0], 0) + max(row[1], 0)


async def interrupted_prestages(conn: AsyncConnection, shards: frozenset[int]) -> list[tuple[int, str]]:
    """(id, prestage_status) of the subclouds of these shards whose prestage a dead process
    was driving (§2.3.4): they fail, by the caller's transition."""
    c = t.subclouds.c
    query = select(c.id, c.prestage_status).where(c.prestage_status.in_(list(PRESTAGE_RECOVERY)),
                                                  shard_filter(c.id, shards))
    return [(subcloud_id, status) for subcloud_id, status in await conn.execute(query)]
