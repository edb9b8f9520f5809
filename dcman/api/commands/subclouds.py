"""/v1.0/subclouds and the phased deploy: add, update (or a network reconfiguration), and
what a deploy phase brings."""

from __future__ import annotations

from collections.abc import Mapping

from dcman.api.commands.wire import (
    BASE64,
    FILE,
    FORM_BOOL,
    TEXT,
    Wire,
    object_schema,
    optional,
)
from dcman.domain.commands import (
    NetworkReconfiguration,
    NewSubcloud,
    PeerGroupMove,
    PhaseRequest,
    SubcloudUpdate,
)
from dcman.domain.errors import InvalidInput
from dcman.domain.network import bootstrap_address
from dcman.domain.states import ManagementState
from dcman.domain.subcloud import parse_new_name, validate_release, validate_text
from dcman.domain.values import choice, flag
from dcman.services.forms import as_text, decode_password, parse_mapping, parse_yaml_mapping

SC_BOOTSTRAP_VALUES = Wire("bootstrap_values", {"type": ["object", "string"], "description": "YAML text or an object"},
                           form=FILE)
SC_INSTALL_VALUES = Wire("install_values", {"type": ["object", "string"],
                                            "description": "YAML text or an object; §2.2 rules"}, form=FILE)
SC_DEPLOY_CONFIG = Wire("deploy_config", FILE)
SC_BOOTSTRAP_ADDRESS = Wire("bootstrap_address", TEXT)
SC_ADD_BOOTSTRAP_ADDRESS = Wire("bootstrap-address", TEXT)  # add spells it with a dash
SC_SYSADMIN_PASSWORD = Wire("sysadmin_password", BASE64)
SC_BMC_PASSWORD = Wire("bmc_password", BASE64)
SC_GROUP = Wire("group_id", {"type": ["string", "integer"]}, form={"type": "string"})
SC_DESCRIPTION = Wire("description", TEXT)
SC_LOCATION = Wire("location", TEXT)
SC_RELEASE = Wire("release", TEXT)
SC_MIGRATE = Wire("migrate", {"type": ["string", "boolean"], "enum": ["true", "false", True, False]}, form=FORM_BOOL)
SC_SECONDARY = Wire("secondary", FORM_BOOL)
SC_REGION = Wire("region_name", TEXT)
SC_ADD_NAME = Wire("name", {"type": "string", "description": "migrate only: must be the bootstrap values' name"})
SC_NAME = Wire("name", TEXT)
SC_MANAGEMENT = Wire("management-state", {"type": "string", "enum": ["managed", "unmanaged"]})
SC_FORCE = Wire("force", {"type": ["string", "boolean"]}, form=FORM_BOOL)
SC_PEER_GROUP = Wire("peer_group", {"type": ["string", "integer"]}, form={"type": "string"})
SC_UPDATE_RELEASE = Wire("release", {"type": "string", "description": "a secondary copy's, from its peer site only"})
# Network reconfiguration (§2.6): all four management fields, bootstrap_address, sysadmin_password.
SC_SUBNET = Wire("management_subnet", TEXT)
SC_GATEWAY = Wire("management_gateway_ip", TEXT)
SC_START = Wire("management_start_ip", TEXT)
SC_END = Wire("management_end_ip", TEXT)
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
        secondary=bool(optional(body, SC_SECONDARY, lambda value: flag(SC_SECONDARY.key, value))),
        migrate=bool(optional(body, SC_MIGRATE, lambda value: flag(SC_MIGRATE.key, value))),
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
    migrate = optional(body, SC_MIGRATE, lambda value: flag(SC_MIGRATE.key, value))
    wanted = [w for w in UPDATE_FIELDS if w is not SC_FORCE and body.get(w.key) is not None]
    if not wanted or (wanted == [SC_MIGRATE] and not migrate):  # force only qualifies a manage
        raise InvalidInput("Nothing to update; give at least one of description, location, group_id, name, "
                           "management-state, peer_group, install_values, bmc_password, bootstrap_values, "
                           "bootstrap_address, migrate.")
    management = optional(body, SC_MANAGEMENT, _management_state)
    force = optional(body, SC_FORCE, lambda value: flag(SC_FORCE.key, value))
    if force is not None and management is None:
        raise InvalidInput("force is only accepted together with management-state managed.")
    return SubcloudUpdate(
        name=optional(body, SC_NAME, parse_new_name),
        description=optional(body, SC_DESCRIPTION, lambda value: validate_text(SC_DESCRIPTION.key, value)),
        location=optional(body, SC_LOCATION, lambda value: validate_text(SC_LOCATION.key, value)),
        group=optional(body, SC_GROUP, group_ref), management_state=management, force=bool(force),
        peer_group=optional(body, SC_PEER_GROUP, _peer_group_move),
        install_values=parse_mapping(SC_INSTALL_VALUES.key, body.get(SC_INSTALL_VALUES.key)),
        bmc_password=optional(body, SC_BMC_PASSWORD, _bmc_password),
        bootstrap_values=parse_mapping(SC_BOOTSTRAP_VALUES.key, body.get(SC_BOOTSTRAP_VALUES.key)),
        bootstrap_address=optional(body, SC_BOOTSTRAP_ADDRESS,
                                    lambda value: bootstrap_address(value, SC_BOOTSTRAP_ADDRESS.key)),
        migrate=bool(migrate), release=optional(body, SC_UPDATE_RELEASE, validate_release))


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
