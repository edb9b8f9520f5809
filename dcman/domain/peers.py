"""Rules of system peers (geo-redundancy reference §1, §2): the fields, their defaults and
ranges, and the heartbeat's hysteresis."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from dcman.domain.errors import InvalidInput
from dcman.domain.states import AdministrativeState, HeartbeatFailurePolicy, PeerAvailability
from dcman.domain.text import check_name_characters
from dcman.domain.values import choice, text


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


def validate_peer_uuid(value: object) -> str:
    given = text("peer_uuid", value)
    try:
        return str(uuid.UUID(given.strip()))
    except ValueError:
        raise InvalidInput(f"Invalid peer_uuid {given[:64]!r}; it must be a UUID.") from None


def validate_peer_name(value: object) -> str:
    name = check_name_characters("peer_name", text("peer_name", value))
    if name.isdigit():
        raise InvalidInput(f"The peer_name {name} must not consist of digits only.")
    return name


def validate_manager_endpoint(value: object) -> str:
    endpoint = text("manager_endpoint", value)
    try:
        parts = urlsplit(endpoint)
        parts.port  # raises ValueError on a port out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in endpoint):
        raise InvalidInput(f"Invalid manager_endpoint {endpoint[:64]!r}; it must be an http(s) URL.")
    return endpoint


def validate_manager_username(value: object) -> str:
    return text("manager_username", value)


def validate_gateway_address(value: object) -> str:
    address = text("peer_controller_gateway_address", value, 64)
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        raise InvalidInput(f"Invalid peer_controller_gateway_address {address!r}; it must be an IP address.") from None


def validate_administrative_state(value: object) -> AdministrativeState:
    return choice(AdministrativeState, value, f"Invalid administrative_state {value!r}; it must be enabled or disabled.")


def validate_heartbeat_failure_policy(value: object) -> HeartbeatFailurePolicy:
    return choice(HeartbeatFailurePolicy, value,
                  f"Invalid heartbeat_failure_policy {value!r}; it must be alarm, rehome or delegate.")


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
