"""The deploy state machine (lifecycle reference §2.3): which step follows which, and what a
crash in the middle of a step leaves behind."""

from __future__ import annotations

from dcman.domain.states import DeployStatus

# A step that was running when the process died is not resumed blindly: it is moved to its
# failure state, from which the operator (or a later retry) can go on (§2.3.4).
RECOVERY: dict[DeployStatus, DeployStatus] = {
    DeployStatus.CREATING: DeployStatus.CREATE_FAILED,
}


def recovered_state(status: str) -> DeployStatus | None:
    """The state a subcloud found in `status` at start-up moves to, or None to leave it."""
    try:
        return RECOVERY.get(DeployStatus(status))
    except ValueError:
        return None
