"""Rules of peer group associations (geo-redundancy reference §1, §3)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.secrets import redact
from dcman.domain.states import AssociationSyncStatus, AssociationType
from dcman.domain.subcloud import Subcloud, rehome_data

MAX_PRIORITY = 65536


def _int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():  # JSON's 60.0 is the integer 60
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"Invalid {field} {value!r}; it must be an integer from {low} to {high}.")
    return value


def validate_new_association(body: dict[str, Any], from_peer: bool) -> dict[str, Any]:
    for field in ("peer_group_id", "system_peer_id"):
        if body.get(field) is None:
            raise InvalidInput(f"The {field} is required.")
    kind = body.get("association_type", AssociationType.PRIMARY.value)
    if kind != AssociationType.PRIMARY and not (from_peer and kind == AssociationType.NON_PRIMARY):
        raise InvalidInput("Only a peer site's sync creates non-primary associations.")
    return {
        "peer_group_id": _int("peer_group_id", body["peer_group_id"], 1, 2**31 - 1),
        "system_peer_id": _int("system_peer_id", body["system_peer_id"], 1, 2**31 - 1),
        "peer_group_priority": _int("peer_group_priority", body.get("peer_group_priority", 1), 1, MAX_PRIORITY),
        "association_type": kind,
    }


def check_primary_group(group_name: str, group_priority: int, association_type: str) -> None:
    """A primary association protects a group this site owns: priority 0 here."""
    if association_type == AssociationType.PRIMARY and group_priority != 0:
        raise StateRefused(f"Subcloud peer group {group_name} has priority {group_priority} here; only the "
                           "site where it has priority 0 associates it with a peer.")


def validate_association_update(body: dict[str, Any], from_peer: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if body.get("peer_group_priority") is not None:
        changes["peer_group_priority"] = _int("peer_group_priority", body["peer_group_priority"], 1, MAX_PRIORITY)
    if body.get("sync_status") is not None:
        if not from_peer:
            raise InvalidInput("sync_status is set by the peer site's sync, not by hand.")
        try:
            changes["sync_status"] = AssociationSyncStatus(body["sync_status"]).value
        except ValueError:
            raise InvalidInput(f"Invalid sync_status {body['sync_status']!r}.") from None
        changes["sync_message"] = body.get("sync_message") if isinstance(body.get("sync_message"), str) else None
    unknown = sorted(set(body) - {"peer_group_priority", "sync_status", "sync_message"})
    if unknown:
        raise InvalidInput(f"Unknown association field(s): {', '.join(unknown)}.")
    if not changes:
        raise InvalidInput("Nothing to update; give peer_group_priority.")
    return changes


def check_peer_copy(group_name: str, peer_copy_priority: int) -> None:
    """A group cannot be primary (priority 0) on both sites (geo-redundancy §3 step 3)."""
    if peer_copy_priority == 0:
        raise StateRefused(f"Peer group {group_name} has priority 0 on the peer site too; a group "
                           "cannot be primary on both sites.")


# --- the copy of a subcloud on the peer site (§3 step 5) ------------------------------------

GATEWAY_KEY = "systemcontroller_gateway_address"


@dataclass(frozen=True)
class SubcloudCopy:
    """Everything the peer site needs to take a subcloud over, as it is sent there: the
    bootstrap values (with the peer's own gateway), the address, the install values without
    secrets, and the fields an operator sees."""

    name: str
    region_name: str
    bootstrap_values: dict[str, Any]
    bootstrap_address: str
    description: str | None
    location: str | None
    release: str
    install_values: dict[str, Any] | None

    @property
    def rehome_data(self) -> dict[str, Any]:
        """The rehome data the peer stores from this copy (it removes the same secrets), as the
        peer's API shows it decoded: its values as JSON has them."""
        saved = rehome_data(self.bootstrap_values, self.bootstrap_address).saved_payload
        return json.loads(json.dumps({"saved_payload": saved}, default=str))


def subcloud_copy(subcloud: Subcloud, peer_gateway: str) -> SubcloudCopy | str:
    """The copy of `subcloud` for a peer reached through `peer_gateway` (the system peer's
    `peer_controller_gateway_address`: the subclouds' gateway towards the peer's own system
    controller subnet, as the reference puts it in every copy), or why there is none."""
    payload = None if subcloud.rehome is None else dict(subcloud.rehome.saved_payload)
    if not payload or not payload.get("bootstrap-address"):
        return f"subcloud {subcloud.name} has no rehome data to copy"
    payload = redact(payload)  # rows from before secrets were sealed apart may hold some
    address = str(payload.pop("bootstrap-address"))
    values = {**payload, "name": subcloud.name, GATEWAY_KEY: peer_gateway}
    install = subcloud.install_values
    return SubcloudCopy(name=subcloud.name, region_name=subcloud.region_name, bootstrap_values=values,
                        bootstrap_address=address, description=subcloud.description,
                        location=subcloud.location, release=subcloud.software_version,
                        install_values=redact(install) if isinstance(install, dict) else None)


def _decoded(value: Any) -> Any:
    """A JSON column as a peer's answer carries it: as text, or already decoded."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def copy_changes(copy: SubcloudCopy, there: dict[str, Any]) -> dict[str, Any]:
    """The update that brings the peer's copy `there` (a subcloud as the peer's API shows it)
    in line with `copy`; empty when it already is, so a resync sends only what differs."""
    changes: dict[str, Any] = {}
    for field, value in (("description", copy.description), ("location", copy.location)):
        if (there.get(field) or "") != (value or ""):  # no text and null read alike
            changes[field] = value or ""
    if there.get("software-version") != copy.release:
        changes["release"] = copy.release
    if _decoded(there.get("rehome_data")) != copy.rehome_data:
        changes["bootstrap_values"] = copy.bootstrap_values
        changes["bootstrap_address"] = copy.bootstrap_address
    if copy.install_values is not None and _decoded(there.get("data_install")) != copy.install_values:
        changes["install_values"] = copy.install_values
    return changes
