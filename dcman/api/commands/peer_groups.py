"""/v1.0/subcloud-peer-groups: create, update, migrate and the peer's audit call. Hyphens, as
the dcmanager client sends them; the underscore spellings (the reference's samples, the
answers' keys) are accepted too."""

from __future__ import annotations

from collections.abc import Mapping

from dcman.api.commands.wire import (
    BASE64,
    Wire,
    canonical,
    nothing_to_update,
    object_schema,
    optional,
)
from dcman.domain import peer_groups
from dcman.domain.commands import NewPeerGroup, PeerGroupUpdate
from dcman.domain.errors import InvalidInput
from dcman.services.forms import decode_password

PG_NAME = Wire("peer-group-name", {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "[^0-9]"},
               aliases=("peer_group_name",), names=True)
PG_PRIORITY = Wire("group-priority", {"type": "integer", "minimum": 0, "maximum": peer_groups.MAX_PRIORITY},
                   aliases=("group_priority",))
PG_STATE = Wire("group-state", {"type": "string", "enum": ["enabled", "disabled"]}, aliases=("group_state",))
PG_MAX_REHOMING = Wire("max-subcloud-rehoming",
                       {"type": "integer", "minimum": 1, "maximum": peer_groups.MAX_REHOMING},
                       aliases=("max_subcloud_rehoming",))
PG_LEADER_ID = Wire("system-leader-id", {"type": "string", "format": "uuid"}, aliases=("system_leader_id",))
PG_LEADER_NAME = Wire("system-leader-name", {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "\\S"},
                      aliases=("system_leader_name",), names=True)
# As the peer site's migration sends it.
PG_MIGRATION = Wire("migration_status", {"type": "string", "enum": ["none", "migrating", "complete"]},
                    aliases=("migration-status",))
# dcman's additions. The sites protecting the group with their priorities, as the primary's
# sync sends them to each copy (from a peer site only).
PG_PROTECTION = Wire("protection", {"type": "array", "maxItems": peer_groups.MAX_PROTECTING_SITES, "items": {
    "type": "object", "properties": {"peer_uuid": {"type": "string", "format": "uuid"},
                                     "priority": {"type": "integer", "minimum": 0,
                                                  "maximum": peer_groups.MAX_PRIORITY}}}})
# The subclouds' sysadmin password a standby site fails the group over with by itself (from
# this site's operator only; never shown).
PG_FAILOVER_PASSWORD = Wire("sysadmin_password", BASE64)
PEER_GROUP_FIELDS = (PG_NAME, PG_PRIORITY, PG_STATE, PG_MAX_REHOMING, PG_LEADER_ID, PG_LEADER_NAME, PG_PROTECTION)
PEER_GROUP_UPDATE_FIELDS = (*PEER_GROUP_FIELDS, PG_MIGRATION, PG_FAILOVER_PASSWORD)
NEW_PEER_GROUP_SCHEMA = object_schema(PEER_GROUP_FIELDS, required=(PG_NAME,))
PEER_GROUP_UPDATE_SCHEMA = object_schema(PEER_GROUP_UPDATE_FIELDS, at_least_one=True)
_UNKNOWN_PEER_GROUP_FIELD = "Unknown subcloud peer group field(s)"


def _protection(fields: Mapping[str, object], from_peer: bool) -> str | None:
    if fields.get(PG_PROTECTION.key) is None:
        return None
    if not from_peer:
        raise InvalidInput("protection is sent by the primary site's sync; an operator sets it with "
                           "peer group associations.")
    return peer_groups.validate_protection(fields[PG_PROTECTION.key])


def new_peer_group(body: Mapping[str, object], from_peer: bool = False) -> NewPeerGroup:
    """The name is required; the rest defaults (peer_groups.new_peer_group_columns)."""
    fields = canonical(body, PEER_GROUP_FIELDS, _UNKNOWN_PEER_GROUP_FIELD)
    if fields.get(PG_NAME.key) is None:
        raise InvalidInput(f"The {PG_NAME.key} is required.")
    return NewPeerGroup(
        group_priority=optional(fields, PG_PRIORITY, peer_groups.validate_group_priority),
        group_state=optional(fields, PG_STATE, peer_groups.validate_group_state),
        max_subcloud_rehoming=optional(fields, PG_MAX_REHOMING, peer_groups.validate_max_subcloud_rehoming),
        system_leader_id=optional(fields, PG_LEADER_ID, peer_groups.validate_system_leader_id),
        system_leader_name=optional(fields, PG_LEADER_NAME, peer_groups.validate_system_leader_name),
        peer_group_name=peer_groups.validate_peer_group_name(fields[PG_NAME.key]),
        protection=_protection(fields, from_peer))


def peer_group_update(body: Mapping[str, object], from_peer: bool = False) -> PeerGroupUpdate:
    fields = canonical(body, PEER_GROUP_UPDATE_FIELDS, _UNKNOWN_PEER_GROUP_FIELD)
    password = fields.get(PG_FAILOVER_PASSWORD.key)
    if password is not None and from_peer:
        raise InvalidInput("A peer site does not send the sysadmin_password of a peer group.")
    update = PeerGroupUpdate(
        optional(fields, PG_NAME, peer_groups.validate_peer_group_name),
        optional(fields, PG_PRIORITY, peer_groups.validate_group_priority),
        optional(fields, PG_STATE, peer_groups.validate_group_state),
        optional(fields, PG_MAX_REHOMING, peer_groups.validate_max_subcloud_rehoming),
        optional(fields, PG_LEADER_ID, peer_groups.validate_system_leader_id),
        optional(fields, PG_LEADER_NAME, peer_groups.validate_system_leader_name),
        optional(fields, PG_MIGRATION, peer_groups.validate_migration_status),
        _protection(fields, from_peer),
        None if password is None else decode_password(PG_FAILOVER_PASSWORD.key, password))
    if update == PeerGroupUpdate():
        raise nothing_to_update(PEER_GROUP_UPDATE_FIELDS)
    return update


MIGRATE_PASSWORD = Wire("sysadmin_password", {"type": "string"})
MIGRATE_SCHEMA = object_schema((MIGRATE_PASSWORD,), required=(MIGRATE_PASSWORD,), closed=False)


def migrate_password(body: Mapping[str, object]) -> object:
    """The sysadmin password a migration gives, as sent (the migration rule checks it)."""
    return body.get(MIGRATE_PASSWORD.key)


AUDIT_PEER_UUID = "peer_uuid"


def audit_copy(body: Mapping[str, object]) -> tuple[str, dict[str, object]]:
    """A peer site's audit call: its uuid and its copy of the group (the group's fields as shown)."""
    peer_uuid = body.get(AUDIT_PEER_UUID)
    if not isinstance(peer_uuid, str):
        raise InvalidInput("The audit needs the peer's copy of the group and its peer_uuid.")
    return peer_uuid, dict(body)
