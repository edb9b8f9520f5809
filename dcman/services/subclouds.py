"""Subcloud use cases: add, show, list, update (manage, unmanage, rename, regroup, install and
rehome data, migrate mark), delete."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import alarms as alarms_db
from dcman.db import associations as associations_db
from dcman.db import groups as groups_db
from dcman.db import json_listing as json_listing_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import subclouds as subclouds_db
from dcman.domain.commands import NewSubcloud, PeerGroupMove, SubcloudUpdate
from dcman.domain.deploy import full_plan
from dcman.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from dcman.domain.migration import REHOME_PLAN
from dcman.domain.network import validate_bootstrap_network
from dcman.domain.secrets import redacted_json_text
from dcman.domain.states import AvailabilityStatus, DeployStatus, ManagementState
from dcman.domain.subcloud import (
    NO_ERRORS,
    RehomeData,
    Subcloud,
    check_adoption,
    check_join_peer_group,
    check_leave_peer_group,
    check_management_change,
    check_migrate_flag,
    check_operator_delete,
    check_operator_manages,
    check_rename,
    check_update_in_peer_group,
    new_region_name,
    operator_release_refused,
    rehome_data,
    rehome_data_on_join,
    updated_rehome_data,
    validate_region_name,
    validate_subcloud_name,
)
from dcman.domain.transitions import transition
from dcman.services.context import SiteContext
from dcman.services.documents import bootstrap_columns, config_columns, install_columns, stored_install_values
from dcman.services.forms import password_required
from dcman.services.subcloud_files import remove_subcloud_files


@dataclass(frozen=True)
class SubcloudView:
    """A subcloud with its per-endpoint sync statuses, as the API shows it."""

    subcloud: Subcloud
    endpoint_statuses: list[tuple[str, str]]


async def _require(conn: AsyncConnection, ref: str, for_update: bool = False, by_region: bool = False) -> Subcloud:
    subcloud = await subclouds_db.get_subcloud(conn, ref, for_update=for_update, by_region=by_region)
    if subcloud is None:
        raise NotFound(f"Subcloud {ref} not found.")
    return subcloud


async def _resolve_group(conn: AsyncConnection, ref: str) -> int:
    group = await groups_db.get_group(conn, ref)
    if group is None:
        raise InvalidInput(f"Invalid group {ref}: no such subcloud group.")
    return group.id


async def _view(conn: AsyncConnection, subcloud: Subcloud) -> SubcloudView:
    statuses = await subclouds_db.endpoint_statuses(conn, [subcloud.id])
    return SubcloudView(subcloud, statuses.get(subcloud.id, []))


async def get_subcloud(ctx: SiteContext, ref: str, by_region: bool = False) -> SubcloudView:
    """By id or name, or (`by_region`) by region name too, as a peer site names it."""
    async with ctx.engine.connect() as conn:
        return await _view(conn, await _require(conn, ref, by_region=by_region))


async def list_subclouds_json(ctx: SiteContext, group_ref: str | None = None, *, with_rollup: bool = False,
                              with_endpoints: bool = True) -> str:
    """The unpaged list's answer, `{"subclouds": [...]}` as JSON text, of every subcloud or of one
    group's: built by the database, since the dcmanager client fetches the whole fleet at once."""
    async with ctx.engine.connect() as conn:
        group_id = None
        if group_ref is not None:
            group = await groups_db.get_group(conn, group_ref)
            if group is None:
                raise NotFound(f"Subcloud group {group_ref} not found.")
            group_id = group.id
        text = await json_listing_db.subcloud_list(conn, group_id, with_rollup=with_rollup,
                                                   with_endpoints=with_endpoints)
        # A row from before secrets were sealed apart may hold some: asked of the two columns,
        # not of the whole answer (a scan of 59 MB at 50,000 subclouds).
        suspect = await json_listing_db.rows_might_hold_secrets(conn, group_id)
    if suspect:
        answer = json.loads(text)
        for row in answer["subclouds"]:
            for key in ("data_install", "rehome_data"):
                row[key] = redacted_json_text(row[key])
        text = json.dumps(answer)
    return text


async def add_subcloud(ctx: SiteContext, command: NewSubcloud, run_phases: bool = True) -> SubcloudView:
    """POST /subclouds by an operator; a secondary copy is a peer site's to add
    (services.peer_requests.add_copy)."""
    if command.secondary:
        raise PermissionDenied("A secondary subcloud is added only by a peer site's association sync.")
    return await store_subcloud(ctx, command, run_phases)


