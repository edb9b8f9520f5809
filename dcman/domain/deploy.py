"""The deploy state machine (lifecycle reference §2.3): the phases, which state may start
which operation, what remains to run on resume, and what a crash leaves behind."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dcman.domain.errors import InvalidInput, StateRefused
from dcman.domain.states import SECONDARY_STATES, AvailabilityStatus, DeployStatus as S, ManagementState


class Step(StrEnum):
    """A step of a deploy plan. `complete` is the bookkeeping step that ends a deploy without config."""

    INSTALL = "install"
    BOOTSTRAP = "bootstrap"
    CONFIG = "config"
    COMPLETE = "complete"
    REHOME = "rehome"  # a peer-group migration takes the subcloud over (geo-redundancy §4)


@dataclass(frozen=True)
class PhaseStates:
    pre: S
    pre_failed: S
    running: S
    done: S
    failed: S
    aborting: S
    aborted: S


PHASES: dict[Step, PhaseStates] = {
    Step.INSTALL: PhaseStates(S.PRE_INSTALL, S.PRE_INSTALL_FAILED, S.INSTALLING, S.INSTALL_COMPLETE,
                              S.INSTALL_FAILED, S.ABORTING_INSTALL, S.INSTALL_ABORTED),
    Step.BOOTSTRAP: PhaseStates(S.PRE_BOOTSTRAP, S.PRE_BOOTSTRAP_FAILED, S.BOOTSTRAPPING, S.BOOTSTRAP_COMPLETE,
                                S.BOOTSTRAP_FAILED, S.ABORTING_BOOTSTRAP, S.BOOTSTRAP_ABORTED),
    Step.CONFIG: PhaseStates(S.PRE_CONFIG, S.PRE_CONFIG_FAILED, S.CONFIGURING, S.COMPLETE,
                             S.CONFIG_FAILED, S.ABORTING_CONFIG, S.CONFIG_ABORTED),
    # A rehome is not aborted: its "aborting" state is its running state, never entered by abort.
    Step.REHOME: PhaseStates(S.PRE_REHOME, S.REHOME_PREP_FAILED, S.REHOMING, S.COMPLETE,
                             S.REHOME_FAILED, S.REHOMING, S.REHOME_FAILED),
}

# Where each phased-deploy operation may start from (§2.3.2).
ALLOWED_FROM: dict[Step, frozenset[S]] = {
    Step.INSTALL: frozenset({S.CREATE_COMPLETE, S.PRE_INSTALL_FAILED, S.INSTALL_FAILED, S.INSTALL_COMPLETE,
                             S.INSTALL_ABORTED}),
    Step.BOOTSTRAP: frozenset({S.INSTALL_COMPLETE, S.PRE_BOOTSTRAP_FAILED, S.BOOTSTRAP_FAILED, S.BOOTSTRAP_ABORTED,
                               S.BOOTSTRAP_COMPLETE, S.CREATE_COMPLETE}),
    Step.CONFIG: frozenset({S.COMPLETE, S.PRE_CONFIG_FAILED, S.CONFIG_FAILED, S.BOOTSTRAP_COMPLETE,
                            S.CONFIG_ABORTED}),
    Step.COMPLETE: frozenset({S.BOOTSTRAP_COMPLETE}),
}

# What still has to run when a deploy is resumed from a state (§2.3.2, resume table).
RESUME_FROM: dict[S, tuple[Step, ...]] = {
    **{s: (Step.INSTALL, Step.BOOTSTRAP, Step.CONFIG)
       for s in (S.CREATE_COMPLETE, S.PRE_INSTALL_FAILED, S.INSTALL_FAILED, S.INSTALL_ABORTED)},
    **{s: (Step.BOOTSTRAP, Step.CONFIG)
       for s in (S.INSTALL_COMPLETE, S.PRE_BOOTSTRAP_FAILED, S.BOOTSTRAP_FAILED, S.BOOTSTRAP_ABORTED)},
    **{s: (Step.CONFIG,) for s in (S.BOOTSTRAP_COMPLETE, S.PRE_CONFIG_FAILED, S.CONFIG_FAILED, S.CONFIG_ABORTED)},
    # dcman's addition: a create cut short by a restart (§2.3.4) is resumed by creating again,
    # then running every phase; the reference leaves it to a redeploy, which needs install values.
    S.CREATE_FAILED: (Step.INSTALL, Step.BOOTSTRAP, Step.CONFIG),
}
# Where a resume from one of these states starts instead of the first phase's pre-X.
RESUME_STARTS_AT: dict[S, S] = {S.CREATE_FAILED: S.CREATING}

# A step that was running when the process died is not resumed blindly: it moves to its
# failure state, from which the operator resumes or redeploys (§2.3.4). `not-deployed` is
# not here: dcman's create step is a reconciler that simply picks it up again.
RECOVERY: dict[S, S] = {S.CREATING: S.CREATE_FAILED}
for _states in PHASES.values():
    RECOVERY.update({_states.pre: _states.pre_failed, _states.running: _states.failed,
                     _states.aborting: _states.failed})
RECOVERY.update({S.PRE_RESTORE: S.RESTORE_PREP_FAILED, S.RESTORING: S.RESTORE_FAILED,
                 S.PRE_REHOME: S.REHOME_PREP_FAILED, S.REHOMING: S.REHOME_FAILED,
                 S.RECONFIGURING_NETWORK: S.NETWORK_RECONFIGURATION_FAILED})

# A failed rehome waits for the next migrate, not for the queue: its plan is dropped.
REHOME_ENDED_FAILED = frozenset({S.REHOME_FAILED, S.REHOME_PREP_FAILED})

# States from which the reconciler starts the next step of the plan.
RESTING = frozenset({S.CREATE_COMPLETE, S.INSTALL_COMPLETE, S.BOOTSTRAP_COMPLETE})
MAX_ERROR_TEXT = 2048


def recovered_state(status: str) -> S | None:
    """The state a subcloud found in `status` at start-up moves to, or None to leave it."""
    try:
        return RECOVERY.get(S(status))
    except ValueError:
        return None


def phase_of(status: str) -> tuple[Step, PhaseStates] | None:
    """The phase a pre-X, X-ing or aborting-X state belongs to."""
    for step, states in PHASES.items():
        if status in (states.pre, states.running, states.aborting):
            return step, states
    return None


def full_plan(has_install: bool, has_config: bool) -> list[Step]:
    """The steps a one-shot `subcloud add` runs after create (§2.1)."""
    return [*([Step.INSTALL] if has_install else []), Step.BOOTSTRAP, Step.CONFIG if has_config else Step.COMPLETE]


def resume_plan(status: str, has_install: bool, has_config: bool) -> list[Step]:
    """Resume: the remaining steps, install skipped without install values, config replaced
    by complete without a deploy config (§2.3.2)."""
    try:
        steps = RESUME_FROM[S(status)]
    except (ValueError, KeyError):
        raise StateRefused(f"A deploy cannot be resumed from deploy status {status}.") from None
    plan = [s for s in steps if s is not Step.INSTALL or has_install]
    return [Step.COMPLETE if s is Step.CONFIG and not has_config else s for s in plan]


def check_phase_request(name: str, status: str, step: Step) -> None:
    """The precondition table of §2.3.2 for one phased-deploy operation."""
    if status not in {s.value for s in ALLOWED_FROM[step]}:
        allowed = ", ".join(sorted(ALLOWED_FROM[step]))
        raise StateRefused(f"Subcloud {name} cannot start {step} from deploy status {status}; it must be one of: "
                           f"{allowed}.")


def check_abort(name: str, status: str) -> PhaseStates:
    for step, states in PHASES.items():
        if status == states.running and step is not Step.REHOME:
            return states
    raise StateRefused(f"Subcloud {name} can be aborted only while installing, bootstrapping or configuring "
                       f"(it is {status}).")


def check_redeploy(name: str, status: str, availability: str, management: str, has_install: bool) -> None:
    if status in SECONDARY_STATES:
        raise StateRefused(f"Subcloud {name} is a secondary subcloud and cannot be redeployed.")
    if management != ManagementState.UNMANAGED or availability != AvailabilityStatus.OFFLINE:
        raise StateRefused(f"Subcloud {name} must be offline and unmanaged to be redeployed.")
    if not has_install:
        raise InvalidInput(f"Redeploying subcloud {name} needs install values; none are stored or given.")


def error_text(message: str) -> str:
    """The error description stored for a failure: the agent's message, cut to the column."""
    text = message.strip() or "The phase failed without a message."
    return text if len(text) <= MAX_ERROR_TEXT else "…" + text[-(MAX_ERROR_TEXT - 1):]


# A running phase is looked at again at most this long after the last look...
POLL_S = 0.5
# ...and at least this long after it: what a phase that is behind its own pace costs.
MIN_POLL_S = 0.05


@dataclass(frozen=True)
class Look:
    """One look at a running phase: when it was asked for (monotonic seconds) and its progress."""

    at: float
    progress: int


def next_look_s(since: Look, now: Look) -> float:
    """How long after `now` to look at a running phase again: when its progress, rising at
    the pace it kept since `since`, reaches 100 %, so that its end is seen as it happens
    rather than up to POLL_S later; POLL_S while it shows no pace. Between MIN_POLL_S and POLL_S."""
    gained, elapsed = now.progress - since.progress, now.at - since.at
    if gained <= 0 or elapsed <= 0:
        return POLL_S
    remaining = (100 - now.progress) * elapsed / gained
    return min(POLL_S, max(MIN_POLL_S, remaining + MIN_POLL_S))
