"""The subcloud entity and the rules on it: naming, manage/unmanage, rename, update, delete.

Lifecycle reference §2.4 (management state), §2.6 (update), §2.8 (rename), §2.9 (delete),
§2.10 (names and regions). Every check here takes plain values and raises a DomainError.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from dcman.domain.commands import NewSubcloud
from dcman.domain.errors import Conflict, InvalidInput, StateRefused
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.secrets import redact
from dcman.domain.deploy import Step
from dcman.domain.states import (
    ACTIVE_DEPLOY_STATES,
    REHOMING_STATES,
    SECONDARY_STATES,
    AvailabilityStatus,
    BackupStatus,
    DeployStatus,
    ManagementState,
    SyncStatus,
)
from dcman.domain.text import check_name_characters
from dcman.domain.values import text

NO_ERRORS = "No errors present"
# Update fields that ask for a network reconfiguration (§2.6), which needs an agent phase dcman lacks.
NETWORK_RECONFIGURATION_FIELDS = ("management_subnet", "management_gateway_ip", "management_start_ip",
                                  "management_end_ip")
RESERVED_REGION_NAMES = ("RegionOne", "SystemController")
MAX_TEXT = 255

# The platform releases a subcloud may be added with; the last one is the site's own.
SUPPORTED_RELEASES = ("22.12", "24.03", "24.09")
ACTIVE_RELEASE = SUPPORTED_RELEASES[-1]

# RFC-1123 subdomain: lowercase alphanumeric labels with inner '-', joined by '.'.
_RFC1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Characters a region name may not hold: it reached the file system in older releases, and the
# reference's regions are 32 hex digits or a subcloud name (§2.10), which never hold these.
_REGION_FORBIDDEN = frozenset("/\\")
_PRESTAGING = ("prestaging", "prestaging-packages", "prestaging-images")


@dataclass(frozen=True)
class RehomeData:
    """What a peer site needs to take the subcloud over (geo-redundancy §3): its bootstrap
    values without secrets, and its bootstrap address (`bootstrap-address` in the payload)."""

    saved_payload: dict[str, Any]
    # Other keys of the stored document, kept as they are.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bootstrap_address(self) -> str | None:
        address = self.saved_payload.get("bootstrap-address")
        return address if isinstance(address, str) else None


@dataclass
class Subcloud:
    """One managed edge cloud, as its repository maps it. Secrets are held encrypted and never
    leave the site; install values, bootstrap values and deploy config are the stored documents."""

    id: int
    name: str
    region_name: str
    description: str | None
    location: str | None
    software_version: str
    management_state: ManagementState
    availability_status: AvailabilityStatus
    deploy_status: DeployStatus
    backup_status: BackupStatus | None
    backup_datetime: datetime | None
    error_description: str
    management_subnet: str
    management_start_ip: str
    management_end_ip: str
    management_gateway_ip: str
    systemcontroller_gateway_ip: str
    external_oam_floating_address: str | None
    openstack_installed: bool
    audit_fail_count: int
    first_identity_sync_complete: bool
    group_id: int
    peer_group_id: int | None
    # Saved when the subcloud joins a peer group (or arrives as a secondary copy).
    rehome: RehomeData | None
    rehomed: bool
    prestage_status: str | None
    prestage_versions: str | None
    # The public parts of the install and bootstrap values (their secrets are sealed apart).
    install_values: dict[str, Any] | None
    data_upgrade: str | None
    bootstrap_values: dict[str, Any] | None
    bootstrap_address: str | None
    deploy_config: str | None
    # The deploy steps left for the reconciler, in order (empty: nothing queued).
    plan: tuple[Step, ...]
    deploy_progress: int | None
    sysadmin_password: str | None
    bmc_password: str | None
    created_at: datetime
    updated_at: datetime | None
    # Counts resets of the endpoint statuses; only the audit's memory of them reads it.
    endpoints_version: int = 0
    bootstrap_secrets: str | None = None
    install_secrets: str | None = None
    config_secrets: str | None = None
    # The backup create or restore under way: options as JSON, the password a Fernet token.
    backup_request: str | None = None
    operation_request: str | None = None
    fencing_epoch: int = 0


def new_region_name() -> str:
    """A fresh region name: a UUID4 as 32 lowercase hex characters (§2.10)."""
    return uuid.uuid4().hex


def validate_subcloud_name(name: object) -> str:
    """The name of a new subcloud (rule N1): a non-empty string, not all digits, not reserved."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("The subcloud name (bootstrap value 'name') must be a non-empty string.")
    check_name_characters("subcloud name", name)
    name = name.strip()
    if len(name) > MAX_TEXT:
        raise InvalidInput(f"The subcloud name must be at most {MAX_TEXT} characters long.")
    if name.isdigit():
        raise InvalidInput(f"The subcloud name {name} must not consist of digits only.")
    if name in RESERVED_REGION_NAMES:
        raise InvalidInput(f"The subcloud name {name} is reserved for the system controller.")
    if any(ch.isspace() or ch == "/" for ch in name):
        raise InvalidInput(f"The subcloud name {name!r} must not contain spaces or '/'.")
    return name