async def store_subcloud(ctx: SiteContext, command: NewSubcloud, run_phases: bool = True) -> SubcloudView:
    """Validate everything, then store the subcloud in `not-deployed` with its deploy plan; the
    deploy loop takes it from there (lifecycle reference §2.1). The phased deploy's create
    (`run_phases=False`) stops at create-complete; a secondary copy (how a peer site's
    association sync copies a subcloud here, geo-redundancy §3) waits for a migration."""
    secondary = command.secondary
    values = dict(command.bootstrap_values)
    migrate = check_adoption(command, run_phases)
    install = None if command.install_values is None else dict(command.install_values)
    deploy_config = command.deploy_config
    config_stored = config_columns(ctx, deploy_config) if deploy_config is not None else {}
    name = validate_subcloud_name(values.get("name"))
    bootstrap_address = command.bootstrap_address
    # A secondary copy and a phased deploy's create may come without it: the dcmanager client's
    # `subcloud deploy create` sends none, its install/bootstrap/config phases bring it.
    sysadmin_password = command.sysadmin_password
    if sysadmin_password is None and not (secondary or not run_phases):
        raise password_required("sysadmin_password")
    release = command.release
    description, location = command.description, command.location
    install_stored: dict[str, Any] = {}
    if install is not None:
        if command.bmc_password is not None:
            install["bmc_password"] = command.bmc_password
        install_stored = install_columns(ctx, install, release, validate=not secondary)

    try:
        async with ctx.engine.begin() as conn:
            await subclouds_db.lock_subcloud_changes(conn)
            group_id = await _resolve_group(conn, command.group)
            # First every rule but the overlaps, then the overlaps against the few candidates.
            network = validate_bootstrap_network(values, ctx.system_controller, ())
            candidates = await subclouds_db.overlap_candidates(conn, network.management_start_ip, network.management_end_ip,
                                                               str(values["external_oam_subnet"]).strip())
            validate_bootstrap_network(values, ctx.system_controller, candidates)
            if await subclouds_db.name_or_region_taken(conn, name):
                raise Conflict(f"A subcloud named {name} already exists.")
            if secondary:  # the subcloud keeps the region it has on the primary site
                region = validate_region_name(command.region_name)
                if await subclouds_db.region_taken(conn, region):
                    raise Conflict(f"A subcloud with region name {region} already exists.")
            else:
                region = new_region_name()
                while await subclouds_db.region_taken(conn, region):
                    region = new_region_name()
            subcloud_id = await subclouds_db.insert_subcloud(
                conn,
                {
                    "name": name,
                    "region_name": region,
                    "description": description,
                    "location": location,
                    "software_version": release,
                    "management_state": ManagementState.UNMANAGED.value,
                    "availability_status": AvailabilityStatus.OFFLINE.value,
                    "deploy_status": (DeployStatus.SECONDARY if secondary else DeployStatus.PRE_REHOME if migrate
                                      else DeployStatus.NOT_DEPLOYED).value,
                    "error_description": NO_ERRORS,
                    "management_subnet": network.management_subnet,
                    "management_start_ip": network.management_start_ip,
                    "management_end_ip": network.management_end_ip,
                    "management_gateway_ip": network.management_gateway_ip,
                    "systemcontroller_gateway_ip": network.systemcontroller_gateway_ip,
                    "external_oam_floating_address": str(values.get("external_oam_floating_address", "")).strip(),
                    "openstack_installed": False,
                    "audit_fail_count": 0,
                    "first_identity_sync_complete": False,
                    "rehomed": False,
                    "group_id": group_id,
                    **install_stored,
                    **bootstrap_columns(ctx, values),
                    **config_stored,
                    "bootstrap_address": bootstrap_address,
                    "plan": (REHOME_PLAN if migrate else tuple(full_plan(install is not None, deploy_config is not None)))
                    if run_phases and not secondary else (),
                    "rehome": rehome_data(values, bootstrap_address) if secondary else None,
                    "sysadmin_password": ctx.secrets.encrypt(sysadmin_password) if sysadmin_password else None,
                },
            )
            view = await _view(conn, await _require(conn, str(subcloud_id)))
    except IntegrityError:
        raise Conflict(f"A subcloud named {name} already exists.") from None
    ctx.subclouds_changed()
    return view


