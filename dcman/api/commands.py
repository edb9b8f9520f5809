"""Each write request's fields as the clients spell them, parsed once into a typed command
(dcman.domain.commands), and the same declarations as the request schemas /openapi.json shows.

The only place that knows the wire spellings: `peer-group-name` or `peer_group_name`,
`management-state` beside `bootstrap_address`, the strings a multipart form sends for booleans.
A body is the plain mapping dcman.api.bodies read (bounded, off the event loop); what is wrong
with it is refused here with the one sentence the rule's validator gives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from dcman.domain.associations import MAX_PRIORITY as MAX_ASSOCIATION_PRIORITY
from dcman.domain.commands import (
    AssociationUpdate,
    BackupCreate,
    BackupDelete,
    BackupRestore,
    BackupTarget,
    GroupUpdate,
    NetworkReconfiguration,
    NewAssociation,
    NewGroup,
    NewPeerGroup,
    NewSubcloud,
    NewSystemPeer,
    PeerGroupMove,
    PeerGroupUpdate,
    PhaseRequest,
    PrestageRequest,
    SubcloudUpdate,
    SystemPeerUpdate,
)
from dcman.domain import groups, peer_groups, peers
from dcman.domain.errors import InvalidInput
from dcman.domain.network import bootstrap_address
from dcman.domain.states import (
    AdministrativeState,
    AssociationSyncStatus,
    AssociationType,
    HeartbeatFailurePolicy,
    ManagementState,
)
from dcman.domain.subcloud import parse_new_name, validate_release, validate_text
from dcman.domain.subcloud_ops import is_major_release
from dcman.domain.values import as_bool, choice, flag, integer
from dcman.services.forms import YamlUpload, as_text, decode_password, parse_mapping, parse_yaml_mapping

Schema = dict[str, object]
_T = TypeVar("_T")
# Marks a field that names something: /openapi.json declares dcman.domain.text's name rule there
# (the pattern is built on first use, dcman.api.openapi).
NAME_RULE = "x-dcman-name"


@dataclass(frozen=True)
class Wire:
    """One request field: its key (and other accepted spellings), its JSON schema, and its
    schema in a multipart form where that differs (files, booleans as text)."""

    key: str
    schema: Schema
    aliases: tuple[str, ...] = ()
    form: Schema | None = None
    names: bool = False

    def declared(self, in_form: bool = False) -> Schema:
        schema = dict(self.form if in_form and self.form is not None else self.schema)
        if self.names:
            schema[NAME_RULE] = True
        return schema


def object_schema(wires: tuple[Wire, ...], *, required: tuple[Wire, ...] = (), closed: bool = True,
                  at_least_one: bool = False, in_form: bool = False) -> Schema:
    """The JSON schema of a body holding these fields."""
    schema: Schema = {"type": "object", "properties": {w.key: w.declared(in_form) for w in wires}}
    if required:
        schema["required"] = [w.key for w in required]
    if closed:
        schema["additionalProperties"] = False
    if at_least_one:
        schema["minProperties"] = 1
    return schema


def json_body(schema: Schema) -> dict[str, object]:
    """A route's `openapi_extra` for a required JSON body of this schema."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _refuse_unknown(body: Mapping[str, object], wires: tuple[Wire, ...], what: str) -> None:
    known = {key for w in wires for key in (w.key, *w.aliases)}
    unknown = sorted(str(key) for key in body if key not in known)
    if unknown:
        raise InvalidInput(f"{what}: {', '.join(unknown)}.")


def _canonical(body: Mapping[str, object], wires: tuple[Wire, ...], what: str) -> dict[str, object]:
    """The body by each field's key, whichever spelling it came in; a field given twice is refused."""
    _refuse_unknown(body, wires, what)
    spelled = {key: w.key for w in wires for key in (w.key, *w.aliases)}
    found: dict[str, object] = {}
    for key, value in body.items():
        if spelled[key] in found:
            raise InvalidInput(f"The field {spelled[key]} is given twice.")
        found[spelled[key]] = value
    return found


def _optional(body: Mapping[str, object], wire: Wire, parse: Callable[[object], _T]) -> _T | None:
    value = body.get(wire.key)
    return None if value is None else parse(value)


def _nothing_to_update(wires: tuple[Wire, ...]) -> InvalidInput:
    return InvalidInput(f"Nothing to update; give at least one of {', '.join(w.key for w in wires)}.")


# --- subcloud groups (/v1.0/subcloud-groups) -----------------------------------------------------

GROUP_NAME = Wire("name", {  # not blank, not all digits, no regular-expression character, not Default
    "type": "string", "maxLength": 255, "pattern": "^[^.*+?|()\\[\\]{}^$]+$",
    "allOf": [{"pattern": "[^0-9]"}, {"pattern": "\\S"}], "not": {"pattern": "^[Dd][Ee][Ff][Aa][Uu][Ll][Tt]$"}},
    names=True)
