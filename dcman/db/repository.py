"""Queries on the tables, returning domain dataclasses. Every function runs on a connection
whose transaction the caller (a service) owns."""

from __future__ import annotations

import ipaddress
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, delete, false, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.domain.groups import SubcloudGroup
from dcman.domain.network import OtherSubcloudNetwork
from dcman.domain.states import CloudStatus, DeployStatus, EndpointType, SyncStatus
from dcman.domain.subcloud import Subcloud


def utcnow() -> datetime:
    """Naive UTC, as stored (SQLite keeps no zone)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


MAX_ID = 2**31 - 1  # ids are 32-bit integer columns


def _ref_clause(table: Any, ref: str) -> Any:
    """Objects are named by id or by name; names are never all digits, so digits mean an id."""
    if "\x00" in ref:  # no stored name holds NUL, and PostgreSQL refuses it in a query
        return false()
    if ref.isascii() and ref.isdigit():
        return table.c.id == int(ref) if int(ref) <= MAX_ID else false()
    return table.c.name == ref


# --- subclouds -------------------------------------------------------------------------


async def lock_subcloud_changes(conn: AsyncConnection) -> None:
    """Serialise the checks that span all subclouds (name and address-range uniqueness) with
    the insert that relies on them. SQLite's BEGIN IMMEDIATE already does; PostgreSQL's READ
    COMMITTED does not, so take the site row's lock."""
    await conn.execute(select(t.site.c.id).where(t.site.c.id == 1).with_for_update())


async def get_subcloud(conn: AsyncConnection, ref: str | int, for_update: bool = False,
                       by_region: bool = False) -> Subcloud | None:
    """By id, or by name; `by_region` also by region name, as peer sites address subclouds
    (names and region names share one namespace, so a ref matches one subcloud at most)."""
    clause = t.subclouds.c.id == ref if isinstance(ref, int) else _ref_clause(t.subclouds, ref)
    if by_region and isinstance(ref, str) and "\x00" not in ref and not (ref.isascii() and ref.isdigit()):
        clause = or_(clause, t.subclouds.c.region_name == ref)
    query = select(t.subclouds).where(clause)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return Subcloud(**row) if row else None


async def list_subclouds(conn: AsyncConnection, group_id: int | None = None) -> list[Subcloud]:
    query = select(t.subclouds).order_by(t.subclouds.c.id)
    if group_id is not None:
        query = query.where(t.subclouds.c.group_id == group_id)
    return [Subcloud(**row) for row in (await conn.execute(query)).mappings()]