def validate_region_name(region: object) -> str:
    """A region name carried over from a peer site (§2.10): not reserved, and (dcman's addition)
    a single word that cannot name a path: no '/', '\\', '.' or '..', space or control character."""
    if not isinstance(region, str) or not region.strip() or len(region) > MAX_TEXT:
        raise InvalidInput("A secondary subcloud needs the region_name it has on its primary site.")
    check_name_characters("region_name", region)
    if region in RESERVED_REGION_NAMES:
        raise InvalidInput(f"The region name {region} is reserved for the system controller.")
    if region in (".", "..") or _REGION_FORBIDDEN.intersection(region) or any(ch.isspace() for ch in region):
        raise InvalidInput(f"The region name {region!r} must be one word without '/', '\\', spaces, "
                           "and not '.' or '..'.")
    return region


def validate_release(release: object) -> str:
    """The requested software release, or the site's own when none is given."""
    if release is None or release == "":
        return ACTIVE_RELEASE
    if release not in SUPPORTED_RELEASES:
        raise InvalidInput(
            f"Release {release} is not supported; supported releases are {', '.join(SUPPORTED_RELEASES)}."
        )
    return str(release)


def validate_text(field: str, value: object) -> str:
    """A free-text field (description, location): a string of at most 255 characters."""
    return text(field, value, MAX_TEXT, blank=True)


def check_adoption(command: NewSubcloud, run_phases: bool) -> bool:
    """Whether an add adopts a subcloud another system controller deployed (`migrate=true`:
    rehome it, no deploy). The reference's rules: no deploy config, and a `name` field matching
    the file's."""
    if not command.migrate:
        return False
    if not run_phases:
        raise InvalidInput("A phased deploy's create does not take migrate; add the subcloud with migrate=true.")
    if command.secondary:
        raise InvalidInput("A subcloud is added either as secondary or with migrate, not both.")
    if command.deploy_config is not None:
        raise InvalidInput("migrate with deploy-config is not allowed")
    if command.name is not None and command.name != command.bootstrap_values.get("name"):
        raise InvalidInput("subcloud name does not match the name defined in bootstrap file")
    return True


def check_operator_manages(subcloud: Subcloud) -> None:
    """An operator does not set the management state of a peer-group member: its group does (§6)."""
    if subcloud.peer_group_id is not None:
        raise StateRefused(
            f"Subcloud {subcloud.name} is in a subcloud peer group; its management state is set by the peer group."
        )