GROUP_DESCRIPTION = Wire("description", {"type": "string", "minLength": 1, "maxLength": 254})
GROUP_APPLY_TYPE = Wire("update_apply_type", {"type": "string", "enum": ["parallel", "serial"]})
GROUP_MAX_PARALLEL = Wire("max_parallel_subclouds",
                          {"type": "integer", "minimum": 1, "maximum": groups.MAX_PARALLEL_SUBCLOUDS})
GROUP_FIELDS = (GROUP_NAME, GROUP_DESCRIPTION, GROUP_APPLY_TYPE, GROUP_MAX_PARALLEL)
NEW_GROUP_SCHEMA = object_schema(GROUP_FIELDS, required=GROUP_FIELDS)
GROUP_UPDATE_SCHEMA = object_schema(GROUP_FIELDS, at_least_one=True)
_UNKNOWN_GROUP_FIELD = "Unknown subcloud group field(s)"


def new_group(body: Mapping[str, object]) -> NewGroup:
    """Every field is required (§2.7 rule 2)."""
    for wire in GROUP_FIELDS:
        if body.get(wire.key) is None:
            raise InvalidInput(f"The group {wire.key} is required.")
    _refuse_unknown(body, GROUP_FIELDS, _UNKNOWN_GROUP_FIELD)
    return NewGroup(groups.validate_group_name(body[GROUP_NAME.key]),
                    groups.validate_group_description(body[GROUP_DESCRIPTION.key]),
                    groups.validate_update_apply_type(body[GROUP_APPLY_TYPE.key]),
                    groups.validate_max_parallel_subclouds(body[GROUP_MAX_PARALLEL.key]))


def group_update(body: Mapping[str, object]) -> GroupUpdate:
    _refuse_unknown(body, GROUP_FIELDS, _UNKNOWN_GROUP_FIELD)
    update = GroupUpdate(_optional(body, GROUP_NAME, groups.validate_group_name),
                         _optional(body, GROUP_DESCRIPTION, groups.validate_group_description),
                         _optional(body, GROUP_APPLY_TYPE, groups.validate_update_apply_type),
                         _optional(body, GROUP_MAX_PARALLEL, groups.validate_max_parallel_subclouds))
    if update == GroupUpdate():
        raise _nothing_to_update(GROUP_FIELDS)
    return update


# --- subcloud peer groups (/v1.0/subcloud-peer-groups) -------------------------------------------
# Hyphens, as the dcmanager client sends them; the underscore spellings (the reference's
# samples, the answers' keys) are accepted too.

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
PEER_GROUP_FIELDS = (PG_NAME, PG_PRIORITY, PG_STATE, PG_MAX_REHOMING, PG_LEADER_ID, PG_LEADER_NAME)
PEER_GROUP_UPDATE_FIELDS = (*PEER_GROUP_FIELDS, PG_MIGRATION)
NEW_PEER_GROUP_SCHEMA = object_schema(PEER_GROUP_FIELDS, required=(PG_NAME,))
PEER_GROUP_UPDATE_SCHEMA = object_schema(PEER_GROUP_UPDATE_FIELDS, at_least_one=True)
_UNKNOWN_PEER_GROUP_FIELD = "Unknown subcloud peer group field(s)"


def new_peer_group(body: Mapping[str, object]) -> NewPeerGroup:
    """The name is required; the rest defaults (peer_groups.new_peer_group_columns)."""
    fields = _canonical(body, PEER_GROUP_FIELDS, _UNKNOWN_PEER_GROUP_FIELD)
    if fields.get(PG_NAME.key) is None:
        raise InvalidInput(f"The {PG_NAME.key} is required.")
    return NewPeerGroup(
        group_priority=_optional(fields, PG_PRIORITY, peer_groups.validate_group_priority),
        group_state=_optional(fields, PG_STATE, peer_groups.validate_group_state),
        max_subcloud_rehoming=_optional(fields, PG_MAX_REHOMING, peer_groups.validate_max_subcloud_rehoming),
        system_leader_id=_optional(fields, PG_LEADER_ID, peer_groups.validate_system_leader_id),
        system_leader_name=_optional(fields, PG_LEADER_NAME, peer_groups.validate_system_leader_name),
        peer_group_name=peer_groups.validate_peer_group_name(fields[PG_NAME.key]))


def peer_group_update(body: Mapping[str, object]) -> PeerGroupUpdate:
    fields = _canonical(body, PEER_GROUP_UPDATE_FIELDS, _UNKNOWN_PEER_GROUP_FIELD)
    update = PeerGroupUpdate(
        _optional(fields, PG_NAME, peer_groups.validate_peer_group_name),
        _optional(fields, PG_PRIORITY, peer_groups.validate_group_priority),
        _optional(fields, PG_STATE, peer_groups.validate_group_state),
        _optional(fields, PG_MAX_REHOMING, peer_groups.validate_max_subcloud_rehoming),
        _optional(fields, PG_LEADER_ID, peer_groups.validate_system_leader_id),
        _optional(fields, PG_LEADER_NAME, peer_groups.validate_system_leader_name),
        _optional(fields, PG_MIGRATION, peer_groups.validate_migration_status))
    if update == PeerGroupUpdate():
        raise _nothing_to_update(PEER_GROUP_UPDATE_FIELDS)
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


