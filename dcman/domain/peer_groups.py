"""Rules of subcloud peer groups (geo-redundancy reference §1): the entity, the validation of
create and update requests, delete and the migration guard, and the status counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.states import DeployStatus, GroupState, ManagementState, MigrationStatus
from dcman.domain.text import check_name_characters

MAX_PRIORITY = 65536
MAX_REHOMING = 250
DEFAULT_MAX_REHOMING = 10
MAX_NAME = 255
# "none" means "no peer group" in a subcloud update, so no group may be called that.
RESERVED_NAMES = ("none",)

# Request fields: hyphens, as the dcmanager client sends them (migration_status as the peer sends it).
NAME, PRIORITY, STATE, MAX_REHOME = "peer-group-name", "group-priority", "group-state", "max-subcloud-rehoming"
LEADER_ID, LEADER_NAME, MIGRATION = "system-leader-id", "system-leader-name", "migration_status"
CREATE_FIELDS = (NAME, PRIORITY, STATE, MAX_REHOME, LEADER_ID, LEADER_NAME)
UPDATE_FIELDS = CREATE_FIELDS + (MIGRATION,)
_COLUMN = {NAME: "peer_group_name", PRIORITY: "group_priority", STATE: "group_state",
           MAX_REHOME: "max_subcloud_rehoming", LEADER_ID: "system_leader_id",
           LEADER_NAME: "system_leader_name", MIGRATION: "migration_status"}
# Underscore spellings (the reference's samples, the answers' keys) are accepted too.
_ALIASES = {**{column: field for field, column in _COLUMN.items()}, "migration-status": MIGRATION}


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

    def led_by(self, site_uuid: str) -> bool:
        return self.system_leader_id == site_uuid

    @property
    def migrating(self) -> bool:
        return self.migration_status == MigrationStatus.MIGRATING


def validate_peer_group_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("The peer-group-name must be a non-empty string.")
    check_name_characters("peer-group-name", name)
    if name.isdigit():
        raise InvalidInput(f"The peer-group-name {name} must not consist of digits only.")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"The peer-group-name must be at most {MAX_NAME} characters long.")
    if name.lower() in RESERVED_NAMES:
        raise InvalidInput(f"The peer-group-name {name} is reserved (it means no peer group).")
    return name


def _integer(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 12:
        value = int(value)
    if isinstance(value, float) and value.is_integer():  # JSON's 60.0 is the integer 60
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"Invalid {field} {value!r}; it must be an integer from {low} to {high}.")
    return value


def validate_group_priority(value: Any) -> int:
    return _integer(PRIORITY, value, 0, MAX_PRIORITY)


def validate_max_subcloud_rehoming(value: Any) -> int:
    return _integer(MAX_REHOME, value, 1, MAX_REHOMING)


def validate_group_state(value: Any) -> str:
    try:
        return GroupState(value).value
    except ValueError:
        raise InvalidInput(f"Invalid {STATE} {value!r}; it must be enabled or disabled.") from None


def validate_system_leader_id(value: Any) -> str:
    try:
        if isinstance(value, str) and len(value) <= 64:
            return str(uuid.UUID(value))
    except ValueError:
        pass
    raise InvalidInput(f"Invalid {LEADER_ID} {value!r}; it must be a UUID.")


def validate_system_leader_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise InvalidInput(f"Invalid {LEADER_NAME}; it must be a non-empty string of at most {MAX_NAME} characters.")
    return check_name_characters(LEADER_NAME, value)  # a site's name, as a peer site names itself


def validate_migration_status(value: Any) -> str:
    try:
        return MigrationStatus(value.lower() if isinstance(value, str) else value).value
    except ValueError:
        raise InvalidInput(f"Invalid {MIGRATION} {value!r}; it must be none, migrating or complete.") from None


_VALIDATORS = {NAME: validate_peer_group_name, PRIORITY: validate_group_priority, STATE: validate_group_state,
               MAX_REHOME: validate_max_subcloud_rehoming, LEADER_ID: validate_system_leader_id,
               LEADER_NAME: validate_system_leader_name, MIGRATION: validate_migration_status}


def _canonical(body: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    unknown = []
    for key, value in body.items():
        field = key if key in _COLUMN else _ALIASES.get(key)
        if field not in allowed:
            unknown.append(key)
        elif field in found:
            raise InvalidInput(f"The field {field} is given twice.")
        else:
            found[field] = value
    if unknown:
        raise InvalidInput(f"Unknown subcloud peer group field(s): {', '.join(sorted(map(str, unknown)))}.")
    return found


def validate_new_peer_group(body: dict[str, Any], site_uuid: str, site_name: str) -> dict[str, Any]:
    """A create request: the name is required, the rest defaults (leader: this site). Returns columns."""
    fields = _canonical(body, CREATE_FIELDS)
    if fields.get(NAME) is None:
        raise InvalidInput(f"The {NAME} is required.")
    defaults = {PRIORITY: 0, STATE: GroupState.ENABLED.value, MAX_REHOME: DEFAULT_MAX_REHOMING,
                LEADER_ID: site_uuid, LEADER_NAME: site_name}
    values = {_COLUMN[f]: _VALIDATORS[f](fields[f]) if fields.get(f) is not None else defaults[f]
              for f in CREATE_FIELDS if f != NAME}
    values["peer_group_name"] = validate_peer_group_name(fields[NAME])
    values["migration_status"] = None
    return values


def validate_peer_group_update(group: SubcloudPeerGroup, body: dict[str, Any]) -> dict[str, Any]:
    """An update request: at least one field, each valid; refused while the group migrates,
    except a change of the migration status itself (how a migration ends). Returns columns."""
    fields = {f: v for f, v in _canonical(body, UPDATE_FIELDS).items() if v is not None}
    if not fields:
        raise InvalidInput(f"Nothing to update; give at least one of {', '.join(UPDATE_FIELDS)}.")
    if group.migrating and set(fields) != {MIGRATION}:
        raise StateRefused(f"Subcloud peer group {group.peer_group_name} is migrating; it cannot be updated now.")
    return {_COLUMN[f]: _VALIDATORS[f](v) for f, v in fields.items()}


def check_peer_group_delete(group: SubcloudPeerGroup, subcloud_count: int, association_count: int) -> None:
    if subcloud_count:
        raise InvalidInput(f"Subcloud peer group {group.peer_group_name} has {subcloud_count} subclouds; "
                           "remove them from the group before deleting it.")
    if association_count:
        raise InvalidInput(f"Subcloud peer group {group.peer_group_name} has {association_count} associations; "
                           "delete them before deleting the group.")


def status_counts(group: SubcloudPeerGroup, rows: list[tuple[str, str, int]]) -> dict[str, Any]:
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