def check_management_change(subcloud: Subcloud, target: ManagementState, forced: bool) -> dict[str, str]:
    """Rules of §2.4: which columns change when the management state is set to `target`."""
    if forced and target is not ManagementState.MANAGED:
        raise InvalidInput("force is only accepted together with management-state managed.")
    if subcloud.management_state == target:
        raise StateRefused(f"Subcloud {subcloud.name} is already {target}.")
    changes: dict[str, str] = {"management_state": target}
    if target is ManagementState.MANAGED:
        rehome_pending = subcloud.deploy_status == DeployStatus.REHOME_PENDING
        if not forced:
            if subcloud.deploy_status != DeployStatus.COMPLETE and not rehome_pending:
                raise StateRefused(
                    f"Subcloud {subcloud.name} can be managed only once its deploy status is complete "
                    f"(it is {subcloud.deploy_status})."
                )
            if subcloud.availability_status != AvailabilityStatus.ONLINE and not rehome_pending:
                raise StateRefused(f"Subcloud {subcloud.name} can be managed only while it is online.")
        if rehome_pending:
            changes["deploy_status"] = DeployStatus.COMPLETE
    return changes


def parse_new_name(new_name: object) -> str:
    """The name a rename gives (§2.8): an RFC 1123 subdomain, not all digits."""
    if not isinstance(new_name, str) or not _RFC1123.fullmatch(new_name) or len(new_name) > MAX_TEXT:
        raise InvalidInput(
            f"The new name {new_name!r} must be lowercase letters, digits and '-', in dot-separated labels "
            "that start and end with a letter or digit (RFC 1123)."
        )
    if new_name.isdigit():  # rule N1: all digits would read as an id
        raise InvalidInput(f"The new name {new_name} must not consist of digits only.")
    return new_name


def check_rename(subcloud: Subcloud, new_name: str, taken: bool) -> str:
    """Rules of §2.8 on the subcloud; `taken` says whether another subcloud has that name or region name."""
    if new_name == subcloud.name:
        raise InvalidInput(f"The new name of subcloud {subcloud.name} must differ from its current name.")
    if subcloud.management_state != ManagementState.UNMANAGED:
        raise StateRefused(f"Subcloud {subcloud.name} must be unmanaged to be renamed.")
    if subcloud.deploy_status != DeployStatus.COMPLETE:
        raise StateRefused(
            f"Subcloud {subcloud.name} can be renamed only when its deploy status is complete "
            f"(it is {subcloud.deploy_status})."
        )
    if subcloud.prestage_status in _PRESTAGING:
        raise StateRefused(f"Subcloud {subcloud.name} cannot be renamed while it is being prestaged.")
    if taken:
        raise Conflict(f"A subcloud named {new_name} (or with that region name) already exists.")
    return new_name


def check_operator_delete(subcloud: Subcloud) -> None:
    """Rules of §2.9 when an operator deletes: outside any peer group, unmanaged, and check_delete's."""
    if subcloud.peer_group_id is not None:
        raise StateRefused(
            f"Subcloud {subcloud.name} is in a subcloud peer group; remove it from the group before deleting it."
        )
    if subcloud.management_state == ManagementState.MANAGED:
        raise StateRefused(f"Subcloud {subcloud.name} must be unmanaged before it can be deleted.")
    check_delete(subcloud)


def check_delete(subcloud: Subcloud) -> None:
    """Whoever deletes (a peer site removing its copy too): not during an active operation (the
    reference's later refusal), not while online."""
    if subcloud.deploy_status in ACTIVE_DEPLOY_STATES:
        raise StateRefused(
            f"Subcloud {subcloud.name} cannot be deleted while its deploy status is {subcloud.deploy_status}."
        )
    if subcloud.availability_status == AvailabilityStatus.ONLINE:
        raise StateRefused(f"Subcloud {subcloud.name} is online; it must be powered down before it can be deleted.")


def rollup_sync_status(statuses: list[tuple[str, str]]) -> str:
    """One sync status for the subcloud list. The reference calls in-sync mixed with unknown
    "out-of-sync"; dcman says out-of-sync only when an endpoint is, and unknown otherwise."""
    values = {status for _, status in statuses}
    if SyncStatus.OUT_OF_SYNC in values:
        return SyncStatus.OUT_OF_SYNC.value
    if values == {SyncStatus.IN_SYNC.value}:
        return SyncStatus.IN_SYNC.value
    return SyncStatus.UNKNOWN.value