# --- system peers (/v1.0/system-peers) ------------------------------------------------------------


def _range(bounds: tuple[int, int, int]) -> Schema:
    return {"type": "integer", "minimum": bounds[0], "maximum": bounds[1]}


PEER_UUID = Wire("peer_uuid", {"type": "string", "format": "uuid"})
PEER_NAME = Wire("peer_name", {"type": "string", "maxLength": 255,  # not blank, not all digits
                               "allOf": [{"pattern": "\\S"}, {"pattern": "[^0-9]"}]}, names=True)
PEER_ENDPOINT = Wire("manager_endpoint", {  # an http(s) URL with a host name and no white space
    "type": "string", "maxLength": 255, "pattern": "^https?://[A-Za-z0-9._-]+(:[1-9][0-9]{0,3})?([/?#][!-~]*)?$"})
PEER_USERNAME = Wire("manager_username", {"type": "string", "maxLength": 255, "pattern": "\\S"})
# base64 of ASCII text: whole 4-character groups of known 3-letter words
PEER_PASSWORD = Wire("manager_password", {"type": "string", "description": "base64",
                                          "pattern": "^(YWJj|ZGVm|MTIz|UGFz|c3dk){1,8}$"})
PEER_GATEWAY = Wire("peer_controller_gateway_address",
                    {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
PEER_ADMIN_STATE = Wire("administrative_state", {"type": "string", "enum": ["enabled", "disabled"]})
PEER_INTERVAL = Wire("heartbeat_interval", _range(peers.HEARTBEAT_INTERVAL))
PEER_THRESHOLD = Wire("heartbeat_failure_threshold", _range(peers.HEARTBEAT_FAILURE_THRESHOLD))
PEER_POLICY = Wire("heartbeat_failure_policy", {"type": "string", "enum": ["alarm", "rehome", "delegate"]})
PEER_MAINTENANCE = Wire("heartbeat_maintenance_timeout", _range(peers.HEARTBEAT_MAINTENANCE_TIMEOUT))
PEER_REQUIRED = (PEER_UUID, PEER_NAME, PEER_ENDPOINT, PEER_USERNAME, PEER_PASSWORD, PEER_GATEWAY)
PEER_FIELDS = (*PEER_REQUIRED, PEER_ADMIN_STATE, PEER_INTERVAL, PEER_THRESHOLD, PEER_POLICY, PEER_MAINTENANCE)
NEW_PEER_SCHEMA = object_schema(PEER_FIELDS, required=PEER_REQUIRED)
PEER_UPDATE_SCHEMA = object_schema(PEER_FIELDS, at_least_one=True)
_UNKNOWN_PEER_FIELD = "Unknown system peer field(s)"


def _password(value: object) -> str:
    return decode_password(PEER_PASSWORD.key, value)


def _interval(value: object) -> int:
    return integer(PEER_INTERVAL.key, value, *peers.HEARTBEAT_INTERVAL[:2])


def _threshold(value: object) -> int:
    return integer(PEER_THRESHOLD.key, value, *peers.HEARTBEAT_FAILURE_THRESHOLD[:2])


def _maintenance(value: object) -> int:
    return integer(PEER_MAINTENANCE.key, value, *peers.HEARTBEAT_MAINTENANCE_TIMEOUT[:2])


def new_system_peer(body: Mapping[str, object]) -> NewSystemPeer:
    """The identity, endpoint and credentials are required; the heartbeat settings and the
    administrative state take the reference's defaults."""
    _refuse_unknown(body, PEER_FIELDS, _UNKNOWN_PEER_FIELD)
    for wire in PEER_REQUIRED:
        if body.get(wire.key) is None:
            raise InvalidInput(f"The {wire.key} is required.")
    password = _password(body[PEER_PASSWORD.key])
    return NewSystemPeer(
        peers.validate_peer_uuid(body[PEER_UUID.key]), peers.validate_peer_name(body[PEER_NAME.key]),
        peers.validate_manager_endpoint(body[PEER_ENDPOINT.key]),
        peers.validate_manager_username(body[PEER_USERNAME.key]), password,
        peers.validate_gateway_address(body[PEER_GATEWAY.key]),
        _optional(body, PEER_ADMIN_STATE, peers.validate_administrative_state) or AdministrativeState.ENABLED,
        _optional(body, PEER_INTERVAL, _interval) or peers.HEARTBEAT_INTERVAL[2],
        _optional(body, PEER_THRESHOLD, _threshold) or peers.HEARTBEAT_FAILURE_THRESHOLD[2],
        _optional(body, PEER_POLICY, peers.validate_heartbeat_failure_policy) or HeartbeatFailurePolicy.ALARM,
        _optional(body, PEER_MAINTENANCE, _maintenance) or peers.HEARTBEAT_MAINTENANCE_TIMEOUT[2])


def system_peer_update(body: Mapping[str, object]) -> SystemPeerUpdate:
    _refuse_unknown(body, PEER_FIELDS, _UNKNOWN_PEER_FIELD)
    update = SystemPeerUpdate(
        _optional(body, PEER_UUID, peers.validate_peer_uuid), _optional(body, PEER_NAME, peers.validate_peer_name),
        _optional(body, PEER_ENDPOINT, peers.validate_manager_endpoint),
        _optional(body, PEER_USERNAME, peers.validate_manager_username), _optional(body, PEER_PASSWORD, _password),
        _optional(body, PEER_GATEWAY, peers.validate_gateway_address),
        _optional(body, PEER_ADMIN_STATE, peers.validate_administrative_state),
        _optional(body, PEER_INTERVAL, _interval), _optional(body, PEER_THRESHOLD, _threshold),
        _optional(body, PEER_POLICY, peers.validate_heartbeat_failure_policy),
        _optional(body, PEER_MAINTENANCE, _maintenance))
    if update == SystemPeerUpdate():
        raise _nothing_to_update(PEER_FIELDS)
    return update


# --- peer group associations (/v1.0/peer-group-associations) --------------------------------------

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
ASSOC_GROUP = Wire("peer_group_id", _ID)
ASSOC_PEER = Wire("system_peer_id", _ID)
ASSOC_PRIORITY = Wire("peer_group_priority", {"type": "integer", "minimum": 1, "maximum": MAX_ASSOCIATION_PRIORITY})
# From a peer site's sync only: undeclared.
ASSOC_TYPE, ASSOC_SYNC_STATUS, ASSOC_SYNC_MESSAGE = "association_type", "sync_status", "sync_message"
NEW_ASSOCIATION_SCHEMA = object_schema((ASSOC_GROUP, ASSOC_PEER, ASSOC_PRIORITY), required=(ASSOC_GROUP, ASSOC_PEER))
ASSOCIATION_UPDATE_SCHEMA = object_schema((ASSOC_PRIORITY,), required=(ASSOC_PRIORITY,))
_ASSOCIATION_UPDATE_KEYS = (ASSOC_PRIORITY.key, ASSOC_SYNC_STATUS, ASSOC_SYNC_MESSAGE)


def _id(wire: Wire) -> Callable[[object], int]:
    return lambda value: integer(wire.key, value, 1, 2**31 - 1)


def _association_priority(value: object) -> int:
    return integer(ASSOC_PRIORITY.key, value, 1, MAX_ASSOCIATION_PRIORITY)


def new_association(body: Mapping[str, object]) -> NewAssociation:
    for wire in (ASSOC_GROUP, ASSOC_PEER):
        if body.get(wire.key) is None:
            raise InvalidInput(f"The {wire.key} is required.")
    kind = choice(AssociationType, body.get(ASSOC_TYPE, AssociationType.PRIMARY.value),
                  "Only a peer site's sync creates non-primary associations.")
    return NewAssociation(_id(ASSOC_GROUP)(body[ASSOC_GROUP.key]), _id(ASSOC_PEER)(body[ASSOC_PEER.key]),
                          _association_priority(body.get(ASSOC_PRIORITY.key, 1)), kind)


def association_update(body: Mapping[str, object]) -> AssociationUpdate:
    status = body.get(ASSOC_SYNC_STATUS)
    message = body.get(ASSOC_SYNC_MESSAGE)
    update = AssociationUpdate(
        _optional(body, ASSOC_PRIORITY, _association_priority),
        None if status is None else choice(AssociationSyncStatus, status, f"Invalid sync_status {status!r}."),
        message if status is not None and isinstance(message, str) else None)
    unknown = sorted(str(key) for key in body if key not in _ASSOCIATION_UPDATE_KEYS)
    if unknown:
        raise InvalidInput(f"Unknown association field(s): {', '.join(unknown)}.")
    if update == AssociationUpdate():
        raise InvalidInput("Nothing to update; give peer_group_priority.")
    return update


# --- subclouds (/v1.0/subclouds) ------------------------------------------------------------------

_FILE: Schema = {"type": "string", "format": "binary"}
_FORM_BOOL: Schema = {"type": "string", "enum": ["true", "false"]}
_BASE64: Schema = {"type": "string", "description": "base64"}
_TEXT: Schema = {"type": "string"}
SC_BOOTSTRAP_VALUES = Wire("bootstrap_values", {"type": ["object", "string"], "description": "YAML text or an object"},
                           form=_FILE)
SC_INSTALL_VALUES = Wire("install_values", {"type": ["object", "string"],
                                            "description": "YAML text or an object; §2.2 rules"}, form=_FILE)
SC_DEPLOY_CONFIG = Wire("deploy_config", _FILE)
SC_BOOTSTRAP_ADDRESS = Wire("bootstrap_address", _TEXT)
SC_ADD_BOOTSTRAP_ADDRESS = Wire("bootstrap-address", _TEXT)  # add spells it with a dash
SC_SYSADMIN_PASSWORD = Wire("sysadmin_password", _BASE64)
SC_BMC_PASSWORD = Wire("bmc_password", _BASE64)
SC_GROUP = Wire("group_id", {"type": ["string", "integer"]}, form={"type": "string"})
SC_DESCRIPTION = Wire("description", _TEXT)
SC_LOCATION = Wire("location", _TEXT)
SC_RELEASE = Wire("release", _TEXT)
SC_MIGRATE = Wire("migrate", {"type": ["string", "boolean"], "enum": ["true", "false", True, False]}, form=_FORM_BOOL)
SC_SECONDARY = Wire("secondary", _FORM_BOOL)
SC_REGION = Wire("region_name", _TEXT)
SC_ADD_NAME = Wire("name", {"type": "string", "description": "migrate only: must be the bootstrap values' name"})
SC_NAME = Wire("name", _TEXT)
SC_MANAGEMENT = Wire("management-state", {"type": "string", "enum": ["managed", "unmanaged"]})
SC_FORCE = Wire("force", {"type": ["string", "boolean"]}, form=_FORM_BOOL)
SC_PEER_GROUP = Wire("peer_group", {"type": ["string", "integer"]}, form={"type": "string"})
SC_UPDATE_RELEASE = Wire("release", {"type": "string", "description": "a secondary copy's, from its peer site only"})
# Network reconfiguration (§2.6): all four management fields, bootstrap_address, sysadmin_password.
SC_SUBNET = Wire("management_subnet", _TEXT)
SC_GATEWAY = Wire("management_gateway_ip", _TEXT)
SC_START = Wire("management_start_ip", _TEXT)
SC_END = Wire("management_end_ip", _TEXT)
NETWORK_FIELDS = (SC_SUBNET, SC_GATEWAY, SC_START, SC_END)

ADD_FIELDS = (SC_BOOTSTRAP_VALUES, SC_INSTALL_VALUES, SC_DEPLOY_CONFIG, SC_ADD_BOOTSTRAP_ADDRESS, SC_SYSADMIN_PASSWORD,
              SC_BMC_PASSWORD, SC_GROUP, SC_DESCRIPTION, SC_LOCATION, SC_RELEASE, SC_MIGRATE, SC_SECONDARY,
              SC_REGION, SC_ADD_NAME)
ADD_FORM_SCHEMA = object_schema(ADD_FIELDS, required=(SC_BOOTSTRAP_VALUES, SC_ADD_BOOTSTRAP_ADDRESS,
                                                      SC_SYSADMIN_PASSWORD), closed=False, in_form=True)
# A phase of a phased deploy takes the files and passwords of an add, and nothing that names a new subcloud.
PHASE_FORM_SCHEMA = object_schema((SC_BOOTSTRAP_VALUES, SC_INSTALL_VALUES, SC_DEPLOY_CONFIG, SC_ADD_BOOTSTRAP_ADDRESS,
                                   SC_SYSADMIN_PASSWORD, SC_BMC_PASSWORD, SC_RELEASE), closed=False, in_form=True)


def phase_request(body: Mapping[str, object]) -> PhaseRequest:
    """A phase's fields; what else the body holds is ignored, as the dcmanager client sends more."""
    address = body.get(SC_ADD_BOOTSTRAP_ADDRESS.key)
    release = body.get(SC_RELEASE.key)
    password = body.get(SC_SYSADMIN_PASSWORD.key)
    return PhaseRequest(
        install_values=parse_yaml_mapping(SC_INSTALL_VALUES.key, body.get(SC_INSTALL_VALUES.key)),
        bmc_password=body.get(SC_BMC_PASSWORD.key), release=validate_release(release) if release else None,
        bootstrap_values=parse_yaml_mapping(SC_BOOTSTRAP_VALUES.key, body.get(SC_BOOTSTRAP_VALUES.key)),
        bootstrap_address=None if address is None else str(address).strip(),
        deploy_config=as_text(SC_DEPLOY_CONFIG.key, body.get(SC_DEPLOY_CONFIG.key)),
        sysadmin_password=None if password is None else decode_password(SC_SYSADMIN_PASSWORD.key, password))


def new_subcloud(body: Mapping[str, object]) -> NewSubcloud:
    """An add: the bootstrap values file and the bootstrap address are required; description
    and location come from the form, else the file (the dcmanager client has no option for
    them; the reference reads the file), else null as there."""
    values = parse_yaml_mapping(SC_BOOTSTRAP_VALUES.key, body.get(SC_BOOTSTRAP_VALUES.key))
    if values is None:
        raise InvalidInput("The bootstrap_values file is required.")
    password = body.get(SC_SYSADMIN_PASSWORD.key)

    def free_text(wire: Wire) -> str | None:
        value = body.get(wire.key)
        value = values.get(wire.key) if value is None else value
        return None if value is None else validate_text(wire.key, value)

    return NewSubcloud(
        secondary=bool(_optional(body, SC_SECONDARY, lambda value: flag(SC_SECONDARY.key, value))),
        migrate=bool(_optional(body, SC_MIGRATE, lambda value: flag(SC_MIGRATE.key, value))),
        bootstrap_values=values,
        install_values=parse_yaml_mapping(SC_INSTALL_VALUES.key, body.get(SC_INSTALL_VALUES.key)),
        deploy_config=as_text(SC_DEPLOY_CONFIG.key, body.get(SC_DEPLOY_CONFIG.key)),
        bootstrap_address=bootstrap_address(body.get(SC_ADD_BOOTSTRAP_ADDRESS.key)),
        sysadmin_password=decode_password(SC_SYSADMIN_PASSWORD.key, password) if password else None,
        release=validate_release(body.get(SC_RELEASE.key)),
        description=free_text(SC_DESCRIPTION), location=free_text(SC_LOCATION),
        bmc_password=body.get(SC_BMC_PASSWORD.key), group=group_ref(body.get(SC_GROUP.key) or 1),
        region_name=body.get(SC_REGION.key), name=body.get(SC_ADD_NAME.key))


# What an update changes, in the order its refusal lists them.
UPDATE_FIELDS = (SC_DESCRIPTION, SC_LOCATION, SC_GROUP, SC_NAME, SC_MANAGEMENT, SC_FORCE, SC_PEER_GROUP,
                 SC_INSTALL_VALUES, SC_BMC_PASSWORD, SC_BOOTSTRAP_VALUES, SC_BOOTSTRAP_ADDRESS, SC_MIGRATE,
                 SC_UPDATE_RELEASE)
NETWORK_REQUEST_FIELDS = (*NETWORK_FIELDS, SC_BOOTSTRAP_ADDRESS, SC_SYSADMIN_PASSWORD)
_UPDATE_SCHEMA_FIELDS = (*UPDATE_FIELDS, *NETWORK_FIELDS, SC_SYSADMIN_PASSWORD)
SUBCLOUD_UPDATE_SCHEMA = object_schema(_UPDATE_SCHEMA_FIELDS, at_least_one=True)
# The dcmanager client's `subcloud update` sends multipart, with the YAML files as file parts.
SUBCLOUD_UPDATE_FORM_SCHEMA = object_schema(_UPDATE_SCHEMA_FIELDS, closed=False, in_form=True)
_LEAVE = "none"  # peer_group: none, to leave the group


def subcloud_update(body: Mapping[str, object]) -> SubcloudUpdate | NetworkReconfiguration:
    """PATCH /subclouds/{ref}: a network reconfiguration when it holds a management network
    field, else the update of the other fields (§2.4, §2.6-2.8)."""
    if any(body.get(w.key) is not None for w in NETWORK_FIELDS):
        return NetworkReconfiguration(
            *(body.get(w.key) for w in NETWORK_FIELDS), body.get(SC_BOOTSTRAP_ADDRESS.key),
            body.get(SC_SYSADMIN_PASSWORD.key), with_management_state=body.get(SC_MANAGEMENT.key) is not None,
            also_given=tuple(sorted(set(body) - {w.key for w in NETWORK_REQUEST_FIELDS})))
    keys = [w.key for w in UPDATE_FIELDS]
    unsupported = sorted(str(key) for key in set(body) - set(keys))
    if unsupported:
        raise InvalidInput(f"Cannot update {', '.join(unsupported)}; this site updates {', '.join(keys)}.")
    migrate = _optional(body, SC_MIGRATE, lambda value: flag(SC_MIGRATE.key, value))
    wanted = [w for w in UPDATE_FIELDS if w is not SC_FORCE and body.get(w.key) is not None]
    if not wanted or (wanted == [SC_MIGRATE] and not migrate):  # force only qualifies a manage
        raise InvalidInput("Nothing to update; give at least one of description, location, group_id, name, "
                           "management-state, peer_group, install_values, bmc_password, bootstrap_values, "
                           "bootstrap_address, migrate.")
    management = _optional(body, SC_MANAGEMENT, _management_state)
    force = _optional(body, SC_FORCE, lambda value: flag(SC_FORCE.key, value))
    if force is not None and management is None:
        raise InvalidInput("force is only accepted together with management-state managed.")
    return SubcloudUpdate(
        name=_optional(body, SC_NAME, parse_new_name),
        description=_optional(body, SC_DESCRIPTION, lambda value: validate_text(SC_DESCRIPTION.key, value)),
        location=_optional(body, SC_LOCATION, lambda value: validate_text(SC_LOCATION.key, value)),
        group=_optional(body, SC_GROUP, group_ref), management_state=management, force=bool(force),
        peer_group=_optional(body, SC_PEER_GROUP, _peer_group_move),
        install_values=parse_mapping(SC_INSTALL_VALUES.key, body.get(SC_INSTALL_VALUES.key)),
        bmc_password=_optional(body, SC_BMC_PASSWORD, _bmc_password),
        bootstrap_values=parse_mapping(SC_BOOTSTRAP_VALUES.key, body.get(SC_BOOTSTRAP_VALUES.key)),
        bootstrap_address=_optional(body, SC_BOOTSTRAP_ADDRESS,
                                    lambda value: bootstrap_address(value, SC_BOOTSTRAP_ADDRESS.key)),
        migrate=bool(migrate), release=_optional(body, SC_UPDATE_RELEASE, validate_release))


def _management_state(value: object) -> ManagementState:
    return choice(ManagementState, value, f"Invalid management-state {value!r}; it must be managed or unmanaged.")


def group_ref(value: object) -> str:
    """A subcloud group's id (a number or its digits) or name."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"Invalid group {value!r}.")
    return value


def _peer_group_move(value: object) -> PeerGroupMove:
    if isinstance(value, str) and value.strip().lower() == _LEAVE:
        return PeerGroupMove(None)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise InvalidInput(f"Invalid peer group {value!r}; give a peer group id or name, or none.")
    return PeerGroupMove(str(value).strip())


def _bmc_password(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("Install value bmc_password is not valid base64; give the BMC password base64-encoded.")
    return value


# --- prestage (/v1.0/subclouds/{ref}/prestage) --------------------------------------------------

PRESTAGE_PASSWORD = Wire("sysadmin_password", _BASE64)
PRESTAGE_RELEASE = Wire("release", {"type": "string", "description": "MM.mm; the site's release when omitted"})
PRESTAGE_FORCE = Wire("force", {"type": ["string", "boolean"],
                                "description": "prestage despite management-affecting alarms"})
PRESTAGE_FOR_INSTALL = Wire("for_install", {"type": ["string", "boolean"]})
PRESTAGE_FOR_SW_DEPLOY = Wire("for_sw_deploy", {"type": ["string", "boolean"]})
PRESTAGE_FIELDS = (PRESTAGE_PASSWORD, PRESTAGE_RELEASE, PRESTAGE_FORCE, PRESTAGE_FOR_INSTALL, PRESTAGE_FOR_SW_DEPLOY)
PRESTAGE_SCHEMA = object_schema(PRESTAGE_FIELDS, required=(PRESTAGE_PASSWORD,), closed=False)


def _option(body: Mapping[str, object], wire: Wire) -> bool:
    """A prestage option: true/false, or the t/f the dcmanager client may send; absent is false."""
    value = body.get(wire.key)
    if value is None:
        return False
    parsed = as_bool(value, ("true", "t"), ("false", "f"))
    if parsed is None:
        raise InvalidInput(f"Invalid value for {wire.key} option: {value}")
    return parsed


def prestage_request(body: Mapping[str, object]) -> PrestageRequest:
    """The reference's messages: the password is required; install or software deploy, not both."""
    keys = [w.key for w in PRESTAGE_FIELDS]
    unknown = sorted(str(key) for key in set(body) - set(keys))
    if unknown:
        raise InvalidInput(f"Cannot prestage with {', '.join(unknown)}; a prestage takes {', '.join(keys)}.")
    if not body.get(PRESTAGE_PASSWORD.key):
        raise InvalidInput("sysadmin_password is required.")
    for_install, for_sw_deploy = _option(body, PRESTAGE_FOR_INSTALL), _option(body, PRESTAGE_FOR_SW_DEPLOY)
    if for_install and for_sw_deploy:
        raise InvalidInput("Prestage is for install or for software deploy, not both: give one of for_install "
                           "and for_sw_deploy.")
    release = body.get(PRESTAGE_RELEASE.key)
    if release is not None and (not isinstance(release, str) or not is_major_release(release)):
        raise InvalidInput("Specified release format is not supported. Version format must be MM.mm.")
    return PrestageRequest(validate_release(release), _option(body, PRESTAGE_FORCE), for_sw_deploy,
                           decode_password(PRESTAGE_PASSWORD.key, body[PRESTAGE_PASSWORD.key]))


# --- subcloud backups (/v1.0/subcloud-backup) -----------------------------------------------------

BK_SUBCLOUD = Wire("subcloud", {"type": "string", "description": "name or id"})
BK_GROUP = Wire("group", {"type": "string", "description": "name or id"})
BK_LOCAL_ONLY = Wire("local_only", _FORM_BOOL)
BK_REGISTRY_IMAGES = Wire("registry_images", _FORM_BOOL)
BK_WITH_INSTALL = Wire("with_install", _FORM_BOOL)
BK_RELEASE = Wire("release", _TEXT)
BK_BACKUP_VALUES = Wire("backup_values", _FILE)
BK_RESTORE_VALUES = Wire("restore_values", _FILE)
BK_PASSWORD = Wire("sysadmin_password", _BASE64)
BK_DELETE_PASSWORD = Wire("sysadmin_password", {"type": "string", "description": "base64; for local_only"})
# Restore modes the reference has and dcman refuses: accepted as fields, refused when true.
BK_UNSUPPORTED_MODES = ("auto", "factory", "on_site")
BACKUP_CREATE_FIELDS = (BK_SUBCLOUD, BK_GROUP, BK_LOCAL_ONLY, BK_REGISTRY_IMAGES, BK_BACKUP_VALUES, BK_PASSWORD)
BACKUP_DELETE_FIELDS = (BK_SUBCLOUD, BK_GROUP, BK_LOCAL_ONLY, BK_DELETE_PASSWORD)
BACKUP_RESTORE_FIELDS = (BK_SUBCLOUD, BK_GROUP, BK_LOCAL_ONLY, BK_WITH_INSTALL, BK_REGISTRY_IMAGES, BK_RELEASE,
                         BK_RESTORE_VALUES, BK_PASSWORD)
BACKUP_CREATE_SCHEMA = object_schema(BACKUP_CREATE_FIELDS, required=(BK_PASSWORD,), closed=False, in_form=True)
BACKUP_DELETE_SCHEMA = object_schema(BACKUP_DELETE_FIELDS, closed=False, in_form=True)
BACKUP_RESTORE_SCHEMA = object_schema(BACKUP_RESTORE_FIELDS, required=(BK_PASSWORD,), closed=False, in_form=True)


def _backup_fields(body: Mapping[str, object], wires: tuple[Wire, ...], *extra: str) -> None:
    unexpected = sorted(str(key) for key in set(body) - {w.key for w in wires} - set(extra))
    if unexpected:
        raise InvalidInput(f"Unexpected parameter received: {', '.join(unexpected)}.")


def _backup_flag(body: Mapping[str, object], name: str) -> bool:
    """A boolean option, sent as "true"/"false" by the dcmanager client (or as a JSON boolean)."""
    value = body.get(name)
    if value is None or value == "":
        return False
    parsed = as_bool(value)
    if parsed is None or (isinstance(value, str) and value != value.strip()):
        raise InvalidInput(f"Invalid {name} value, should be boolean.")
    return parsed


def _backup_values(body: Mapping[str, object], wire: Wire) -> dict[str, object]:
    """backup_values / restore_values: a JSON object, or the YAML file the dcmanager client uploads."""
    value = body.get(wire.key)
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, bytes, YamlUpload)):
        return parse_yaml_mapping(wire.key, value) or {}
    raise InvalidInput(f"The {wire.key} must be a YAML file or a JSON object.")


