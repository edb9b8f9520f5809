"""Rules of subcloud peer groups (geo-redundancy reference §1): the entity, the validation of
create and update requests, delete and the migration guard, and the status counts."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from dcman.domain.commands import Column, NewPeerGroup, PeerGroupUpdate
from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.states import DeployStatus, GroupState, ManagementState, MigrationStatus
from dcman.domain.text import check_name_characters
from dcman.domain.values import choice, integer, text

MAX_PRIORITY = 65536
MAX_REHOMING = 250
DEFAULT_MAX_REHOMING = 10
MAX_NAME = 255
# "none" means "no peer group" in a subcloud update, so no group may be called that.
RESERVED_NAMES = ("none",)


@dataclass
class SubcloudPeerGroup:
    id: int
    peer_group_name: str
    group_priority: int
    group_state: str
    max_subcloud_rehoming: int
    system_leader_id: str
    system_leader_name: str
    migration_status: str | None
    needs_audit: bool
    created_at: datetime | None
    updated_at: datetime | None
    migration_message: str | None = None  # what a running migration waits for
    failover_password: str | None = None  # Fernet token: a standby's automatic failover (dcman.domain.failover)
    protection: str | None = None  # JSON [{"peer_uuid", "priority"}], as the primary's sync sent it

    def led_by(self, site_uuid: str) -> bool:
        return self.system_leader_id == site_uuid

    @property
    def priorities(self) -> dict[str, int]:
        """The priority of each site protecting the group (site uuid -> priority; 0 the primary),
        as the primary's sync last sent it; empty on a copy no sync reached yet."""
        return decode_protection(self.protection)

    @property
    def migrating(self) -> bool:
        return self.migration_status == MigrationStatus.MIGRATING


MAX_PROTECTING_SITES = 16


def decode_protection(text: str | None) -> dict[str, int]:
    """The stored protection list as {site uuid: priority}; anything malformed is skipped."""
    try:
        entries = json.loads(text) if text else []
    except ValueError:
        return {}
    priorities: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("peer_uuid"), str) \
                and type(entry.get("priority")) is int:
            priorities[entry["peer_uuid"]] = entry["priority"]
    return priorities


def validate_protection(value: object) -> str:
    """The protection list a primary's sync sends (list of {"peer_uuid": uuid, "priority": 0..65536},
    at most 16), stored as JSON text."""
    message = ("protection must be a list of at most 16 {\"peer_uuid\": UUID, \"priority\": 0-65536} "
               "objects.")
    if not isinstance(value, list) or len(value) > MAX_PROTECTING_SITES:
        raise InvalidInput(message)
    entries = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"peer_uuid", "priority"}:
            raise InvalidInput(message)
        priority = entry["priority"]
        if type(priority) is not int or not 0 <= priority <= MAX_PRIORITY:
            raise InvalidInput(message)
        try:
            site = str(uuid.UUID(str(entry["peer_uuid"])))
        except ValueError:
            raise InvalidInput(message) from None
        entries.append({"peer_uuid": site, "priority": priority})
    return json.dumps(entries)


def validate_peer_group_name(name: object) -> str:
    name = check_name_characters("peer-group-name", text("peer-group-name", name, MAX_NAME))
    if name.isdigit():
        raise InvalidInput(f"The peer-group-name {name} must not consist of digits only.")
    if name.lower() in RESERVED_NAMES:
        raise InvalidInput(f"The peer-group-name {name} is reserved (it means no peer group).")
    return name


def validate_group_priority(value: object) -> int:
    return integer("group-priority", value, 0, MAX_PRIORITY)


def validate_max_subcloud_rehoming(value: object) -> int:
    return integer("max-subcloud-rehoming", value, 1, MAX_REHOMING)


def validate_group_state(value: object) -> GroupState:
    return choice(GroupState, value, f"Invalid group-state {value!r}; it must be enabled or disabled.")


def validate_system_leader_id(value: object) -> str:
    try:
        if isinstance(value, str) and len(value) <= 64:
            return str(uuid.UUID(value))
    except ValueError:
        pass
    raise InvalidInput(f"Invalid system-leader-id {value!r}; it must be a UUID.")


def validate_system_leader_name(value: object) -> str:
    """A site's name, as a peer site names itself."""
    return check_name_characters("system-leader-name", text("system-leader-name", value, MAX_NAME))


def validate_migration_status(value: object) -> MigrationStatus:
    return choice(MigrationStatus, value.lower() if isinstance(value, str) else value,
                  f"Invalid migration_status {value!r}; it must be none, migrating or complete.")


def new_peer_group_columns(command: NewPeerGroup, site_uuid: str, site_name: str) -> dict[str, Column]:
    """A new group's columns: what the request gives, else priority 0, enabled, at most
    DEFAULT_MAX_REHOMING rehoming at once, led by this site."""
    return {"peer_group_name": command.peer_group_name,
            "group_priority": 0 if command.group_priority is None else command.group_priority,
            "group_state": (command.group_state or GroupState.ENABLED).value,
            "max_subcloud_rehoming": command.max_subcloud_rehoming or DEFAULT_MAX_REHOMING,
            "system_leader_id": command.system_leader_id or site_uuid,
            "system_leader_name": command.system_leader_name or site_name,
            "migration_status": None, "protection": command.protection}


def check_peer_group_update(group: SubcloudPeerGroup, update: PeerGroupUpdate) -> None:
    """Refused while the group migrates, except a change of the migration status itself (how a
    migration ends)."""
    if group.migrating and update != PeerGroupUpdate(migration_status=update.migration_status):
        raise StateRefused(f"Subcloud peer group {group.peer_group_name} is migrating; it cannot be updated now.")


def check_peer_group_delete(group: SubcloudPeerGroup, subcloud_count: int, association_count: int) -> None:
    if subcloud_count:
        raise InvalidInput(f"Subcloud peer group {group.peer_group_name} has {subcloud_count} subclouds; "
                           "remove them from the group before deleting it.")
    if association_count:
        raise InvalidInput(f"Subcloud peer group {group.peer_group_name} has {association_count} associations; "
                           "delete them before deleting the group.")


def status_counts(group: SubcloudPeerGroup, rows: list[tuple[str, str, int]]) -> dict[str, str | int | None]:
    """GET …/{group}/status from (deploy_status, management_state, count) rows of its subclouds."""
    counts = {"total_subclouds": 0, "complete": 0, "waiting_for_migrate": 0, "rehoming": 0,
              "rehome_failed": 0, "managed": 0, "unmanaged": 0}
    buckets = {DeployStatus.COMPLETE: "complete", DeployStatus.REHOME_PENDING: "waiting_for_migrate",
               DeployStatus.PRE_REHOME: "rehoming", DeployStatus.REHOMING: "rehoming",
               DeployStatus.REHOME_FAILED: "rehome_failed", DeployStatus.REHOME_PREP_FAILED: "rehome_failed"}
    for deploy_status, management_state, count in rows:
        counts["total_subclouds"] += count
        if deploy_status in buckets:
            counts[buckets[DeployStatus(deploy_status)]] += count
        counts["managed" if management_state == ManagementState.MANAGED else "unmanaged"] += count
    # dcman's addition: what a running migration waits for, if anything (the client shows the
    # reference's keys only, so it is safe to add).
    return {"peer_group_id": group.id, "peer_group_name": group.peer_group_name, **counts,
            "migration_message": group.migration_message}