def endpoints_kept_on_unmanage(deploy_status: str) -> tuple[str, ...]:
    """Unmanaging resets every endpoint to unknown except dc-cert, which keeps being audited
    for online unmanaged subclouds; a secondary or rehome-pending one loses dc-cert too (§2.4)."""
    if deploy_status in (DeployStatus.SECONDARY, DeployStatus.REHOME_PENDING):
        return ()
    return ("dc-cert",)


# --- peer-group membership (geo-redundancy reference §6 rules 3-5, lifecycle §2.6) -------------


def check_join_peer_group(subcloud: Subcloud, group: SubcloudPeerGroup | None, ref: str,
                          current: SubcloudPeerGroup | None, site_uuid: str) -> None:
    """Rule 4: `peer_group: <id|name>`; `current` is the group the subcloud is in now, if any."""
    if current is not None and current.group_priority > 0:
        raise InvalidInput(f"Subcloud {subcloud.name} cannot move to another peer group: its peer group "
                           f"{current.peer_group_name} has priority {current.group_priority} > 0 on this site.")
    if group is None:
        raise InvalidInput(f"Invalid peer group {ref}: no such subcloud peer group.")
    if group.group_priority > 0:
        raise InvalidInput(f"Subclouds join peer group {group.peer_group_name} only on its primary site "
                           f"(priority 0); its priority here is {group.group_priority}.")
    if not group.led_by(site_uuid):
        raise InvalidInput(f"Peer group {group.peer_group_name} is not led by this site but by "
                           f"{group.system_leader_name}; subclouds join it there.")
    problems = []
    if subcloud.deploy_status != DeployStatus.COMPLETE:
        problems.append(f"its deploy status is {subcloud.deploy_status}, not complete")
    if subcloud.management_state != ManagementState.MANAGED:
        problems.append(f"it is {subcloud.management_state}, not managed")
    if subcloud.availability_status != AvailabilityStatus.ONLINE:
        problems.append(f"it is {subcloud.availability_status}, not online")
    if problems:
        raise InvalidInput(f"Only deployed, managed and online subclouds can join a peer group; subcloud "
                           f"{subcloud.name}: {'; '.join(problems)}.")


def check_leave_peer_group(subcloud: Subcloud, group: SubcloudPeerGroup | None, site_uuid: str,
                           available_peers: int) -> None:
    """Rule 5: `peer_group: "none"`; `available_peers` counts the available system peers
    associated with the group."""
    if group is None:
        return
    if not group.led_by(site_uuid):
        raise InvalidInput(f"Subcloud {subcloud.name} cannot leave peer group {group.peer_group_name}: "
                           f"the group is led by {group.system_leader_name}, not by this site.")
    if group.group_priority > 0 and available_peers:
        raise InvalidInput(f"Subcloud {subcloud.name} cannot leave peer group {group.peer_group_name} "
                           f"(priority {group.group_priority}) while a system peer associated with the group "
                           "is available.")


def check_update_in_peer_group(subcloud: Subcloud, group: SubcloudPeerGroup | None, site_uuid: str) -> None:
    """The general guard (rule 3): an update that does not change the peer group of a member
    only where the group's priority is 0 and this site leads it."""
    if group is None:
        return
    if group.group_priority > 0 or not group.led_by(site_uuid):
        raise InvalidInput(f"Subcloud {subcloud.name} is in peer group {group.peer_group_name}; it can be "
                           "updated only where the group's priority is 0 and this site is the group's leader.")


def stored_bootstrap_values(values: Mapping[str, object]) -> dict[str, object]:
    """Bootstrap values as they may be shown and copied: without a secret at any depth (the
    rehome data a peer site receives holds no admin password; the reference base64-encodes it)."""
    return {str(k): v for k, v in redact(dict(values)).items()}


def rehome_data(values: Mapping[str, object], bootstrap_address: str | None) -> RehomeData:
    """The rehome data a peer site needs to take the subcloud over: its bootstrap values
    without secrets, and its bootstrap address (geo-redundancy §3)."""
    return RehomeData({**stored_bootstrap_values(values), "bootstrap-address": bootstrap_address})


