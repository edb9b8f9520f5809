"""Queries of the availability audit: what to audit, and batched writes of the endpoint statuses,
alarm summaries and alarms it found (its subcloud-row writes are in dcman.db.subclouds)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.batches import chunks
from dcman.db.cluster import shard_filter
from dcman.domain.alarms import Alarm
from dcman.domain.audit import AUDITED_DEPLOY_STATES, AlarmCounts


@dataclass(slots=True)
class TargetRow:
    id: int
    name: str
    address: str
    sysadmin_password: str | None
    management_state: str
    deploy_status: str
    availability: str
    fail_count: int
    counts: AlarmCounts | None
    endpoints_version: int
    error_description: str
    fencing_epoch: int = 0


@dataclass(slots=True)
class StoredEndpoints:
    """A subcloud's endpoint statuses as stored, with what decides which reports may be stored."""

    version: int
    management_state: str
    deploy_status: str
    statuses: dict[str, str]


async def audit_targets(conn: AsyncConnection, shards: frozenset[int]) -> list[TargetRow]:
    """The audited subclouds of these shards (those this process holds audit leases on)."""
    s, a = t.subclouds.c, t.subcloud_alarms.c
    if not shards:
        return []
    query = (
        select(s.id, s.name, s.management_start_ip, s.sysadmin_password, s.management_state, s.deploy_status,
               s.availability_status, s.audit_fail_count, a.critical_alarms, a.major_alarms, a.minor_alarms,
               a.warnings, s.endpoints_version, s.error_description, s.fencing_epoch)
        .select_from(t.subclouds.outerjoin(t.subcloud_alarms, a.subcloud_id == s.id))
        .where(s.deploy_status.in_(AUDITED_DEPLOY_STATES), shard_filter(s.id, shards))
    )
    rows = []
    for r in await conn.execute(query):
        counts = AlarmCounts(r[8], r[9], r[10], r[11]) if r[8] is not None else None
        rows.append(TargetRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], counts, r[12], r[13], r[14] or 0))
    return rows


async def locked_endpoints(conn: AsyncConnection, ids: list[int]) -> dict[int, StoredEndpoints]:
    """The stored endpoint statuses of these subclouds, their rows locked until the transaction
    ends (PostgreSQL FOR SHARE; SQLite's transactions are serial anyway), so that no operator
    change lands between this read and the writes decided from it. Deleted subclouds are absent."""
    s, c = t.subclouds.c, t.subcloud_status.c
    found: dict[int, StoredEndpoints] = {}
    for chunk in chunks(ids):
        query = (select(s.id, s.endpoints_version, s.management_state, s.deploy_status)
                 .where(s.id.in_(chunk)).with_for_update(read=True))
        for subcloud_id, version, management_state, deploy_status in await conn.execute(query):
            found[subcloud_id] = StoredEndpoints(version, management_state, deploy_status, {})
        for subcloud_id, endpoint, status in await conn.execute(
            select(c.subcloud_id, c.endpoint_type, c.sync_status).where(c.subcloud_id.in_(chunk))
        ):
            if subcloud_id in found:
                found[subcloud_id].statuses[endpoint] = status
    return found


async def set_endpoint_statuses(conn: AsyncConnection, rows: list[tuple[int, str, str]], now: datetime) -> None:
    """rows: (subcloud_id, endpoint_type, sync_status)."""
    if rows:
        c = t.subcloud_status.c
        await conn.execute(
            update(t.subcloud_status)
            .where(and_(c.subcloud_id == bindparam("b_id"), c.endpoint_type == bindparam("b_endpoint")))
            .values(sync_status=bindparam("b_status"), updated_at=now),
            [{"b_id": i, "b_endpoint": e, "b_status": s} for i, e, s in rows],
        )


async def set_alarm_counts(conn: AsyncConnection, rows: dict[int, AlarmCounts], now: datetime) -> None:
    if rows:
        await conn.execute(
            update(t.subcloud_alarms).where(t.subcloud_alarms.c.subcloud_id == bindparam("b_id"))
            .values(critical_alarms=bindparam("b_critical"), major_alarms=bindparam("b_major"),
                    minor_alarms=bindparam("b_minor"), warnings=bindparam("b_warnings"),
                    cloud_status=bindparam("b_cloud"), updated_at=now),
            [{"b_id": i, "b_critical": c.critical, "b_major": c.major, "b_minor": c.minor,
              "b_warnings": c.warnings, "b_cloud": c.cloud_status} for i, c in rows.items()],
        )


async def alarm_raised(conn: AsyncConnection, alarm_id: str, entity: str) -> bool:
    c = t.fault_alarms.c
    query = select(c.alarm_id).where(c.alarm_id == alarm_id, c.entity_instance_id == entity).limit(1)
    return (await conn.execute(query)).first() is not None


async def raise_alarms(conn: AsyncConnection, alarms: Iterable[tuple[int, Alarm]], now: datetime) -> None:
    """Insert the alarms not already raised (raising is idempotent)."""
    wanted = {(a.alarm_id, a.entity_instance_id): (sid, a) for sid, a in alarms}
    if not wanted:
        return
    c = t.fault_alarms.c
    existing: set[tuple[str, str]] = set()
    entities = sorted({entity for _, entity in wanted})
    for chunk in chunks(entities):
        existing.update((r[0], r[1]) for r in await conn.execute(
            select(c.alarm_id, c.entity_instance_id).where(c.entity_instance_id.in_(chunk))))
    new = [
        {"alarm_id": a.alarm_id, "entity_instance_id": a.entity_instance_id, "subcloud_id": sid,
         "severity": a.severity, "reason_text": a.reason_text, "timestamp": now}
        for key, (sid, a) in wanted.items() if key not in existing
    ]
    if new:
        await conn.execute(t.fault_alarms.insert(), new)


async def clear_alarms(conn: AsyncConnection, alarm_id: str, subcloud_ids: list[int],
                       entities: list[str] | None = None) -> None:
    c = t.fault_alarms.c
    for chunk in chunks(subcloud_ids):
        query = delete(t.fault_alarms).where(and_(c.alarm_id == alarm_id, c.subcloud_id.in_(chunk)))
        if entities is not None:
            query = query.where(c.entity_instance_id.in_(entities))
        await conn.execute(query)
