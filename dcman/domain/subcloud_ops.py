"""The rules of the subcloud operations that are not deploy phases: network reconfiguration
(lifecycle reference §2.6) and prestage (§1.1 prestage status, §2.3.4). Messages follow the
reference's where it has one."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from dcman.domain.commands import NetworkReconfiguration, PrestageRequest
from dcman.domain.deploy import RECOVERY
from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.network import OtherSubcloudNetwork, SystemControllerNetwork, validate_management_network
from dcman.domain.states import SECONDARY_STATES, DeployStatus, ManagementState
from dcman.domain.subcloud import NETWORK_RECONFIGURATION_FIELDS, Subcloud
from dcman.domain.transitions import Transition

# The agent phase that readdresses a subcloud.
NETWORK_PHASE = "network"
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


def check_network_request(subcloud: Subcloud, request: NetworkReconfiguration) -> None:
    """Everything §2.6 asks of the request and of the subcloud's state, before the addresses."""
    if subcloud.deploy_status in SECONDARY_STATES:
        raise StateRefused(f"Cannot perform on {subcloud.deploy_status} state subcloud.")
    if request.with_management_state:
        raise StateRefused("Management state and network reconfiguration must be updated separately.")
    if request.also_given:
        raise InvalidInput(f"Cannot update {', '.join(request.also_given)} together with a network reconfiguration; "
                           "update them separately.")
    if subcloud.management_state != ManagementState.UNMANAGED:
        raise StateRefused("A subcloud must be unmanaged to perform network reconfiguration.")
    if subcloud.deploy_status in TRANSIENT_STATES:
        raise StateRefused(f"Subcloud {subcloud.name} is {subcloud.deploy_status}; try again once that is over.")
    if not request.bootstrap_address:
        raise StateRefused("The bootstrap_address parameter is required for network reconfiguration.")
    fields = request.network_fields()
    if not all(value is not None for value in fields.values()):
        needed = ", ".join("--" + field.replace("_", "-") for field in NETWORK_RECONFIGURATION_FIELDS)
        raise StateRefused(f"The following parameters are necessary for subcloud network reconfiguration: {needed}.")
    for field in NETWORK_RECONFIGURATION_FIELDS:
        if str(fields[field]).strip() == getattr(subcloud, field):
            raise StateRefused(f"{field} already in use by the subcloud.")
    if not request.sysadmin_password:
        raise InvalidInput("subcloud sysadmin_password required")


def new_network(subcloud: Subcloud, request: NetworkReconfiguration, bootstrap_address: str,
                system_controller: SystemControllerNetwork, others: Iterable[OtherSubcloudNetwork]) -> NetworkChange:
    """The new network, checked as at add (N2, N4, N5, N7) and against the other subclouds'
    ranges and the site's subnet; each normalised value must still differ from the current one."""
    values = {_AS_BOOTSTRAP_KEY[field]: value for field, value in request.network_fields().items()}
    try:
        subnet, start, end, gateway = validate_management_network(
            values, system_controller, [other for other in others if other.name != subcloud.name])
    except InvalidInput as error:  # named as this request names them, not as bootstrap values do
        message = error.message
        for field, key in _AS_BOOTSTRAP_KEY.items():
            message = message.replace(key, field)
        raise InvalidInput(message) from None
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


# --- prestage -----------------------------------------------------------------------------------

PRESTAGE = "prestage"
PRESTAGING_PACKAGES = "prestaging-packages"
PRESTAGING_IMAGES = "prestaging-images"
PRESTAGE_COMPLETE = "complete"
PRESTAGE_FAILED = "failed"
# Each prestage status under way, the agent phase that carries it out, and the status after it.
PRESTAGE_STEPS: dict[str, tuple[str, str]] = {
    PRESTAGING_PACKAGES: ("prestage-packages", PRESTAGING_IMAGES),
    PRESTAGING_IMAGES: ("prestage-images", PRESTAGE_COMPLETE),
}
# §2.3.4: a prestage a restart cut short has failed.
PRESTAGE_RECOVERY: dict[str, str] = {status: PRESTAGE_FAILED for status in PRESTAGE_STEPS}


def interrupted_prestage(running: str) -> Transition:
    """A prestage a dead process was driving fails (§2.3.4), its request dropped."""
    return Transition({"prestage_status": PRESTAGE_RECOVERY[running], "operation_request": None,
                       "error_description": f"The site restarted while the subcloud was {running}."})


def is_major_release(text: str) -> bool:
    """A release named MM.mm (24.09), as a prestage asks for one."""
    major, dot, minor = text.partition(".")
    return bool(dot) and len(major) == 2 and len(minor) == 2 and (major + minor).isdigit() and major.isascii()


def check_prestage(subcloud: Subcloud, request: PrestageRequest, management_alarms: int) -> None:
    """The reference's prestage pre-checks, with its messages: online, managed, no operation
    under way, deployed, no prestage running, no management-affecting alarm unless forced."""
    if subcloud.deploy_status in SECONDARY_STATES:
        raise StateRefused(f"Cannot perform on {subcloud.deploy_status} state subcloud.")
    skipped = f"Prestage skipped '{subcloud.name}': "
    if subcloud.availability_status != "online":
        raise InvalidInput(skipped + "Subcloud is offline.")
    if subcloud.management_state != ManagementState.MANAGED:
        raise InvalidInput(skipped + "Subcloud is not managed.")
    if subcloud.deploy_status != DeployStatus.COMPLETE:
        raise InvalidInput(skipped + "Prestage operation is not allowed when subcloud deploy is in progress.")
    if subcloud.prestage_status and subcloud.prestage_status not in (PRESTAGE_FAILED, PRESTAGE_COMPLETE):
        raise InvalidInput(skipped + "Prestage operation is only allowed while subcloud prestage status is one of: "
                           f"{PRESTAGE_FAILED}, {PRESTAGE_COMPLETE}. The current prestage status is "
                           f"{subcloud.prestage_status}.")
    if request.for_sw_deploy and request.release < subcloud.software_version:
        raise InvalidInput(f"Prestage failed '{subcloud.name}': The requested software version "
                           f"({request.release}) is lower than the current subcloud software version "
                           f"({subcloud.software_version}).")
    if management_alarms and not request.force:
        raise InvalidInput(f"Prestage failed '{subcloud.name}': Subcloud has management affecting alarm(s). "
                           "Please resolve the alarm condition(s) or use --force option and try again.")


def prestage_request_document(request: PrestageRequest, password_token: str) -> str:
    """The stored request of a prestage: what each phase needs, the password as a token."""
    return json.dumps({"operation": PRESTAGE, "release": request.release, "for_sw_deploy": request.for_sw_deploy,
                       "password": password_token, "started": False})


def prestaged_versions(current: str | None, release: str) -> str:
    """The releases prestaged on the subcloud after one more: each once, in order."""
    versions = [v for v in (current or "").split(",") if v]
    return ",".join([*[v for v in versions if v != release], release])
