"""Availability audit rules (lifecycle reference §3.4–§3.8): who is audited, what a probe
means, the fail-count hysteresis and the alarm-summary roll-up."""

from __future__ import annotations

from dataclasses import dataclass

from dcman.domain.states import AvailabilityStatus, CloudStatus, DeployStatus, ManagementState, SyncStatus

# Failed probes in a row before an online subcloud is declared offline, and the counter's cap.
FAIL_COUNT_TO_OFFLINE = 2
FAIL_COUNT_MAX = 9999

# Deploy states in which a subcloud is audited (§3.4); failure states are included so that
# a failed subcloud can still be seen going offline.
AUDITED_DEPLOY_STATES: frozenset[str] = frozenset(
    s.value
    for s in (
        DeployStatus.COMPLETE,
        DeployStatus.CONFIGURING,
        DeployStatus.CONFIG_FAILED,
        DeployStatus.CONFIG_ABORTED,
        DeployStatus.PRE_CONFIG_FAILED,
        DeployStatus.INSTALL_FAILED,
        DeployStatus.INSTALL_ABORTED,
        DeployStatus.PRE_INSTALL_FAILED,
        DeployStatus.INSTALLING,
        DeployStatus.RESTORING,
        DeployStatus.RESTORE_PREP_FAILED,
        DeployStatus.RESTORE_FAILED,
        DeployStatus.REHOME_PENDING,
    )
)
# ...but these only while online: an offline one is expected to be unreachable.
AUDITED_ONLY_ONLINE: frozenset[str] = frozenset({DeployStatus.INSTALLING.value, DeployStatus.REHOME_PENDING.value})


def is_audited(deploy_status: str, availability: str) -> bool:
    if deploy_status not in AUDITED_DEPLOY_STATES:
        return False
    return not (deploy_status in AUDITED_ONLY_ONLINE and availability != AvailabilityStatus.ONLINE)


def is_healthy(status: object) -> bool:
    """Online iff the service-group list is non-empty and every group name has an active member."""
    groups = status.get("service_groups") if isinstance(status, dict) else None
    if not isinstance(groups, list) or not groups:
        return False
    names: set[str] = set()
    active: set[str] = set()
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            return False
        names.add(group["name"])
        if group.get("state") == "active":
            active.add(group["name"])
    return names == active


@dataclass(frozen=True)
class Availability:
    status: str
    fail_count: int


def after_probe(current: Availability, probe_ok: bool) -> Availability:
    """The hysteresis of §3.5: an online subcloud stays online through one failed probe and
    goes offline at the second; a good probe resets the count and brings it online."""
    if probe_ok:
        return Availability(AvailabilityStatus.ONLINE.value, 0)
    count = min(current.fail_count + 1, FAIL_COUNT_MAX)
    if current.status == AvailabilityStatus.ONLINE and count < FAIL_COUNT_TO_OFFLINE:
        return Availability(AvailabilityStatus.ONLINE.value, count)
    return Availability(AvailabilityStatus.OFFLINE.value, count)


def confirm_delay(interval: float) -> float:
    """How soon a subcloud's first failed probe is repeated, instead of a whole interval later:
    an offline subcloud is then seen about one interval after it went, and one lost probe still
    does not make it offline (the two-failure rule)."""
    return min(5.0, max(0.5, interval / 6))


# The audit writes a subcloud's error_description only to say why its agent's certificate was
# refused; the prefix tells its own text from the deploy errors it must never overwrite.
TLS_REFUSED = "TLS: the subcloud agent's certificate was refused: "


def audit_error_description(stored: str, tls_refusal: str | None) -> str | None:
    """The error_description to store after a probe, or None to leave the stored one: the
    refusal while it lasts (unless a deploy error is shown), back to no errors once it is over."""
    from dcman.domain.subcloud import NO_ERRORS

    if tls_refusal is not None:
        wanted = TLS_REFUSED + tls_refusal
        if stored != wanted and (stored in (NO_ERRORS, "") or stored.startswith(TLS_REFUSED)):
            return wanted
        return None
    return NO_ERRORS if stored.startswith(TLS_REFUSED) else None


def wants_alarm_summary(management_state: str, availability: str) -> bool:
    """The alarm summary is collected for managed, online subclouds only (§3.5, §3.8)."""
    return management_state == ManagementState.MANAGED and availability == AvailabilityStatus.ONLINE


@dataclass(frozen=True)
class AlarmCounts:
    critical: int
    major: int
    minor: int
    warnings: int

    @property
    def cloud_status(self) -> str:
        """critical if any critical; degraded if any major or minor; OK otherwise (§3.8);
        disabled while the counts are not available (-1)."""
        if self.critical < 0:
            return CloudStatus.DISABLED.value
        if self.critical > 0:
            return CloudStatus.CRITICAL.value
        if self.major > 0 or self.minor > 0:
            return CloudStatus.DEGRADED.value
        return CloudStatus.OK.value


UNAVAILABLE_COUNTS = AlarmCounts(-1, -1, -1, -1)


def parse_alarm_counts(body: object) -> AlarmCounts | None:
    """The agent's alarm summary, or None when it is not a well-formed one."""
    if not isinstance(body, dict):
        return None
    values = [body.get(key) for key in ("critical", "major", "minor", "warnings")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        return None
    return AlarmCounts(*values)


def accepted_sync_status(endpoint: str, status: str, availability: str, management_state: str,
                         deploy_status: str) -> bool:
    """Whether a reported endpoint sync status may be stored (§3.7)."""
    if deploy_status == DeployStatus.SECONDARY:
        return status == SyncStatus.UNKNOWN
    if status != SyncStatus.IN_SYNC:
        return True
    online = availability == AvailabilityStatus.ONLINE
    return online and (management_state == ManagementState.MANAGED or endpoint == "dc-cert")
