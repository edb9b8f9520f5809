"""Rules of peer group associations (geo-redundancy reference §1, §3)."""

from __future__ import annotations

from typing import Any

from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.states import AssociationSyncStatus, AssociationType

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
