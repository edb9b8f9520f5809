"""The queries of the operations loop (dcman.loops.subcloud_ops)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.cluster_repository import shard_filter
from dcman.domain.states import DeployStatus

NETWORK = "network"


async def subclouds_with_operations(conn: AsyncConnection, exclude: list[int], limit: int,
                                    shards: frozenset[int]) -> list[tuple[int, str]]:
    """(id, operation) of the subclouds of these shards with an operation under way."""
    c = t.subclouds.c
    query = select(c.id).where(c.deploy_status == DeployStatus.RECONFIGURING_NETWORK.value,
                               shard_filter(c.id, shards)).order_by(c.id).limit(limit)
    if exclude:
        query = query.where(c.id.not_in(exclude))
    return [(subcloud_id, NETWORK) for subcloud_id in (await conn.execute(query)).scalars()]
