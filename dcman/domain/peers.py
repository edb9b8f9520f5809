"""Rules of system peers (geo-redundancy reference §1, §2): the fields, their defaults and
ranges, and the heartbeat's hysteresis."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from urllib.parse import urlsplit

from dcman.domain.errors import InvalidInput
from dcman.domain.states import AdministrativeState, HeartbeatFailurePolicy, PeerAvailability
from dcman.domain.text import check_name_characters


@dataclass
class SystemPeer:
    id: int
    peer_uuid: str
    peer_name: str
    manager_endpoint: str
    manager_username: str
    manager_password: str  # a Fernet token, never the clear password
    peer_controller_gateway_address: str
    administrative_state: str
    heartbeat_interval: int
    heartbeat_failure_threshold: int
    heartbeat_failure_policy: str
    heartbeat_maintenance_timeout: int
    availability_state: str
    heartbeat_failures: int
    created_at: datetime | None
    updated_at: datetime | None
    last_heartbeat_at: datetime | None = None
    last_answered_at: datetime | None = None


# (minimum, maximum, default) of the integer fields.
HEARTBEAT_INTERVAL = (10, 600, 60)
HEARTBEAT_FAILURE_THRESHOLD = (1, 30, 3)
HEARTBEAT_MAINTENANCE_TIMEOUT = (300, 36000, 600)

REQUIRED_FIELDS = (
    "peer_uuid",
    "peer_name",
    "manager_endpoint",
    "manager_username",
    "manager_password",
    "peer_controller_gateway_address",
)
DEFAULTS: dict[str, Any] = {
    "administrative_state": AdministrativeState.ENABLED.value,
    "heartbeat_interval": HEARTBEAT_INTERVAL[2],
    "heartbeat_failure_threshold": HEARTBEAT_FAILURE_THRESHOLD[2],
    "heartbeat_failure_policy": HeartbeatFailurePolicy.ALARM.value,
    "heartbeat_maintenance_timeout": HEARTBEAT_MAINTENANCE_TIMEOUT[2],
}
PEER_FIELDS = REQUIRED_FIELDS + tuple(DEFAULTS)


def _text(field: str, value: Any, max_length: int = 255) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"The {field} must be a non-empty string.")
    if len(value) > max_length:
        raise InvalidInput(f"The {field} must be at most {max_length} characters long.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"The {field} must be valid UTF-8 text.") from None
    return value


def validate_peer_uuid(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("The peer_uuid must be a non-empty string.")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise InvalidInput(f"Invalid peer_uuid {value[:64]!r}; it must be a UUID.") from None


def validate_peer_name(value: Any) -> str:
    name = check_name_characters("peer_name", _text("peer_name", value))
    if name.isdigit():
        raise InvalidInput(f"The peer_name {name} must not consist of digits only.")
    return name


def validate_manager_endpoint(value: Any) -> str:
    endpoint = _text("manager_endpoint", value)
    try:
        parts = urlsplit(endpoint)
        parts.port  # raises ValueError on a port out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in endpoint):
        raise InvalidInput(f"Invalid manager_endpoint {endpoint[:64]!r}; it must be an http(s) URL.")
    return endpoint


def validate_manager_username(value: Any) -> str:
    return _text("manager_username", value)


def validate_gateway_address(value: Any) -> str:
    text = _text("peer_controller_gateway_address", value, 64)
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise InvalidInput(
            f"Invalid peer_controller_gateway_address {text!r}; it must be an IP address."
        ) from None


def validate_administrative_state(value: Any) -> str:
    try:
        return AdministrativeState(value).value
    except (ValueError, TypeError):
        raise InvalidInput(f"Invalid administrative_state {value!r}; it must be enabled or disabled.") from None


def validate_heartbeat_failure_policy(value: Any) -> str:
    try:
        return HeartbeatFailurePolicy(value).value
    except (ValueError, TypeError):
        raise InvalidInput(
            f"Invalid heartbeat_failure_policy {value!r}; it must be alarm, rehome or delegate."
        ) from None


def _integer(field: str, bounds: tuple[int, int, int]) -> Callable[[Any], int]:
    low, high, _ = bounds

    def validate(value: Any) -> int:
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer():  # JSON's 60.0 is the integer 60
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            shown = value if not isinstance(value, str) else value[:32]
            raise InvalidInput(f"Invalid {field} {shown!r}; it must be an integer from {low} to {high}.")
        return value

    return validate


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "peer_uuid": validate_peer_uuid,
    "peer_name": validate_peer_name,
    "manager_endpoint": validate_manager_endpoint,
    "manager_username": validate_manager_username,
    # manager_password is decoded by the service (base64, see services.forms.decode_password)
    "manager_password": lambda value: value,
    "peer_controller_gateway_address": validate_gateway_address,
    "administrative_state": validate_administrative_state,
    "heartbeat_interval": _integer("heartbeat_interval", HEARTBEAT_INTERVAL),
    "heartbeat_failure_threshold": _integer("heartbeat_failure_threshold", HEARTBEAT_FAILURE_THRESHOLD),
    "heartbeat_failure_policy": validate_heartbeat_failure_policy,
    "heartbeat_maintenance_timeout": _integer("heartbeat_maintenance_timeout", HEARTBEAT_MAINTENANCE_TIMEOUT),
}


def _reject_unknown(body: dict[str, Any]) -> None:
    unknown = sorted(str(key) for key in set(body) - set(PEER_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown system peer field(s): {', '.join(unknown)}.")


def validate_new_peer(body: dict[str, Any]) -> dict[str, Any]:
    """A create request: the identity, endpoint and credentials are required; the heartbeat
    settings and administrative state take the reference's defaults."""
    _reject_unknown(body)
    for field in REQUIRED_FIELDS:
        if body.get(field) is None:
            raise InvalidInput(f"The {field} is required.")
    values = {field: _VALIDATORS[field](body[field]) for field in REQUIRED_FIELDS}
    for field, default in DEFAULTS.items():
        values[field] = _VALIDATORS[field](body[field]) if body.get(field) is not None else default
    values["availability_state"] = PeerAvailability.CREATED.value
    values["heartbeat_failures"] = 0
    return values


