"""Rules of peer group associations (geo-redundancy reference §1, §3)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from collections.abc import Mapping

from dcman.domain.commands import AssociationUpdate, NewAssociation
from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.secrets import redact
from dcman.domain.states import AssociationType
from dcman.domain.subcloud import Subcloud, rehome_data

MAX_PRIORITY = 65536


def check_operator_association(command: NewAssociation) -> None:
    """An operator creates primary associations; the non-primary one is the peer site's copy."""
    if command.association_type is not AssociationType.PRIMARY:
        raise InvalidInput("Only a peer site's sync creates non-primary associations.")


def check_primary_group(group_name: str, group_priority: int, association_type: str) -> None:
    """A primary association protects a group this site owns: priority 0 here."""
    if association_type == AssociationType.PRIMARY and group_priority != 0:
        raise StateRefused(f"Subcloud peer group {group_name} has priority {group_priority} here; only the "
                           "site where it has priority 0 associates it with a peer.")


def check_operator_association_update(update: AssociationUpdate) -> None:
    """The sync status is the peer site's to report."""
    if update.sync_status is not None:
        raise InvalidInput("sync_status is set by the peer site's sync, not by hand.")


def check_peer_copy(group_name: str, peer_copy_priority: int) -> None:
    """A group cannot be primary (priority 0) on both sites (geo-redundancy §3 step 3)."""
    if peer_copy_priority == 0:
        raise StateRefused(f"Peer group {group_name} has priority 0 on the peer site too; a group "
                           "cannot be primary on both sites.")


def protection(site_uuid: str, group_priority: int, peers: list[tuple[str, int]]) -> list[dict[str, object]]:
    """The sites protecting a group, as the sync sends them to every copy: this site with the
    group's priority here, and each associated peer (uuid, priority there). A standby reads
    from it who is ahead of it in the takeover order (dcman.domain.failover)."""
    entries = [{"peer_uuid": site_uuid, "priority": group_priority}]
    entries += [{"peer_uuid": uuid, "priority": priority} for uuid, priority in peers]
    return entries


# --- the copy of a subcloud on the peer site (§3 step 5) ------------------------------------

GATEWAY_KEY = "systemcontroller_gateway_address"


@dataclass(frozen=True)
class SubcloudCopy:
    """Everything the peer site needs to take a subcloud over, as it is sent there: the
    bootstrap values (with the peer's own gateway), the address, the install values without
    secrets, and the fields an operator sees."""

    name: str
    region_name: str
    bootstrap_values: dict[str, object]
    bootstrap_address: str
    description: str | None
    location: str | None
    release: str
    install_values: dict[str, object] | None

    @property
    def rehome_data(self) -> dict[str, object]:
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


def _decoded(value: object) -> object:
    """A JSON column as a peer's answer carries it: as text, or already decoded."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def copy_changes(copy: SubcloudCopy, there: Mapping[str, object]) -> dict[str, object]:
    """The update that brings the peer's copy `there` (a subcloud as the peer's API shows it)
    in line with `copy`; empty when it already is, so a resync sends only what differs."""
    changes: dict[str, object] = {}
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