async def _peer_group_change(ctx: SiteContext, conn: AsyncConnection, subcloud: Subcloud,
                             move: PeerGroupMove) -> dict[str, object]:
    """`peer_group: <id|name|"none">` from an operator: join, move or leave (geo-redundancy §6
    rules 4 and 5)."""
    current = None
    if subcloud.peer_group_id is not None:
        current = await peer_groups_db.get_peer_group(conn, subcloud.peer_group_id, for_update=True)
    if move.ref is None:
        available = await peer_groups_db.count_available_peers(conn, current.id) if current is not None else 0
        check_leave_peer_group(subcloud, current, ctx.site_uuid, available)
        return {"peer_group_id": None}
    group = await peer_groups_db.get_peer_group(conn, move.ref, for_update=True)
    check_join_peer_group(subcloud, group, move.ref, current, ctx.site_uuid)
    assert group is not None  # check_join_peer_group refuses an unknown group
    changes: dict[str, object] = {"peer_group_id": group.id}
    rehome = rehome_data_on_join(subcloud)
    if rehome is not None:
        changes["rehome"] = rehome
    return changes


async def new_bootstrap_columns(ctx: SiteContext, conn: AsyncConnection, subcloud: Subcloud,
                                values: Mapping[str, object] | None, address: str | None) -> dict[str, Any]:
    """The columns new bootstrap values (and address) give a subcloud: the same name, and the
    whole network validation against the other subclouds and this site's own subnet."""
    changes: dict[str, Any] = {}
    if address is not None:
        changes["bootstrap_address"] = address
    if values is None:
        return changes
    if values.get("name") != subcloud.name:
        raise InvalidInput(f"The bootstrap values name {values.get('name')!r} must be the subcloud's name, "
                           f"{subcloud.name}.")
    network = validate_bootstrap_network(values, ctx.system_controller, ())
    candidates = await subclouds_db.overlap_candidates(conn, network.management_start_ip, network.management_end_ip,
                                                       str(values["external_oam_subnet"]).strip(), except_id=subcloud.id)
    validate_bootstrap_network(values, ctx.system_controller, candidates)
    changes.update(vars(network))
    changes.update(bootstrap_columns(ctx, values))
    changes.update(external_oam_floating_address=str(values.get("external_oam_floating_address", "")).strip())
    return changes


def install_changes(ctx: SiteContext, subcloud: Subcloud, update: SubcloudUpdate,
                    validate: bool = True) -> dict[str, object]:
    """`install_values` and `bmc_password` (§2.6): checked as at add (§2.2) for the subcloud's
    release unless the caller checked them already. A BMC password alone applies to the stored
    install values."""
    values = None if update.install_values is None else dict(update.install_values)
    if values is None:
        if update.bmc_password is None:
            return {}
        if subcloud.install_values is None:
            raise InvalidInput(f"Subcloud {subcloud.name} has no install values for the bmc_password to apply to; "
                               "send install_values with it.")
        values = stored_install_values(ctx, subcloud)
    if update.bmc_password is not None:
        values["bmc_password"] = update.bmc_password
    return install_columns(ctx, values, subcloud.software_version, validate=validate)


async def common_changes(conn: AsyncConnection, subcloud: Subcloud, update: SubcloudUpdate) -> dict[str, object]:
    """What an update changes by the same rules whoever asks: name, description, location, group."""
    changes: dict[str, object] = {}
    if update.name is not None:
        taken = await subclouds_db.name_or_region_taken(conn, update.name, except_id=subcloud.id)
        changes["name"] = check_rename(subcloud, update.name, taken)
    for field in ("description", "location"):
        if getattr(update, field) is not None:
            changes[field] = getattr(update, field)
    if update.group is not None:
        changes["group_id"] = await _resolve_group(conn, update.group)
    return changes


def rehome_changes(subcloud: Subcloud, changes: dict[str, object], update: SubcloudUpdate) -> dict[str, object]:
    """New bootstrap values or address go into the rehome data: after a join, which may have
    just saved the rehome data they go into."""
    current = changes.get("rehome", subcloud.rehome)
    rehome = updated_rehome_data(subcloud, current if isinstance(current, RehomeData) else None,
                                 update.bootstrap_values, update.bootstrap_address)
    return {} if rehome is None else {"rehome": rehome}


UpdateRules = Callable[[AsyncConnection, Subcloud], Awaitable[dict[str, object]]]


