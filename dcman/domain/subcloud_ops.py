"""The rules of the subcloud operations that are not deploy phases: network reconfiguration
(lifecycle reference §2.6) and prestage (§1.1 prestage status, §2.3.4). Messages follow the
reference's where it has one."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dcman.domain.deploy import RECOVERY
from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.network import OtherSubcloudNetwork, SystemControllerNetwork, validate_management_network
from dcman.domain.states import DeployStatus, ManagementState
from dcman.domain.subcloud import NETWORK_RECONFIGURATION_FIELDS, SECONDARY_STATES, Subcloud

# The agent phase that readdresses a subcloud, and the fields a reconfiguration request may carry.
NETWORK_PHASE = "network"
NETWORK_REQUEST_FIELDS = (*NETWORK_RECONFIGURATION_FIELDS, "bootstrap_address", "sysadmin_password")
# A subcloud in one of these states has an operation of its own under way.
TRANSIENT_STATES = frozenset({*RECOVERY, DeployStatus.NOT_DEPLOYED, DeployStatus.RECONFIGURING_NETWORK})
_AS_BOOTSTRAP_KEY = {"management_subnet": "management_subnet", "management_start_ip": "management_start_address",
                     "management_end_ip": "management_end_address",
                     "management_gateway_ip": "management_gateway_address"}


@dataclass(frozen=True)
class NetworkChange:
    """The new management network a reconfiguration moves a subcloud to (normalised)."""

    management_subnet: str
    management_start_ip: str
    management_end_ip: str
    management_gateway_ip: str
    bootstrap_address: str

    def agent_payload(self) -> dict[str, str]:
        """What the agent's network phase needs, under the bootstrap values' key names."""
        return {"management_subnet": self.management_subnet, "management_start_address": self.management_start_ip,
                "management_end_address": self.management_end_ip,
                "management_gateway_address": self.management_gateway_ip, "bootstrap_address": self.bootstrap_address}


def asks_network_reconfiguration(body: Mapping[str, Any]) -> bool:
    """An update with any management network field is a network reconfiguration (§2.6)."""
    return any(body.get(field) is not None for field in NETWORK_RECONFIGURATION_FIELDS)


def check_network_request(subcloud: Subcloud, body: Mapping[str, Any]) -> None:
    """Everything §2.6 asks of the request and of the subcloud's state, before the addresses."""
    if subcloud.deploy_status in SECONDARY_STATES:
        raise StateRefused(f"Cannot perform on {subcloud.deploy_status} state subcloud.")
    if body.get("management-state") is not None:
        raise StateRefused("Management state and network reconfiguration must be updated separately.")
    others = sorted(set(body) - set(NETWORK_REQUEST_FIELDS))
    if others:
        raise InvalidInput(f"Cannot update {', '.join(others)} together with a network reconfiguration; "
                           "update them separately.")
    if subcloud.management_state != ManagementState.UNMANAGED:
        raise StateRefused("A subcloud must be unmanaged to perform network reconfiguration.")
    if subcloud.deploy_status in TRANSIENT_STATES:
        raise StateRefused(f"Subcloud {subcloud.name} is {subcloud.deploy_status}; try again once that is over.")
    if not body.get("bootstrap_address"):
        raise StateRefused("The bootstrap_address parameter is required for network reconfiguration.")
    if not all(body.get(field) is not None for field in NETWORK_RECONFIGURATION_FIELDS):
        needed = ", ".join("--" + field.replace("_", "-") for field in NETWORK_RECONFIGURATION_FIELDS)
        raise StateRefused(f"The following parameters are necessary for subcloud network reconfiguration: {needed}.")
    for field in NETWORK_RECONFIGURATION_FIELDS:
        if str(body[field]).strip() == getattr(subcloud, field):
            raise StateRefused(f"{field} already in use by the subcloud.")
    if not body.get("sysadmin_password"):
        raise InvalidInput("subcloud sysadmin_password required")


def new_network(subcloud: Subcloud, body: Mapping[str, Any], bootstrap_address: str,
                system_controller: SystemControllerNetwork, others: Iterable[OtherSubcloudNetwork]) -> NetworkChange:
    """The new network, checked as at add (N2, N4, N5, N7) and against the other subclouds'
    ranges and the site's subnet; each normalised value must still differ from the current one."""
    values = {_AS_BOOTSTRAP_KEY[field]: body[field] for field in NETWORK_RECONFIGURATION_FIELDS}
    subnet, start, end, gateway = validate_management_network(
        values, system_controller, [other for other in others if other.name != subcloud.name])
    change = NetworkChange(subnet, start, end, gateway, bootstrap_address)
    for field in NETWORK_RECONFIGURATION_FIELDS:
        if getattr(change, field) == getattr(subcloud, field):
            raise StateRefused(f"{field} already in use by the subcloud.")
    return change


def network_request_document(change: NetworkChange, password_token: str) -> str:
    """The stored request of a reconfiguration: the new network and the given password (a token)."""
    return json.dumps({"operation": NETWORK_PHASE, "network": asdict(change), "password": password_token,
                       "started": False})


def parse_request(text: str | None, operation: str) -> dict[str, Any] | None:
    """A stored request of this operation, or None when there is none (or it is another's)."""
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) and document.get("operation") == operation else None
