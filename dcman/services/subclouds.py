"""Subcloud use cases: add, show, list, update (manage, unmanage, rename, regroup, install and
rehome data, migrate mark), delete."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass
from typing import Any, Mapping

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import alarms as alarms_db
from dcman.db import associations as associations_db
from dcman.db import groups as groups_db
from dcman.db import json_listing as json_listing_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import subclouds as subclouds_db
from dcman.domain.deploy import full_plan
from dcman.domain.migration import REHOME_PLAN
from dcman.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from dcman.domain.network import validate_bootstrap_network
from dcman.domain.states import SECONDARY_STATES, AvailabilityStatus, DeployStatus, ManagementState
from dcman.domain.subcloud import (
    NO_ERRORS,
    Subcloud,
    check_copy_release,
    check_migrate_flag,
    check_delete,
    check_management_change,
    check_rename,
    check_join_peer_group,
    check_leave_peer_group,
    check_update_in_peer_group,
    rehome_data,
    rehome_data_on_join,
    updated_rehome_data,
    new_region_name,
    parse_bool,
    validate_region_name,
    validate_release,
    validate_subcloud_name,
    validate_text,
)
from dcman.domain.transitions import transition
from dcman.domain.secrets import might_hold_secrets, redacted_json_text
from dcman.services.context import SiteContext
from dcman.services.documents import bootstrap_columns, config_columns, install_columns, stored_install_values
from dcman.services.forms import as_text, decode_password, parse_mapping, parse_yaml_mapping
from dcman.services.subcloud_files import remove_subcloud_files

UPDATABLE_FIELDS = ("description", "location", "group_id", "name", "management-state", "force", "peer_group",
                    "install_values", "bmc_password", "bootstrap_values", "bootstrap_address", "migrate",
                    "release")  # release: of a secondary copy, from its peer site's sync only


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


async def _resolve_group(conn: AsyncConnection, ref: Any) -> int:
    if isinstance(ref, int) and not isinstance(ref, bool):
        ref = str(ref)
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(f"Invalid group {ref!r}.")
    group = await groups_db.get_group(conn, ref)
    if group is None:
        raise InvalidInput(f"Invalid group {ref}: no such subcloud group.")
    return group.id


async def _view(conn: AsyncConnection, subcloud: Subcloud) -> SubcloudView:
    statuses = await subclouds_db.endpoint_statuses(conn, [subcloud.id])
    return SubcloudView(subcloud, statuses.get(subcloud.id, []))


async def get_subcloud(ctx: SiteContext, ref: str, from_peer: bool = False) -> SubcloudView:
    """By id or name; a peer site may also give the region name (the reference's peers do)."""
    async with ctx.engine.connect() as conn:
        return await _view(conn, await _require(conn, ref, by_region=from_peer))


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
    if might_hold_secrets(text):  # a row from before secrets were sealed apart may hold some
        answer = json.loads(text)
        for row in answer["subclouds"]:
            for key in ("data_install", "rehome_data"):
                row[key] = redacted_json_text(row[key])
        text = json.dumps(answer)
    return text


def _bootstrap_address(value: Any, field: str = "bootstrap-address") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"The {field} is required.")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise InvalidInput(f"The {field} {value!r} is not a valid IP address.") from None


def _migrate(form: Mapping[str, Any], values: Mapping[str, Any], run_phases: bool) -> bool:
    """`migrate=true`: adopt a subcloud another system controller deployed (rehome it, no
    deploy). The reference's rules: no deploy config, and a `name` field matching the file's."""
    if form.get("migrate") is None or not parse_bool("migrate", form["migrate"]):
        return False
    if not run_phases:
        raise InvalidInput("A phased deploy's create does not take migrate; add the subcloud with migrate=true.")
    if form.get("secondary") is not None and parse_bool("secondary", form["secondary"]):
        raise InvalidInput("A subcloud is added either as secondary or with migrate, not both.")
    if form.get("deploy_config") is not None:
        raise InvalidInput("migrate with deploy-config is not allowed")
    if form.get("name") is not None and form["name"] != values.get("name"):
        raise InvalidInput("subcloud name does not match the name defined in bootstrap file")
    return True


def _secondary(form: Mapping[str, Any], from_peer: bool) -> bool:
    """A secondary add is how a peer site's association sync copies a subcloud here
    (geo-redundancy reference §3)."""
    if form.get("secondary") is None or not parse_bool("secondary", form["secondary"]):
        return False
    if not from_peer:
        raise PermissionDenied("A secondary subcloud is added only by a peer site's association sync.")
    return True


def _free_text(form: Mapping[str, Any], values: Mapping[str, Any], field: str) -> str | None:
    """description or location on add: the form's field, else the bootstrap values file's (the
    dcmanager client has no option for them; the reference reads the file), else null as there."""
    value = form.get(field)
    if value is None:
        value = values.get(field)
    return None if value is None else validate_text(field, value)


