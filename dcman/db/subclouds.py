"""The subcloud rows, their endpoint statuses and alarm summary: reads, insert, delete, and
the one writer of subcloud transitions. Every function runs in the caller's transaction."""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.batches import chunks
from dcman.db.clock import utcnow
from dcman.db.cluster import shard_filter
from dcman.db.refs import ref_clause
from dcman.domain.alarms import AlarmId
from dcman.domain.deploy import PHASES, RESTING, Step
from dcman.domain.network import OtherSubcloudNetwork
from dcman.domain.states import (
    AvailabilityStatus,
    BackupStatus,
    CloudStatus,
    DeployStatus,
    EndpointType,
    ManagementState,
    SyncStatus,
)
from dcman.domain.subcloud import RehomeData, Subcloud
from dcman.domain.transitions import Transition


# What the API shows of a subcloud, in the reference's key order: (answer key, column).
SHOWN_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "id"), ("name", "name"), ("description", "description"), ("location", "location"),
    ("software-version", "software_version"), ("management-state", "management_state"),
    ("availability-status", "availability_status"), ("deploy-status", "deploy_status"),
    ("backup-status", "backup_status"), ("backup-datetime", "backup_datetime"),
    ("error-description", "error_description"), ("region-name", "region_name"),
    ("management-subnet", "management_subnet"), ("management-start-ip", "management_start_ip"),
    ("management-end-ip", "management_end_ip"), ("management-gateway-ip", "management_gateway_ip"),
    ("openstack-installed", "openstack_installed"), ("prestage-status", "prestage_status"),
    ("prestage-versions", "prestage_versions"), ("systemcontroller-gateway-ip", "systemcontroller_gateway_ip"),
    # JSON text, as the reference stores and sends them.
    ("data_install", "data_install"), ("data_upgrade", "data_upgrade"),
    ("created-at", "created_at"), ("updated-at", "updated_at"), ("group_id", "group_id"),
    ("peer_group_id", "peer_group_id"), ("rehome_data", "rehome_data"),
    # dcman's addition: the running phase's progress (0-100), as its agent reports it.
    ("deploy-progress", "deploy_progress"),
)

# Columns that are the repository's own: the sortable keys of the management range and subnet.
_INDEX_KEYS = ("range_lo", "range_hi", "subnet_lo", "subnet_hi")
_NETWORK = ("management_subnet", "management_start_ip", "management_end_ip")
# JSON columns the entity holds decoded, under other names.
_DOCUMENTS = ("deploy_plan", "rehome_data", "data_install")


def entity_of(row: Any) -> Subcloud:
    """A subcloud row as the entity: states as enums, the plan and rehome data decoded."""
    values = {k: v for k, v in row.items() if k not in _INDEX_KEYS}
    plan = values.pop("deploy_plan")
    rehome = values.pop("rehome_data")
    install = values.pop("data_install")
    backup = values["backup_status"]
    values.update(
        management_state=ManagementState(values["management_state"]),
        availability_status=AvailabilityStatus(values["availability_status"]),
        deploy_status=DeployStatus(values["deploy_status"]),
        backup_status=BackupStatus(backup) if backup else None,
        plan=tuple(Step(step) for step in json.loads(plan)) if plan else (),
        rehome=decode_rehome(rehome),
        install_values=_decoded(install), bootstrap_values=_decoded(values["bootstrap_values"]))
    return Subcloud(**values)


def _decoded(text: str | None) -> dict[str, Any] | None:
    """A JSON document column holding a mapping, or None."""
    try:
        document = json.loads(text) if text else None
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _encoded(document: Mapping[str, Any] | None) -> str | None:
    return None if document is None else json.dumps(document, default=str)


def decode_rehome(text: str | None) -> RehomeData | None:
    """The rehome_data column decoded; None when there is none, or it holds no payload."""
    try:
        document = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("saved_payload"), dict):
        return None
    return RehomeData(dict(document["saved_payload"]), {k: v for k, v in document.items() if k != "saved_payload"})