def _backup_ref(body: Mapping[str, object], wire: Wire) -> str | None:
    value = body.get(wire.key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidInput(f"The {wire.key} must be a name or an id.")
    return value


def _backup_target(body: Mapping[str, object]) -> BackupTarget:
    subcloud, group = _backup_ref(body, BK_SUBCLOUD), _backup_ref(body, BK_GROUP)
    if subcloud and group:
        raise InvalidInput("'subcloud' and 'group' parameters should not be given at the same time.")
    if not subcloud and not group:
        raise InvalidInput("'subcloud' or 'group' parameter is required.")
    return BackupTarget(subcloud, group)


def backup_create(body: Mapping[str, object]) -> BackupCreate:
    _backup_fields(body, BACKUP_CREATE_FIELDS)
    password = decode_password(BK_PASSWORD.key, body.get(BK_PASSWORD.key))
    local_only, registry_images = _backup_flag(body, BK_LOCAL_ONLY.key), _backup_flag(body, BK_REGISTRY_IMAGES.key)
    if registry_images and not local_only:
        raise InvalidInput("Option registry_images can not be used without local_only option.")
    backup_values = _backup_values(body, BK_BACKUP_VALUES)
    return BackupCreate(_backup_target(body), password, local_only, registry_images, backup_values)


def backup_restore(body: Mapping[str, object]) -> BackupRestore:
    if not body:
        raise InvalidInput("Body required.")
    _backup_fields(body, BACKUP_RESTORE_FIELDS, *BK_UNSUPPORTED_MODES)
    password = decode_password(BK_PASSWORD.key, body.get(BK_PASSWORD.key))
    local_only, with_install = _backup_flag(body, BK_LOCAL_ONLY.key), _backup_flag(body, BK_WITH_INSTALL.key)
    registry_images = _backup_flag(body, BK_REGISTRY_IMAGES.key)
    for mode in BK_UNSUPPORTED_MODES:
        if _backup_flag(body, mode):
            raise InvalidInput(f"The {mode} restore mode is not supported by dcman.")
    if registry_images and not local_only:
        raise InvalidInput("Option registry_images cannot be used without local_only option.")
    release = _backup_ref(body, BK_RELEASE)
    if release and not with_install:
        raise InvalidInput("Option release cannot be used without 'with_install' or 'factory' options.")
    restore_values = _backup_values(body, BK_RESTORE_VALUES)
    if not isinstance(restore_values.get("bootstrap_address", {}), dict):
        raise InvalidInput("The bootstrap_address provided in restore_values is in invalid format.")
    return BackupRestore(_backup_target(body), password, local_only, with_install, registry_images, release,
                         restore_values)


def backup_delete(body: Mapping[str, object]) -> BackupDelete:
    """`release` may come in the body too (the dcmanager client's); the path's is the one used."""
    _backup_fields(body, BACKUP_DELETE_FIELDS, BK_RELEASE.key)
    local_only = _backup_flag(body, BK_LOCAL_ONLY.key)
    password = decode_password(BK_DELETE_PASSWORD.key, body.get(BK_DELETE_PASSWORD.key)) if local_only else None
    return BackupDelete(_backup_target(body), local_only, password)