async def add_subcloud(ctx: SiteContext, form: Mapping[str, Any], run_phases: bool = True,
                       from_peer: bool = False) -> SubcloudView:
    """POST /subclouds: validate everything, then store the subcloud in `not-deployed` with
    its deploy plan; the deploy loop takes it from there (lifecycle reference §2.1). The
    phased deploy's create (`run_phases=False`) stops at create-complete."""
    secondary = _secondary(form, from_peer)
    values = parse_yaml_mapping("bootstrap_values", form.get("bootstrap_values"))
    if values is None:
        raise InvalidInput("The bootstrap_values file is required.")
    migrate = _migrate(form, values, run_phases)
    install = parse_yaml_mapping("install_values", form.get("install_values"))
    deploy_config = as_text("deploy_config", form.get("deploy_config"))
    config_stored = config_columns(ctx, deploy_config) if deploy_config is not None else {}
    name = validate_subcloud_name(values.get("name"))
    bootstrap_address = _bootstrap_address(form.get("bootstrap-address"))
    # A secondary copy and a phased deploy's create may come without it: the dcmanager client's
    # `subcloud deploy create` sends none, its install/bootstrap/config phases bring it.
    password_optional = secondary or not run_phases
    sysadmin_password = None if password_optional and not form.get("sysadmin_password") else decode_password(
        "sysadmin_password", form.get("sysadmin_password"))
    release = validate_release(form.get("release"))
    description, location = _free_text(form, values, "description"), _free_text(form, values, "location")
    install_stored: dict[str, Any] = {}
    if install is not None:
        if form.get("bmc_password") is not None:
            install["bmc_password"] = form["bmc_password"]
        install_stored = install_columns(ctx, install, release, validate=not secondary)

    try:
        async with ctx.engine.begin() as conn:
            await subclouds_db.lock_subcloud_changes(conn)
            group_id = await _resolve_group(conn, form.get("group_id") or 1)
            # First every rule but the overlaps, then the overlaps against the few candidates.
            network = validate_bootstrap_network(values, ctx.system_controller, ())
            candidates = await subclouds_db.overlap_candidates(conn, network.management_start_ip, network.management_end_ip,
                                                               str(values["external_oam_subnet"]).strip())
            validate_bootstrap_network(values, ctx.system_controller, candidates)
            if await subclouds_db.name_or_region_taken(conn, name):
                raise Conflict(f"A subcloud named {name} already exists.")
            if secondary:  # the subcloud keeps the region it has on the primary site
                region = validate_region_name(form.get("region_name"))
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


async def _peer_group_change(ctx: SiteContext, conn: AsyncConnection, subcloud: Subcloud, ref: Any,
                             from_peer: bool = False) -> dict[str, Any]:
    """`peer_group: <id|name|"none">`: join, move or leave (geo-redundancy §6 rules 4 and 5).
    A peer site's sync places its secondary copies without these rules."""
    if from_peer:
        if isinstance(ref, str) and ref.strip().lower() == "none":
            return {"peer_group_id": None}
        group = await peer_groups_db.get_peer_group(conn, str(ref).strip()) if str(ref).strip() else None
        if group is None:
            raise InvalidInput(f"Invalid peer group {ref!r}: no such subcloud peer group.")
        return {"peer_group_id": group.id}
    current = None
    if subcloud.peer_group_id is not None:
        current = await peer_groups_db.get_peer_group(conn, subcloud.peer_group_id, for_update=True)
    if isinstance(ref, str) and ref.strip().lower() == "none":
        available = await peer_groups_db.count_available_peers(conn, current.id) if current is not None else 0
        check_leave_peer_group(subcloud, current, ctx.site_uuid, available)
        return {"peer_group_id": None}
    if isinstance(ref, bool) or not isinstance(ref, (str, int)) or not str(ref).strip():
        raise InvalidInput(f"Invalid peer group {ref!r}; give a peer group id or name, or none.")
    group = await peer_groups_db.get_peer_group(conn, str(ref).strip(), for_update=True)
    check_join_peer_group(subcloud, group, ref, current, ctx.site_uuid)
    changes: dict[str, Any] = {"peer_group_id": group.id}
    rehome = rehome_data_on_join(subcloud)
    if rehome is not None:
        changes["rehome"] = rehome
    return changes


async def new_bootstrap_columns(ctx: SiteContext, conn: AsyncConnection, subcloud: Subcloud,
                                values: Mapping[str, Any] | None, address: str | None) -> dict[str, Any]:
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


def _install_update(ctx: SiteContext, subcloud: Subcloud, body: Mapping[str, Any], from_peer: bool) -> dict[str, Any]:
    """`install_values` and `bmc_password` (§2.6): checked as at add (§2.2) for the subcloud's
    release, except a secondary copy's from its peer site, which checked them already. A BMC
    password alone applies to the stored install values."""
    values = parse_mapping("install_values", body.get("install_values"))
    password = body.get("bmc_password")
    if values is None:
        if password is None:
            return {}
        if subcloud.install_values is None:
            raise InvalidInput(f"Subcloud {subcloud.name} has no install values for the bmc_password to apply to; "
                               "send install_values with it.")
        values = stored_install_values(ctx, subcloud)
    if password is not None:
        values["bmc_password"] = password
    validate = not (subcloud.deploy_status in SECONDARY_STATES and from_peer)
    return install_columns(ctx, values, subcloud.software_version, validate=validate)