def encode_rehome(rehome: RehomeData | None) -> str | None:
    """The rehome_data column, which the API also sends as this text."""
    return None if rehome is None else json.dumps({"saved_payload": rehome.saved_payload, **rehome.extra}, default=str)


def encode_plan(plan: tuple[Step, ...] | list[Step]) -> str | None:
    """The deploy_plan column of a plan (None when no step is left)."""
    steps = [Step(step).value for step in plan]
    return json.dumps(steps) if steps else None


def _columns(changes: Mapping[str, object]) -> dict[str, Any]:
    """Entity attributes as the columns that store them (with the index keys of a new network)."""
    columns: dict[str, Any] = {}
    for attribute, value in changes.items():
        if attribute == "plan":
            columns["deploy_plan"] = encode_plan(value)  # type: ignore[arg-type]
        elif attribute == "rehome":
            columns["rehome_data"] = encode_rehome(value)  # type: ignore[arg-type]
        elif attribute == "install_values":
            columns["data_install"] = _encoded(value)  # type: ignore[arg-type]
        elif attribute == "bootstrap_values":
            columns["bootstrap_values"] = _encoded(value)  # type: ignore[arg-type]
        elif attribute in t.subclouds.c and attribute not in _INDEX_KEYS + _DOCUMENTS:
            columns[attribute] = value.value if isinstance(value, StrEnum) else value
        else:
            raise ValueError(f"A subcloud has no attribute {attribute}.")
    if any(column in columns for column in _NETWORK):
        columns.update(network_keys(*(columns[column] for column in _NETWORK)))
    return columns


def shown_fields(subcloud: Subcloud) -> dict[str, Any]:
    """The SHOWN_FIELDS of a subcloud by answer key, as stored: what the listing built by the
    database reads, so that a subcloud shown from its entity reads the same."""
    columns = {column: getattr(subcloud, column, None) for _, column in SHOWN_FIELDS}
    columns.update(rehome_data=encode_rehome(subcloud.rehome), data_install=_encoded(subcloud.install_values))
    return {key: columns[column].value if isinstance(columns[column], StrEnum) else columns[column]
            for key, column in SHOWN_FIELDS}


async def lock_subcloud_changes(conn: AsyncConnection) -> None:
    """Serialise the checks that span all subclouds (name and address-range uniqueness) with
    the insert that relies on them. SQLite's BEGIN IMMEDIATE already does; PostgreSQL's READ
    COMMITTED does not, so take the site row's lock."""
    await conn.execute(select(t.site.c.id).where(t.site.c.id == 1).with_for_update())


async def get_subcloud(conn: AsyncConnection, ref: str | int, for_update: bool = False,
                       by_region: bool = False) -> Subcloud | None:
    """By id, or by name; `by_region` also by region name, as peer sites address subclouds
    (names and region names share one namespace, so a ref matches one subcloud at most)."""
    clause = t.subclouds.c.id == ref if isinstance(ref, int) else ref_clause(t.subclouds, ref)
    if by_region and isinstance(ref, str) and "\x00" not in ref and not (ref.isascii() and ref.isdigit()):
        clause = or_(clause, t.subclouds.c.region_name == ref)
    query = select(t.subclouds).where(clause)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return entity_of(row) if row else None


async def list_subclouds(conn: AsyncConnection, group_id: int | None = None) -> list[Subcloud]:
    query = select(t.subclouds).order_by(t.subclouds.c.id)
    if group_id is not None:
        query = query.where(t.subclouds.c.group_id == group_id)
    return [entity_of(row) for row in (await conn.execute(query)).mappings()]


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


async def insert_subcloud(conn: AsyncConnection, values: Mapping[str, object]) -> int:
    """Insert a subcloud (entity attributes) with its endpoint statuses (all unknown) and its
    alarm summary row."""
    now = utcnow()
    result = await conn.execute(insert(t.subclouds).values(created_at=now, **_columns(values)))
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


