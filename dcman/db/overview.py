"""Read-only queries for the dashboard and the metrics: pages of subclouds and counts made by
the database (GROUP BY), so that their cost does not grow with rows loaded into Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.subclouds import entity_of
from dcman.domain.subcloud import Subcloud


@dataclass(frozen=True)
class SubcloudFilter:
    """Resolved filters: group and peer group as ids (`no_peer_group` for "in none")."""

    name: str | None = None
    availability: str | None = None
    management: str | None = None
    deploy_status: str | None = None
    group_id: int | None = None
    peer_group_id: int | None = None
    no_peer_group: bool = False


def _where(query: Any, f: SubcloudFilter) -> Any:
    c = t.subclouds.c
    if f.name is not None:
        query = query.where(func.lower(c.name).contains(f.name.lower(), autoescape=True))
    for column, value in ((c.availability_status, f.availability), (c.management_state, f.management),
                          (c.deploy_status, f.deploy_status), (c.group_id, f.group_id),
                          (c.peer_group_id, f.peer_group_id)):
        if value is not None:
            query = query.where(column == value)
    if f.no_peer_group:
        query = query.where(c.peer_group_id.is_(None))
    return query


async def subcloud_page(conn: AsyncConnection, f: SubcloudFilter, limit: int | None,
                        offset: int) -> list[Subcloud]:
    query = _where(select(t.subclouds), f).order_by(t.subclouds.c.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [entity_of(row) for row in (await conn.execute(query)).mappings()]


async def count_subclouds(conn: AsyncConnection, f: SubcloudFilter) -> int:
    return (await conn.execute(_where(select(func.count()).select_from(t.subclouds), f))).scalar_one()


async def subcloud_state_counts(conn: AsyncConnection) -> list[tuple[str, str, str, int]]:
    """(availability, management, deploy_status, count) for every combination present."""
    c = t.subclouds.c
    query = (select(c.availability_status, c.management_state, c.deploy_status, func.count())
             .group_by(c.availability_status, c.management_state, c.deploy_status))
    return [(a, m, d, n) for a, m, d, n in await conn.execute(query)]


async def alarm_severity_counts(conn: AsyncConnection) -> dict[str, int]:
    c = t.fault_alarms.c
    return {severity: n for severity, n in await conn.execute(select(c.severity, func.count()).group_by(c.severity))}


async def peer_group_member_counts(conn: AsyncConnection) -> list[tuple[int, str, str, int]]:
    """(peer_group_id, deploy_status, management_state, count) of the subclouds in peer groups."""
    c = t.subclouds.c
    query = (select(c.peer_group_id, c.deploy_status, c.management_state, func.count())
             .where(c.peer_group_id.is_not(None))
             .group_by(c.peer_group_id, c.deploy_status, c.management_state))
    return [(g, d, m, n) for g, d, m, n in await conn.execute(query)]