def updated_rehome_data(subcloud: Subcloud, current: RehomeData | None, values: Mapping[str, object] | None,
                        bootstrap_address: str | None) -> RehomeData | None:
    """§2.6 `bootstrap_values` / `bootstrap_address` in an update: new values replace the saved
    payload (keeping its bootstrap address); an address needs rehome data to go into. `current`
    is the subcloud's rehome data as the update leaves it so far. None: nothing to change."""
    if values is None and bootstrap_address is None:
        return None
    payload = None if current is None else dict(current.saved_payload)
    if values is not None:
        saved_address = payload.get("bootstrap-address") if payload is not None else None
        payload = stored_bootstrap_values(values)
        if saved_address is not None:
            payload["bootstrap-address"] = saved_address
    if bootstrap_address is not None:
        if payload is None:
            raise StateRefused(f"Subcloud {subcloud.name} has no rehome data to store a bootstrap_address in; "
                               "send bootstrap_values first, or with it.")
        payload["bootstrap-address"] = bootstrap_address
    return RehomeData(payload, dict(current.extra) if current is not None else {})


def rehome_data_on_join(subcloud: Subcloud) -> RehomeData | None:
    """What the peer site needs to take the subcloud over, saved when it joins a group
    (unless already saved): its stored bootstrap values (no secrets) and bootstrap address."""
    if subcloud.rehome is not None:
        return None
    payload = subcloud.bootstrap_values or {}
    # Named as it is now: a rename since it was added left the old name in the stored values.
    return rehome_data({**payload, "name": subcloud.name}, subcloud.bootstrap_address)


# --- update-only rules (§2.6) ------------------------------------------------------------------


def operator_release_refused() -> InvalidInput:
    """`release` in an operator's update: a subcloud's release is set at add or redeploy."""
    return InvalidInput("The release of a subcloud is set at add or redeploy; only a peer site's sync "
                        "updates that of a secondary copy.")


def check_copy_release(subcloud: Subcloud, release: str) -> str:
    """`release` in a peer site's update: the software version of a secondary copy follows its
    primary site's (the peer's sync sends it); nothing else changes a subcloud's release this way."""
    if subcloud.deploy_status not in SECONDARY_STATES:
        raise operator_release_refused()
    return validate_release(release)


def check_release_mark(subcloud: Subcloud, migrate: bool, management_target: str | None) -> dict[str, str]:
    """`migrate=true` from a peer site: mark the subcloud `rehome-pending`, whatever its state but
    a rehome here (that is how a migrating peer asks this site to let go, §4 step 4). It must
    be or become unmanaged."""
    if not migrate or subcloud.deploy_status == DeployStatus.REHOME_PENDING:
        return {}
    if subcloud.deploy_status in REHOMING_STATES:  # letting go now would leave it managed by nobody
        raise StateRefused(f"Subcloud {subcloud.name} is being rehomed to this site ({subcloud.deploy_status}).")
    state = management_target if management_target is not None else subcloud.management_state
    if state != ManagementState.UNMANAGED:
        raise InvalidInput(f"Subcloud {subcloud.name} must be unmanaged, or unmanaged in the same request, "
                           f"to be marked {DeployStatus.REHOME_PENDING} for migration.")
    return {"deploy_status": DeployStatus.REHOME_PENDING.value}


def check_migrate_flag(subcloud: Subcloud, migrate: bool, management_target: str | None) -> dict[str, str]:
    """`migrate=true` from an operator (`subcloud unmanage --migrate`): mark a deployed subcloud
    `rehome-pending` for a coming migration, as check_release_mark does."""
    changes = check_release_mark(subcloud, migrate, management_target)
    if changes and subcloud.deploy_status != DeployStatus.COMPLETE:
        raise InvalidInput(f"Subcloud {subcloud.name} can be marked {DeployStatus.REHOME_PENDING} only when its "
                           f"deploy status is complete (it is {subcloud.deploy_status}).")
    return changes
