"""Queries of scale-out: the process registry and the shard leases (see cluster/membership).

Times come from the database (`db_now`) so that processes on machines whose clocks differ
still agree on who is alive and which lease has expired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.clock import utcnow
from dcman.domain.cluster import SHARDS

p, lease = t.processes.c, t.shard_leases.c


@dataclass(frozen=True, slots=True)
class ProcessRow:
    uuid: str
    host: str
    pid: int
    bind: str
    roles: tuple[str, ...]
    leads: tuple[str, ...]
    started_at: datetime
    heartbeat_at: datetime


def is_postgresql(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def db_now(conn: AsyncConnection) -> datetime:
    """The database's clock, naive UTC (SQLite has one process, so its own clock is the clock)."""
    if is_postgresql(conn):
        return (await conn.execute(text("SELECT (now() AT TIME ZONE 'utc')"))).scalar_one()
    return utcnow()


def shard_filter(column: Any, shards: frozenset[int]) -> Any:
    """`column` (a subcloud id) lies in one of these shards."""
    if len(shards) == SHARDS:
        return column.is_not(None)
    return (column % SHARDS).in_(sorted(shards))


# --- the registry ---------------------------------------------------------------------------


async def register(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(t.processes).values(**row))


async def heartbeat(conn: AsyncConnection, uuid: str, now: datetime, leads: str) -> bool:
    """False when the row is gone (the process was declared dead and forgotten)."""
    result = await conn.execute(update(t.processes).where(p.uuid == uuid).values(heartbeat_at=now, leads=leads))
    return result.rowcount == 1


async def remove_process(conn: AsyncConnection, uuid: str) -> None:
    await conn.execute(delete(t.processes).where(p.uuid == uuid))


async def forget_dead(conn: AsyncConnection, before: datetime) -> None:
    await conn.execute(delete(t.processes).where(p.heartbeat_at < before))


async def remove_others(conn: AsyncConnection, uuid: str) -> None:
    await conn.execute(delete(t.processes).where(p.uuid != uuid))


async def live_workers(conn: AsyncConnection, role: str, since: datetime) -> list[str]:
    """The processes with this role whose heartbeat is not older than `since`."""
    rows = await conn.execute(select(p.uuid, p.roles).where(p.heartbeat_at >= since))
    return [uuid for uuid, roles in rows if role in roles.split(",")]


async def list_processes(conn: AsyncConnection) -> list[ProcessRow]:
    rows = await conn.execute(select(p.uuid, p.host, p.pid, p.bind, p.roles, p.leads, p.started_at,
                                     p.heartbeat_at).order_by(p.started_at, p.uuid))
    return [ProcessRow(r[0], r[1], r[2], r[3], tuple(filter(None, r[4].split(","))),
                       tuple(filter(None, r[5].split(","))), r[6], r[7]) for r in rows]


# --- the shard leases -----------------------------------------------------------------------


async def holdings(conn: AsyncConnection, kind: str, now: datetime) -> dict[str, int]:
    """How many unexpired leases of this kind each holder has."""
    rows = await conn.execute(select(lease.holder, func.count()).where(
        and_(lease.kind == kind, lease.holder.is_not(None), lease.expires_at >= now)).group_by(lease.holder))
    return {holder: count for holder, count in rows}


async def renew(conn: AsyncConnection, kind: str, holder: str, shards: set[int], expires: datetime) -> set[int]:
    """Extend the leases still ours; returns the shards renewed (a lost one is missing)."""
    if not shards:
        return set()
    result = await conn.execute(
        update(t.shard_leases).where(and_(lease.kind == kind, lease.holder == holder, lease.shard.in_(sorted(shards))))
        .values(expires_at=expires).returning(lease.shard))
    return set(result.scalars())


async def release(conn: AsyncConnection, kind: str, holder: str, shards: set[int], now: datetime,
                  clean: bool) -> None:
    """Give leases back now. `clean`: handed over while alive (holder cleared, the taker
    adopts the work); otherwise the holder stays, so the taker recovers as after a crash."""
    if shards:
        values: dict[str, Any] = {"expires_at": now}
        if clean:
            values["holder"] = None
        await conn.execute(update(t.shard_leases).where(
            and_(lease.kind == kind, lease.holder == holder, lease.shard.in_(sorted(shards)))).values(**values))


async def claim(conn: AsyncConnection, kind: str, holder: str, count: int, now: datetime,
                expires: datetime) -> list[tuple[int, str | None]]:
    """Take up to `count` free or expired leases, skipping rows another process is claiming
    right now, in the order of dcman.domain.cluster.spread; returns (shard, previous
    holder) for each taken."""
    if count <= 0:
        return []
    query = (select(lease.shard, lease.holder)
             .where(and_(lease.kind == kind, or_(lease.holder.is_(None), lease.expires_at < now)))
             .order_by(lease.shard * 37 % SHARDS).limit(count).with_for_update(skip_locked=True))
    taken = [(shard, previous) for shard, previous in await conn.execute(query)]
    if taken:
        await conn.execute(update(t.shard_leases).where(
            and_(lease.kind == kind, lease.shard.in_([shard for shard, _ in taken])))
            .values(holder=holder, expires_at=expires))
    return taken


async def expire_all(conn: AsyncConnection, now: datetime) -> None:
    """Every lease expired now, holders kept: the single SQLite process starting up takes them
    all at once and recovers what its previous run left half done."""
    await conn.execute(update(t.shard_leases).where(lease.expires_at > now).values(expires_at=now))


async def leases_by_holder(conn: AsyncConnection, now: datetime) -> dict[str, dict[str, list[int]]]:
    """holder → kind → the shards it holds unexpired."""
    found: dict[str, dict[str, list[int]]] = {}
    rows = await conn.execute(select(lease.holder, lease.kind, lease.shard).where(
        and_(lease.holder.is_not(None), lease.expires_at >= now)).order_by(lease.kind, lease.shard))
    for holder, kind, shard in rows:
        found.setdefault(holder, {}).setdefault(kind, []).append(shard)
    return found


async def subclouds_in_states(conn: AsyncConnection, states: list[str], shards: frozenset[int]) -> list[tuple[int, str]]:
    """(id, deploy_status) of the subclouds of these shards in one of these deploy states."""
    c = t.subclouds.c
    if not shards or not states:
        return []
    rows = await conn.execute(select(c.id, c.deploy_status).where(
        and_(c.deploy_status.in_(states), shard_filter(c.id, shards))))
    return [(subcloud_id, status) for subcloud_id, status in rows]