async def name_or_region_taken(conn: AsyncConnection, name: str, except_id: int | None = None) -> bool:
    query = select(t.subclouds.c.id).where(or_(t.subclouds.c.name == name, t.subclouds.c.region_name == name))
    if except_id is not None:
        query = query.where(t.subclouds.c.id != except_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def region_ids(conn: AsyncConnection) -> dict[str, int]:
    """Every subcloud's id by region name (to move files of the old by-region layout)."""
    rows = await conn.execute(select(t.subclouds.c.region_name, t.subclouds.c.id))
    return {region: subcloud_id for region, subcloud_id in rows}


async def region_taken(conn: AsyncConnection, region_name: str) -> bool:
    query = select(t.subclouds.c.id).where(t.subclouds.c.region_name == region_name).limit(1)
    return (await conn.execute(query)).first() is not None


def address_key(address: str) -> str:
    """An address as 32 hex digits that sort like the addresses (IPv4 as IPv4-mapped IPv6)."""
    ip = ipaddress.ip_address(address)
    return format(int(ip) + (0xFFFF << 32 if ip.version == 4 else 0), "032x")


def network_keys(subnet: str, start: str, end: str) -> dict[str, str]:
    network = ipaddress.ip_network(subnet, strict=False)
    return {"range_lo": address_key(start), "range_hi": address_key(end),
            "subnet_lo": address_key(str(network.network_address)),
            "subnet_hi": address_key(str(network.broadcast_address))}


async def overlap_candidates(conn: AsyncConnection, start: str, end: str, oam_subnet: str,
                             except_id: int | None = None) -> list[OtherSubcloudNetwork]:
    """The only subclouds the overlap rules can trip on: the one whose range starts last at or
    before the new range's end (stored ranges never overlap each other), and those whose
    management subnet overlaps the OAM subnet."""
    c = t.subclouds.c
    columns = (c.name, c.management_subnet, c.management_start_ip, c.management_end_ip)
    oam = ipaddress.ip_network(oam_subnet, strict=False)
    oam_lo, oam_hi = address_key(str(oam.network_address)), address_key(str(oam.broadcast_address))
    by_range = select(*columns).where(c.range_lo <= address_key(end)).order_by(c.range_lo.desc()).limit(1)
    by_oam = select(*columns).where(c.subnet_lo <= oam_hi, c.subnet_hi >= oam_lo).limit(1000)
    if except_id is not None:
        by_range, by_oam = by_range.where(c.id != except_id), by_oam.where(c.id != except_id)
    found = {}
    for query in (by_range, by_oam):
        for row in (await conn.execute(query)).mappings():
            found[row["name"]] = OtherSubcloudNetwork(**row)
    return list(found.values())


async def insert_subcloud(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Insert a subcloud with its endpoint statuses (all unknown) and its alarm summary row."""
    now = utcnow()
    keys = network_keys(values["management_subnet"], values["management_start_ip"], values["management_end_ip"])
    result = await conn.execute(insert(t.subclouds).values(created_at=now, **keys, **values))
    subcloud_id = result.inserted_primary_key[0]
    await conn.execute(
        insert(t.subcloud_status),
        [
            {"subcloud_id": subcloud_id, "endpoint_type": e.value, "sync_status": SyncStatus.UNKNOWN.value,
             "created_at": now}
            for e in EndpointType
        ],
    )
    await conn.execute(
        insert(t.subcloud_alarms).values(
            uuid=str(uuid.uuid4()), subcloud_id=subcloud_id, critical_alarms=-1, major_alarms=-1,
            minor_alarms=-1, warnings=-1, cloud_status=CloudStatus.DISABLED.value, created_at=now,
        )
    )
    return subcloud_id


async def update_subcloud(conn: AsyncConnection, subcloud_id: int, values: dict[str, Any],
                          only_if: dict[str, Any] | None = None) -> bool:
    """Update columns; with `only_if`, only when those columns still hold those values
    (a compare-and-set, so concurrent loops and processes cannot both take one step)."""
    query = update(t.subclouds).where(t.subclouds.c.id == subcloud_id)
    for column, value in (only_if or {}).items():
        query = query.where(t.subclouds.c[column] == value)
    result = await conn.execute(query.values(updated_at=utcnow(), **values))
    return result.rowcount == 1


async def delete_subcloud(conn: AsyncConnection, subcloud_id: int) -> None:
    # Children go explicitly too: SQLite enforces ON DELETE CASCADE only with the pragma on.
    await conn.execute(delete(t.subcloud_status).where(t.subcloud_status.c.subcloud_id == subcloud_id))
    await conn.execute(delete(t.subcloud_alarms).where(t.subcloud_alarms.c.subcloud_id == subcloud_id))
    await conn.execute(delete(t.fault_alarms).where(t.fault_alarms.c.subcloud_id == subcloud_id))
    await conn.execute(delete(t.subclouds).where(t.subclouds.c.id == subcloud_id))


async def subclouds_with_deploy_work(conn: AsyncConnection, exclude: list[int], limit: int,
                                     shards: frozenset[int]) -> list[int]:
    """Subclouds of these shards the deploy reconciler has something to do for: a step
    under way, or a resting state with steps left in its plan."""
    from dcman.db.cluster_repository import shard_filter
    from dcman.domain.deploy import PHASES, RESTING

    c = t.subclouds.c
    busy = {DeployStatus.NOT_DEPLOYED.value, DeployStatus.CREATING.value}
    for states in PHASES.values():
        busy.update({states.pre.value, states.running.value, states.aborting.value})
    resting_with_plan = and_(c.deploy_status.in_([s.value for s in RESTING]), c.deploy_plan.is_not(None),
                             c.deploy_plan != "[]")
    query = select(c.id).where(or_(c.deploy_status.in_(busy), resting_with_plan), shard_filter(c.id, shards)
                               ).order_by(c.id).limit(limit)
    if exclude:
        query = query.where(c.id.not_in(exclude))
    return list((await conn.execute(query)).scalars())


async def subcloud_ids_in_state(conn: AsyncConnection, deploy_status: str, limit: int = 100) -> list[int]:
    query = select(t.subclouds.c.id).where(t.subclouds.c.deploy_status == deploy_status).limit(limit)
    return list((await conn.execute(query)).scalars())


async def endpoint_statuses(conn: AsyncConnection, subcloud_ids: list[int] | None = None) -> dict[int, list[tuple[str, str]]]:
    """(endpoint_type, sync_status) per subcloud; all subclouds when no ids are given."""
    c = t.subcloud_status.c
    query = select(c.subcloud_id, c.endpoint_type, c.sync_status).order_by(c.subcloud_id, c.id)
    if subcloud_ids is not None:
        query = query.where(c.subcloud_id.in_(subcloud_ids))
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for subcloud_id, endpoint_type, sync_status in await conn.execute(query):
        found[subcloud_id].append((endpoint_type, sync_status))
    return found


async def reset_alarm_summary(conn: AsyncConnection, subcloud_id: int) -> None:
    await conn.execute(
        update(t.subcloud_alarms).where(t.subcloud_alarms.c.subcloud_id == subcloud_id).values(
            critical_alarms=-1, major_alarms=-1, minor_alarms=-1, warnings=-1,
            cloud_status=CloudStatus.DISABLED.value, updated_at=utcnow())
    )


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


# --- alarm summaries -------------------------------------------------------------------


# --- groups ----------------------------------------------------------------------------


async def get_group(conn: AsyncConnection, ref: str | int) -> SubcloudGroup | None:
    clause = t.subcloud_group.c.id == ref if isinstance(ref, int) else _ref_clause(t.subcloud_group, ref)
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


# --- site, accounts and tokens ---------------------------------------------------------


async def get_site(conn: AsyncConnection) -> dict[str, Any] | None:
    row = (await conn.execute(select(t.site).where(t.site.c.id == 1))).mappings().first()
    return dict(row) if row else None


async def insert_site(conn: AsyncConnection, name: str) -> None:
    await conn.execute(insert(t.site).values(id=1, uuid=str(uuid.uuid4()), name=name, created_at=utcnow()))


async def rename_site(conn: AsyncConnection, name: str) -> None:
    await conn.execute(update(t.site).where(t.site.c.id == 1).values(name=name))


async def get_secret_key_check(conn: AsyncConnection) -> str | None:
    return (await conn.execute(select(t.site.c.secret_key_check).where(t.site.c.id == 1))).scalar()


async def set_secret_key_check(conn: AsyncConnection, token: str) -> None:
    """Store the check value, unless another process stored one first."""
    site = t.site.c
    await conn.execute(update(t.site).where(site.id == 1, site.secret_key_check.is_(None))
                       .values(secret_key_check=token))


async def a_stored_secret(conn: AsyncConnection) -> str | None:
    """One secret the site stored encrypted (a subcloud's or a system peer's password), if any."""
    s = t.subclouds.c
    for query in (select(s.sysadmin_password).where(s.sysadmin_password.is_not(None)).limit(1),
                  select(s.bmc_password).where(s.bmc_password.is_not(None)).limit(1),
                  select(t.system_peers.c.manager_password).limit(1)):
        found = (await conn.execute(query)).scalar()
        if found:
            return found
    return None


async def get_account(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(t.accounts).where(t.accounts.c.name == name))).mappings().first()
    return dict(row) if row else None


async def list_accounts(conn: AsyncConnection) -> list[dict[str, Any]]:
    query = select(t.accounts.c.id, t.accounts.c.name, t.accounts.c.role, t.accounts.c.created_at)
    return [dict(row) for row in (await conn.execute(query.order_by(t.accounts.c.id))).mappings()]


async def insert_account(conn: AsyncConnection, name: str, password_hash: str, role: str) -> int:
    result = await conn.execute(
        insert(t.accounts).values(name=name, password_hash=password_hash, role=role, created_at=utcnow())
    )
    return result.inserted_primary_key[0]


async def delete_account(conn: AsyncConnection, account_id: int) -> None:
    await conn.execute(delete(t.tokens).where(t.tokens.c.account_id == account_id))
    await conn.execute(delete(t.accounts).where(t.accounts.c.id == account_id))


async def count_admins(conn: AsyncConnection) -> int:
    query = select(func.count()).select_from(t.accounts).where(t.accounts.c.role == "admin")
    return (await conn.execute(query)).scalar_one()


async def insert_token(conn: AsyncConnection, digest: str, account_id: int, issued_at: datetime,
                       expires_at: datetime, parent_digest: str | None = None) -> None:
    await conn.execute(
        insert(t.tokens).values(digest=digest, account_id=account_id, issued_at=issued_at, expires_at=expires_at,
                                parent_digest=parent_digest)
    )


async def get_token(conn: AsyncConnection, digest: str) -> dict[str, Any] | None:
    a, k = t.accounts.c, t.tokens.c
    query = (
        select(k.digest, k.issued_at, k.expires_at, a.id.label("account_id"), a.name, a.role)
        .select_from(t.tokens.join(t.accounts, k.account_id == a.id))
        .where(k.digest == digest)
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def delete_token(conn: AsyncConnection, digest: str) -> None:
    """Delete a token and every token made from it, at any remove."""
    family, frontier = {digest}, [digest]
    while frontier:
        children = select(t.tokens.c.digest).where(t.tokens.c.parent_digest.in_(frontier))
        frontier = [d for d in (await conn.execute(children)).scalars() if d not in family]
        family.update(frontier)
    await conn.execute(delete(t.tokens).where(t.tokens.c.digest.in_(family)))


async def delete_expired_tokens(conn: AsyncConnection, now: datetime) -> None:
    await conn.execute(delete(t.tokens).where(t.tokens.c.expires_at < now))