def validate_peer_update(body: dict[str, Any]) -> dict[str, Any]:
    """An update request: at least one field, each valid."""
    _reject_unknown(body)
    changes = {field: _VALIDATORS[field](body[field]) for field in PEER_FIELDS if body.get(field) is not None}
    if not changes:
        raise InvalidInput(f"Nothing to update; give at least one of {', '.join(PEER_FIELDS)}.")
    return changes


def check_not_this_site(peer_uuid: str, site_uuid: str) -> None:
    if site_uuid and peer_uuid.lower() == site_uuid.lower():
        raise InvalidInput(f"The peer_uuid {peer_uuid} is this site's own UUID; a site cannot peer with itself.")


def check_peer_delete(peer: SystemPeer, association_count: int) -> None:
    if association_count:
        raise InvalidInput(
            f"System peer {peer.peer_name} is associated with {association_count} subcloud peer group(s); "
            "delete the associations first."
        )


@dataclass(frozen=True)
class PeerHealth:
    """What the heartbeat keeps of a peer: its availability and the failed beats in a row."""

    availability: PeerAvailability
    failures: int

    @classmethod
    def of(cls, peer: SystemPeer) -> PeerHealth:
        return cls(PeerAvailability(peer.availability_state), peer.heartbeat_failures)


def after_heartbeat(current: PeerHealth, ok: bool, threshold: int) -> PeerHealth:
    """The hysteresis of §2: a peer is `unavailable` after `threshold` failed beats in a row,
    and `available` again at the first beat it answers (the subcloud audit's rule is
    dcman.domain.audit.after_probe)."""
    if ok:
        return PeerHealth(PeerAvailability.AVAILABLE, 0)
    failures = current.failures + 1
    if failures >= threshold:
        return PeerHealth(PeerAvailability.UNAVAILABLE, failures)
    return PeerHealth(current.availability, failures)
