"""What each write request asks, as typed values: the API parses a body once into one of these
(dcman.api.commands, where the wire spellings live) and the use cases and rules take them.
None means "not given"; enums and bools are already checked, free text already bounded."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum

from dcman.domain.states import (
    AdministrativeState,
    AssociationSyncStatus,
    AssociationType,
    GroupState,
    HeartbeatFailurePolicy,
    ManagementState,
    MigrationStatus,
    UpdateApplyType,
)

# A YAML or JSON document as a client sent it (bootstrap or install values): keys are text,
# values still untrusted, narrowed by the rule that reads them.
Document = dict[str, object]
Column = str | int | bool | None


def given(command: object) -> dict[str, Column]:
    """The fields a command gives (not None), enums as their stored values: the columns they set."""
    found: dict[str, Column] = {}
    for item in fields(command):  # type: ignore[arg-type]
        value = getattr(command, item.name)
        if value is not None:
            found[item.name] = value.value if isinstance(value, Enum) else value
    return found


# --- subcloud groups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NewGroup:
    name: str
    description: str
    update_apply_type: UpdateApplyType
    max_parallel_subclouds: int


@dataclass(frozen=True)
class GroupUpdate:
    name: str | None = None
    description: str | None = None
    update_apply_type: UpdateApplyType | None = None
    max_parallel_subclouds: int | None = None


# --- subcloud peer groups ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewPeerGroup:
    """Only the name is required; the leader defaults to this site (see peer_groups.new_peer_group_columns)."""

    peer_group_name: str
    group_priority: int | None = None
    group_state: GroupState | None = None
    max_subcloud_rehoming: int | None = None
    system_leader_id: str | None = None
    system_leader_name: str | None = None
    protection: str | None = None  # from the primary's sync only (peer_groups.validate_protection)


@dataclass(frozen=True)
class PeerGroupUpdate:
    peer_group_name: str | None = None
    group_priority: int | None = None
    group_state: GroupState | None = None
    max_subcloud_rehoming: int | None = None
    system_leader_id: str | None = None
    system_leader_name: str | None = None
    migration_status: MigrationStatus | None = None
    protection: str | None = None  # from the primary's sync only
    failover_password: str | None = None  # in clear, from this site's operator only; the use case seals it


# --- system peers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSystemPeer:
    """The manager password in clear (decoded from base64): the use case seals it."""

    peer_uuid: str
    peer_name: str
    manager_endpoint: str
    manager_username: str
    manager_password: str
    peer_controller_gateway_address: str
    administrative_state: AdministrativeState
    heartbeat_interval: int
    heartbeat_failure_threshold: int
    heartbeat_failure_policy: HeartbeatFailurePolicy
    heartbeat_maintenance_timeout: int


@dataclass(frozen=True)
class SystemPeerUpdate:
    peer_uuid: str | None = None
    peer_name: str | None = None
    manager_endpoint: str | None = None
    manager_username: str | None = None
    manager_password: str | None = None
    peer_controller_gateway_address: str | None = None
    administrative_state: AdministrativeState | None = None
    heartbeat_interval: int | None = None
    heartbeat_failure_threshold: int | None = None
    heartbeat_failure_policy: HeartbeatFailurePolicy | None = None
    heartbeat_maintenance_timeout: int | None = None


# --- peer group associations -----------------------------------------------------------------


@dataclass(frozen=True)
class NewAssociation:
    peer_group_id: int
    system_peer_id: int
    peer_group_priority: int
    association_type: AssociationType


@dataclass(frozen=True)
class AssociationUpdate:
    """`sync_status` (and its message) come from the peer site's sync only."""

    peer_group_priority: int | None = None
    sync_status: AssociationSyncStatus | None = None
    sync_message: str | None = None


# --- subclouds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerGroupMove:
    """`peer_group` in a subcloud update: join (or move to) the group `ref`, or leave when `ref` is None."""

    ref: str | None

    @property
    def leaves(self) -> bool:
        return self.ref is None


@dataclass(frozen=True)
class NetworkReconfiguration:
    """An update carrying management network fields (§2.6). The addresses stay as given: the
    network rules narrow them, naming each field; `also_given` names the other fields sent."""

    management_subnet: object
    management_gateway_ip: object
    management_start_ip: object
    management_end_ip: object
    bootstrap_address: object
    sysadmin_password: object
    with_management_state: bool = False
    also_given: tuple[str, ...] = ()

    def network_fields(self) -> dict[str, object]:
        return {"management_subnet": self.management_subnet, "management_gateway_ip": self.management_gateway_ip,
                "management_start_ip": self.management_start_ip, "management_end_ip": self.management_end_ip}


@dataclass(frozen=True)
class SubcloudUpdate:
    """PATCH /subclouds/{ref}, other than a network reconfiguration. `force` qualifies a manage;
    `install_values` is a document, or None when only `bmc_password` changes."""

    name: str | None = None
    description: str | None = None
    location: str | None = None
    group: str | None = None
    management_state: ManagementState | None = None
    force: bool = False
    peer_group: PeerGroupMove | None = None
    install_values: Document | None = None
    bmc_password: str | None = None
    bootstrap_values: Document | None = None
    bootstrap_address: str | None = None
    migrate: bool = False
    release: str | None = None


@dataclass(frozen=True)
class NewSubcloud:
    """POST /subclouds (and the phased deploy's create). The passwords decoded from base64;
    `bmc_password` goes into the install values as given; `name` and `region_name` are checked
    only where they matter (an adoption's name, a secondary copy's region)."""

    bootstrap_values: Document
    bootstrap_address: str
    release: str
    group: str
    install_values: Document | None = None
    deploy_config: str | None = None
    sysadmin_password: str | None = None
    bmc_password: object = None
    description: str | None = None
    location: str | None = None
    migrate: bool = False
    secondary: bool = False
    region_name: object = None
    name: object = None


@dataclass(frozen=True)
class PrestageRequest:
    """POST/PATCH /subclouds/{ref}/prestage: the release to prestage (the site's when none is
    given), and the password decoded from base64."""

    release: str
    force: bool
    for_sw_deploy: bool
    sysadmin_password: str


@dataclass(frozen=True)
class BackupTarget:
    """What a backup request names: one subcloud, or a group (an id or a name)."""

    subcloud: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class BackupCreate:
    target: BackupTarget
    sysadmin_password: str
    local_only: bool
    registry_images: bool
    backup_values: Document


@dataclass(frozen=True)
class BackupRestore:
    target: BackupTarget
    sysadmin_password: str
    local_only: bool
    with_install: bool
    registry_images: bool
    release: str | None
    restore_values: Document


@dataclass(frozen=True)
class BackupDelete:
    """The password only with local_only (each subcloud drops its own backup)."""

    target: BackupTarget
    local_only: bool
    sysadmin_password: str | None


@dataclass(frozen=True)
class PhaseRequest:
    """What a phased deploy's install, bootstrap, configure, resume or a redeploy brings: new
    documents, a new sysadmin password (decoded), or a new release or BMC password for the
    stored install values. All optional: a phase falls back on what is stored."""

    install_values: Document | None = None
    bmc_password: object = None
    release: str | None = None
    bootstrap_values: Document | None = None
    bootstrap_address: str | None = None
    deploy_config: str | None = None
    sysadmin_password: str | None = None