def _wants_something(body: Mapping[str, Any]) -> bool:
    """Whether the update asks for any change: `force` only qualifies a manage, and
    `migrate=false` asks nothing."""
    given = [f for f in UPDATABLE_FIELDS if f != "force" and body.get(f) is not None]
    if given == ["migrate"]:
        return parse_bool("migrate", body["migrate"])
    return bool(given)


async def update_subcloud(ctx: SiteContext, ref: str, body: Mapping[str, Any], from_peer: bool = False) -> SubcloudView:
    """PATCH /subclouds/{ref}: every check passes before anything is written (§2.4, §2.6–2.8).
    A PATCH with management network fields is a network reconfiguration instead
    (services/subcloud_ops.reconfigure_network)."""
    unsupported = sorted(set(body) - set(UPDATABLE_FIELDS))
    if unsupported:
        raise InvalidInput(
            f"Cannot update {', '.join(unsupported)}; this site updates {', '.join(UPDATABLE_FIELDS)}."
        )
    if not _wants_something(body):
        raise InvalidInput("Nothing to update; give at least one of description, location, group_id, name, "
                           "management-state, peer_group, install_values, bmc_password, bootstrap_values, "
                           "bootstrap_address, migrate.")
    # What needs no database: parsed and checked before the transaction.
    bootstrap_values = parse_mapping("bootstrap_values", body.get("bootstrap_values"))
    bootstrap_address = None if body.get("bootstrap_address") is None else _bootstrap_address(
        body["bootstrap_address"], "bootstrap_address")
    try:
        async with ctx.engine.begin() as conn:
            await subclouds_db.lock_subcloud_changes(conn)  # a rename checks every other name
            subcloud = await _require(conn, ref, for_update=True, by_region=from_peer)
            changes: dict[str, Any] = {}
            if body.get("name") is not None:
                taken = await subclouds_db.name_or_region_taken(conn, str(body["name"]), except_id=subcloud.id)
                changes["name"] = check_rename(subcloud, body["name"], taken)
            for field in ("description", "location"):
                if body.get(field) is not None:
                    changes[field] = validate_text(field, body[field])
            if body.get("group_id") is not None:
                changes["group_id"] = await _resolve_group(conn, body["group_id"])
            if body.get("management-state") is not None:
                changes.update(check_management_change(subcloud, body["management-state"], body.get("force"),
                                                       from_peer=from_peer))
            elif body.get("force") is not None:
                raise InvalidInput("force is only accepted together with management-state managed.")
            if body.get("migrate") is not None:
                changes.update(check_migrate_flag(subcloud, body["migrate"], changes.get("management_state"),
                                                  from_peer))
            if body.get("release") is not None:
                changes["software_version"] = check_copy_release(subcloud, body["release"], from_peer)
            changes.update(_install_update(ctx, subcloud, body, from_peer))
            if body.get("peer_group") is not None:
                changes.update(await _peer_group_change(ctx, conn, subcloud, body["peer_group"], from_peer))
            elif subcloud.peer_group_id is not None and not from_peer:  # the general guard (§6 rule 3)
                group = await peer_groups_db.get_peer_group(conn, subcloud.peer_group_id)
                check_update_in_peer_group(subcloud, group, ctx.site_uuid)
            # After a join, which may have just saved the rehome data the new values go into.
            rehome = updated_rehome_data(subcloud, changes.get("rehome", subcloud.rehome),  # type: ignore[arg-type]
                                         bootstrap_values, bootstrap_address)
            if rehome is not None:
                changes["rehome"] = rehome
            if from_peer and subcloud.deploy_status in SECONDARY_STATES:
                # A secondary copy is rehomed from these columns: they follow the primary's values.
                changes.update(await new_bootstrap_columns(ctx, conn, subcloud, bootstrap_values, bootstrap_address))
            await subclouds_db.apply_transition(conn, subcloud.id, transition(subcloud, **changes))
            if not from_peer:  # the leader changed a protected subcloud: the peer's copy must follow
                for group_id in {subcloud.peer_group_id, changes.get("peer_group_id")} - {None}:
                    await associations_db.mark_group_out_of_sync(conn, group_id, f"Subcloud {subcloud.name} changed.")
            if "name" in changes:
                await alarms_db.rename_alarm_entities(conn, subcloud.id, subcloud.name, changes["name"])
            view = await _view(conn, await _require(conn, str(subcloud.id)))
    except IntegrityError:
        raise Conflict(f"A subcloud named {body.get('name')} already exists.") from None
    ctx.subclouds_changed()
    return view


async def delete_subcloud(ctx: SiteContext, ref: str, from_peer: bool = False) -> None:
    async with ctx.engine.begin() as conn:
        subcloud = await _require(conn, ref, for_update=True, by_region=from_peer)
        check_delete(subcloud, from_peer)
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
