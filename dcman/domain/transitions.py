"""Subcloud transitions: what one change of a subcloud writes and what follows from it.

Domain rules build a Transition with `transition(before, **changes)`; dcman.db.subclouds.
apply_transition alone writes one, in the caller's transaction. The consequences of a change
(a failed rehome drops its plan, leaving management resets the endpoint statuses and the alarm
summary, a secondary copy loses its offline alarm, which loops to wake) are decided here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from dcman.domain.alarms import AlarmId
from dcman.domain.audit import AUDITED_DEPLOY_STATES
from dcman.domain.deploy import REHOME_ENDED_FAILED
from dcman.domain.states import REHOMING_STATES, SECONDARY_STATES, AvailabilityStatus, DeployStatus, ManagementState
from dcman.domain.subcloud import Subcloud, endpoints_kept_on_unmanage


class Wake(StrEnum):
    """A loop to wake once the transition is committed (the names of SiteContext.wakeups)."""

    AUDIT = "audit"
    MIGRATION = "migration"


class SubcloudState(NamedTuple):
    """The three states the consequences of a change depend on."""

    deploy_status: DeployStatus
    management_state: ManagementState
    availability_status: AvailabilityStatus


def _state_of(subcloud: Subcloud) -> SubcloudState:
    return SubcloudState(subcloud.deploy_status, subcloud.management_state, subcloud.availability_status)


@dataclass(frozen=True)
class Transition:
    """Entity attributes to set, and what follows: `reset_endpoints` lists the endpoints that keep
    their status when the others go back to unknown (None: no reset)."""

    changes: dict[str, object]
    reset_endpoints: tuple[str, ...] | None = None
    reset_alarm_summary: bool = False
    clear_alarms: tuple[AlarmId, ...] = ()
    wake: frozenset[Wake] = field(default_factory=frozenset)


def endpoints_kept(before: SubcloudState, after: SubcloudState) -> tuple[str, ...] | None:
    """Which endpoint statuses survive a change, or None when it resets none: a subcloud that
    goes offline, becomes a secondary copy or leaves management loses them (§2.4, §3.5); an
    unmanaged one keeps dc-cert, which is still audited, unless secondary or rehome-pending."""
    if after.deploy_status == DeployStatus.SECONDARY and before.deploy_status != DeployStatus.SECONDARY:
        return ()
    if after.availability_status == AvailabilityStatus.OFFLINE != before.availability_status:
        return ()
    if after.management_state == ManagementState.UNMANAGED != before.management_state:
        return endpoints_kept_on_unmanage(after.deploy_status)
    return None


def transition(before: Subcloud | SubcloudState, **changes: object) -> Transition:
    """The transition that sets `changes` (entity attributes) on a subcloud now in `before`."""
    was = _state_of(before) if isinstance(before, Subcloud) else before
    now = SubcloudState(
        DeployStatus(changes.get("deploy_status", was.deploy_status)),
        ManagementState(changes.get("management_state", was.management_state)),
        AvailabilityStatus(changes.get("availability_status", was.availability_status)))
    if "deploy_status" in changes and now.deploy_status in REHOME_ENDED_FAILED:
        changes["plan"] = ()  # a failed rehome waits for the next migrate, which queues it again
    wake: set[Wake] = set()
    if now.deploy_status != was.deploy_status and AUDITED_DEPLOY_STATES.intersection({now.deploy_status,
                                                                                       was.deploy_status}):
        wake.add(Wake.AUDIT)  # it audits by deploy status: reload into, out of, or within the audited ones
    if was.deploy_status in REHOMING_STATES and now.deploy_status not in REHOMING_STATES:
        wake.add(Wake.MIGRATION)  # a rehome slot of its peer group is free for the next one
    kept = endpoints_kept(was, now)
    leaves_management = now.management_state == ManagementState.UNMANAGED != was.management_state
    # A secondary copy is not audited: its offline alarm would never clear (§2.4).
    secondary = now.deploy_status in SECONDARY_STATES and was.deploy_status not in SECONDARY_STATES
    return Transition(changes, reset_endpoints=kept, reset_alarm_summary=leaves_management,
                      clear_alarms=(AlarmId.SUBCLOUD_OFFLINE,) if secondary else (), wake=frozenset(wake))