async def apply_transition(conn: AsyncConnection, subcloud_id: int, change: Transition,
                           only_if: Mapping[str, object] | None = None) -> bool:
    """The one writer of a subcloud's row: its changes and their consequences. With `only_if`
    (entity attributes), only when the row still holds those values: a compare-and-set, so
    concurrent loops and processes cannot both take one step. True when it was written."""
    query = update(t.subclouds).where(t.subclouds.c.id == subcloud_id)
    for column, value in _columns(only_if or {}).items():
        query = query.where(t.subclouds.c[column] == value)
    result = await conn.execute(query.values(updated_at=utcnow(), **_columns(change.changes)))
    if result.rowcount != 1:
        return False
    if change.reset_endpoints is not None:
        await reset_endpoints(conn, [subcloud_id], keep=change.reset_endpoints)
    if change.reset_alarm_summary:
        await reset_alarm_summary(conn, subcloud_id)
    for alarm_id in change.clear_alarms:
        await conn.execute(delete(t.fault_alarms).where(t.fault_alarms.c.subcloud_id == subcloud_id,
                                                        t.fault_alarms.c.alarm_id == alarm_id.value))
    return True


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


# --- the audit's batched writes: one statement for many subclouds, by the rules of
# dcman.domain.transitions (the audit decides them with endpoints_kept) ------------------------


async def set_availability(conn: AsyncConnection, rows: list[dict[str, Any]], now: datetime) -> None:
    """rows: {id, availability, fail_count}."""
    if rows:
        await conn.execute(
            update(t.subclouds)
            .where(t.subclouds.c.id == bindparam("b_id"))
            .values(availability_status=bindparam("b_availability"), audit_fail_count=bindparam("b_count"),
                    updated_at=now),
            [{"b_id": r["id"], "b_availability": r["availability"], "b_count": r["fail_count"]} for r in rows],
        )


async def set_error_descriptions(conn: AsyncConnection, changes: dict[int, tuple[str, str]], now: datetime) -> None:
    """changes: id -> (the text the audit saw, the new one); compare-and-set, so that a deploy
    error written meanwhile is kept."""
    if changes:
        s = t.subclouds.c
        await conn.execute(
            update(t.subclouds).where(s.id == bindparam("b_id"), s.error_description == bindparam("b_seen"))
            .values(error_description=bindparam("b_text"), updated_at=now),
            [{"b_id": i, "b_seen": seen, "b_text": text} for i, (seen, text) in changes.items()],
        )


async def set_fail_counts(conn: AsyncConnection, counts: dict[int, int]) -> None:
    if counts:
        await conn.execute(
            update(t.subclouds).where(t.subclouds.c.id == bindparam("b_id"))
            .values(audit_fail_count=bindparam("b_count")),
            [{"b_id": i, "b_count": c} for i, c in counts.items()],
        )


async def reset_endpoints(conn: AsyncConnection, ids: list[int], keep: tuple[str, ...] = ()) -> None:
    """Every endpoint of these subclouds back to unknown (except `keep`), with their 280.002 alarms;
    bumps their endpoints_version, which tells the audit that the statuses it remembers are stale."""
    c, s = t.subcloud_status.c, t.subclouds.c
    for chunk in chunks(ids):
        await conn.execute(update(t.subclouds).where(s.id.in_(chunk))
                           .values(endpoints_version=s.endpoints_version + 1))
        query = update(t.subcloud_status).where(c.subcloud_id.in_(chunk))
        if keep:
            query = query.where(c.endpoint_type.not_in(keep))
        await conn.execute(query.values(sync_status=SyncStatus.UNKNOWN.value))
        alarm = t.fault_alarms.c
        clear = delete(t.fault_alarms).where(
            and_(alarm.subcloud_id.in_(chunk), alarm.alarm_id == AlarmId.SUBCLOUD_RESOURCE_OUT_OF_SYNC.value)
        )
        for endpoint in keep:
            clear = clear.where(~alarm.entity_instance_id.endswith(f".resource={endpoint}"))
        await conn.execute(clear)
