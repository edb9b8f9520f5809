"""/v1.0/system-peers: the create and update commands and their schemas."""

from __future__ import annotations

from collections.abc import Mapping

from dcman.api.commands.wire import (
    Schema,
    Wire,
    nothing_to_update,
    object_schema,
    optional,
    refuse_unknown,
)
from dcman.domain import peers
from dcman.domain.commands import NewSystemPeer, SystemPeerUpdate
from dcman.domain.errors import InvalidInput
from dcman.domain.states import AdministrativeState, HeartbeatFailurePolicy
from dcman.domain.values import integer
from dcman.services.forms import decode_password

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
    refuse_unknown(body, PEER_FIELDS, _UNKNOWN_PEER_FIELD)
    for wire in PEER_REQUIRED:
        if body.get(wire.key) is None:
            raise InvalidInput(f"The {wire.key} is required.")
    password = _password(body[PEER_PASSWORD.key])
    return NewSystemPeer(
        peers.validate_peer_uuid(body[PEER_UUID.key]), peers.validate_peer_name(body[PEER_NAME.key]),
        peers.validate_manager_endpoint(body[PEER_ENDPOINT.key]),
        peers.validate_manager_username(body[PEER_USERNAME.key]), password,
        peers.validate_gateway_address(body[PEER_GATEWAY.key]),
        optional(body, PEER_ADMIN_STATE, peers.validate_administrative_state) or AdministrativeState.ENABLED,
        optional(body, PEER_INTERVAL, _interval) or peers.HEARTBEAT_INTERVAL[2],
        optional(body, PEER_THRESHOLD, _threshold) or peers.HEARTBEAT_FAILURE_THRESHOLD[2],
        optional(body, PEER_POLICY, peers.validate_heartbeat_failure_policy) or HeartbeatFailurePolicy.ALARM,
        optional(body, PEER_MAINTENANCE, _maintenance) or peers.HEARTBEAT_MAINTENANCE_TIMEOUT[2])


def system_peer_update(body: Mapping[str, object]) -> SystemPeerUpdate:
    refuse_unknown(body, PEER_FIELDS, _UNKNOWN_PEER_FIELD)
    update = SystemPeerUpdate(
        optional(body, PEER_UUID, peers.validate_peer_uuid), optional(body, PEER_NAME, peers.validate_peer_name),
        optional(body, PEER_ENDPOINT, peers.validate_manager_endpoint),
        optional(body, PEER_USERNAME, peers.validate_manager_username), optional(body, PEER_PASSWORD, _password),
        optional(body, PEER_GATEWAY, peers.validate_gateway_address),
        optional(body, PEER_ADMIN_STATE, peers.validate_administrative_state),
        optional(body, PEER_INTERVAL, _interval), optional(body, PEER_THRESHOLD, _threshold),
        optional(body, PEER_POLICY, peers.validate_heartbeat_failure_policy),
        optional(body, PEER_MAINTENANCE, _maintenance))
    if update == SystemPeerUpdate():
        raise nothing_to_update(PEER_FIELDS)
    return update