async def apply_update(ctx: SiteContext, ref: str, update: SubcloudUpdate, rules: UpdateRules,
                       by_region: bool = False) -> SubcloudView:
    """Find the subcloud (by region name too, as a peer site names it), ask `rules` what the
    update changes (every check passes before anything is written), and write it, with what
    follows: alarms renamed with the subcloud, endpoints and alarm summary reset on unmanage."""
    try:
        async with ctx.engine.begin() as conn:
            await subclouds_db.lock_subcloud_changes(conn)  # a rename checks every other name
            subcloud = await _require(conn, ref, for_update=True, by_region=by_region)
            changes = await rules(conn, subcloud)
            await subclouds_db.apply_transition(conn, subcloud.id, transition(subcloud, **changes))
            if "name" in changes:
                await alarms_db.rename_alarm_entities(conn, subcloud.id, subcloud.name, str(changes["name"]))
            view = await _view(conn, await _require(conn, str(subcloud.id)))
    except IntegrityError:
        raise Conflict(f"A subcloud named {update.name} already exists.") from None
    ctx.subclouds_changed()
    return view


async def update_subcloud(ctx: SiteContext, ref: str, update: SubcloudUpdate) -> SubcloudView:
    """PATCH /subclouds/{ref} by an operator (§2.4, §2.6–2.8): a peer-group member changes only
    where its group has priority 0 and this site leads it, and the peer's copy must then follow."""

    async def rules(conn: AsyncConnection, subcloud: Subcloud) -> dict[str, object]:
        changes = await common_changes(conn, subcloud, update)
        if update.management_state is not None:
            check_operator_manages(subcloud)
            changes.update(check_management_change(subcloud, update.management_state, update.force))
        changes.update(check_migrate_flag(subcloud, update.migrate, _text_or_none(changes.get("management_state"))))
        if update.release is not None:
            raise operator_release_refused()
        changes.update(install_changes(ctx, subcloud, update))
        if update.peer_group is not None:
            changes.update(await _peer_group_change(ctx, conn, subcloud, update.peer_group))
        elif subcloud.peer_group_id is not None:  # the general guard (§6 rule 3)
            group = await peer_groups_db.get_peer_group(conn, subcloud.peer_group_id)
            check_update_in_peer_group(subcloud, group, ctx.site_uuid)
        changes.update(rehome_changes(subcloud, changes, update))
        for group_id in {subcloud.peer_group_id, changes.get("peer_group_id")} - {None}:
            assert isinstance(group_id, int)
            await associations_db.mark_group_out_of_sync(conn, group_id, f"Subcloud {subcloud.name} changed.")
        return changes

    return await apply_update(ctx, ref, update, rules)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


async def delete_subcloud(ctx: SiteContext, ref: str) -> None:
    """DELETE by an operator (§2.9)."""
    await remove_subcloud(ctx, ref, check_operator_delete)


async def remove_subcloud(ctx: SiteContext, ref: str, check: Callable[[Subcloud], None],
                          by_region: bool = False) -> None:
    """Delete the subcloud `check` allows, and its files."""
    async with ctx.engine.begin() as conn:
        subcloud = await _require(conn, ref, for_update=True, by_region=by_region)
        check(subcloud)
        await subclouds_db.delete_subcloud(conn, subcloud.id)
    await asyncio.to_thread(remove_subcloud_files, ctx.settings.data_dir, subcloud.id)
    ctx.subclouds_changed()


async def alarm_summary_json(ctx: SiteContext) -> bytes:
    """`{"alarm_summary": [...]}` as JSON, one row per subcloud, built by the database; the last
    one built again while its version (read first, so an answer is never older) is unchanged."""
    async with ctx.engine.connect() as conn:
        version = await json_listing_db.alarm_summary_version(conn)
        kept = ctx.alarm_summary
        if version is not None and kept is not None and kept[0] == version:
            return kept[1]
        answer = (await json_listing_db.alarm_summary(conn)).encode()
    if version is not None:
        ctx.alarm_summary = (version, answer)
    return answer


async def fault_alarms(ctx: SiteContext, alarm_id: str | None = None, entity: str | None = None,
                       subcloud_ref: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Active alarms by id, entity or subcloud; with a limit only the newest, newest first."""
    async with ctx.engine.connect() as conn:
        subcloud_id = None
        if subcloud_ref is not None:
            subcloud_id = (await _require(conn, subcloud_ref)).id
        return await alarms_db.list_fault_alarms(conn, alarm_id, entity, subcloud_id, limit)
