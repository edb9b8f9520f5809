"""The phase state machine of one subcloud: install, bootstrap, config, rehome, network,
the two of a prestage, backup and restore.

    idle --start--> running --finish(ok)--> succeeded
                            --finish(ko)--> failed
                            --abort-------> aborted
    (any state but running) --start--> running

A *timed* phase (the simulator, or the real agent without a command for the phase) has no
task or timer of its own: it is running while `now < started + duration` and is settled
lazily, the next time anyone looks at the subcloud. 50,000 subclouds rehoming at once
therefore cost no timers at all. A *command* phase (`dcman.agent.commands`) is driven by its
task, which reports progress and calls `finish`.

A successful `bootstrap` or `rehome` makes the payload's `system_controller` (the calling
site's UUID), when given, the subcloud's system controller (a rehome that claimed the
subcloud with `takeover_from` made the claimer its controller at its start already:
dcman.agent.fencing). A successful `network` moves
the subcloud to the payload's `management_start_address` (the simulator answers there from then on).
A successful `backup` leaves the subcloud holding a backup of its release (dcman.agent.backups).
"""

from __future__ import annotations

import time
from typing import Any

from dcman.agent.subcloud import IDLE, SubcloudState

PHASES: tuple[str, ...] = ("install", "bootstrap", "config", "rehome", "network", "prestage-packages",
                           "prestage-images", "backup", "restore")
READDRESSES = "network"
SETS_CONTROLLER: frozenset[str] = frozenset({"bootstrap", "rehome"})
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
ABORTED = "aborted"
STATES: tuple[str, ...] = (IDLE, RUNNING, SUCCEEDED, FAILED, ABORTED)


class PhaseBusy(Exception):
    """A phase is already running on this subcloud."""


class NoPhaseRunning(Exception):
    """Abort asked while nothing runs."""


def settle(state: SubcloudState, now: float | None = None) -> None:
    """Finish a timed phase whose time is up (as succeeded, or failed when it was set to fail)."""
    if state.phase_state != RUNNING or not state.phase_timed:
        return
    now = time.monotonic() if now is None else now
    if now - state.phase_started < state.phase_duration:
        return
    if state.phase_fails:
        state.phase_progress = _timed_progress(state, now)
        finish(state, False, f"{state.phase} failed: simulated failure (fault fail_phase={state.phase}).")
    else:
        finish(state, True, f"{state.phase} complete.")


def start(state: SubcloudState, phase: str, payload: dict[str, Any], *, seconds: float, fails: bool = False,
          timed: bool = True, now: float | None = None) -> int:
    """Start `phase`; returns the run number a command task uses to tell its run from a later one.

    Raises PhaseBusy when a phase is running.
    """
    now = time.monotonic() if now is None else now
    settle(state, now)
    if state.phase_state == RUNNING:
        raise PhaseBusy(f"Phase {state.phase} is already running.")
    controller = payload.get("system_controller")
    state.phase = phase
    state.phase_state = RUNNING
    state.phase_progress = 0
    state.phase_message = f"{phase} in progress."
    state.phase_started = now
    state.phase_duration = max(0.0, seconds)
    state.phase_fails = fails
    state.phase_timed = timed
    state.phase_controller = controller if isinstance(controller, str) else None
    values = payload.get("bootstrap_values")
    gateway = values.get("systemcontroller_gateway_address") if isinstance(values, dict) else None
    state.phase_gateway = gateway if isinstance(gateway, str) else None
    address = payload.get("management_start_address") if phase == READDRESSES else None
    state.phase_address = address if isinstance(address, str) else None
    state.phase_task = None
    state.phase_run += 1
    return state.phase_run


def finish(state: SubcloudState, succeeded: bool, message: str) -> None:
    """End the running phase; a successful bootstrap or rehome adopts the calling site."""
    if state.phase_state != RUNNING:
        return
    state.phase_task = None
    state.phase_message = message
    if succeeded:
        state.phase_state = SUCCEEDED
        state.phase_progress = 100
        if state.phase in SETS_CONTROLLER and state.phase_controller is not None:
            if state.system_controller != state.phase_controller:
                state.heard_at = time.monotonic()  # a new controller is heard from its adoption on
            state.system_controller = state.phase_controller
            state.controller_gateway = state.phase_gateway
        if state.phase == READDRESSES and state.phase_address is not None:
            state.address = state.phase_address
        if state.phase == "backup":
            state.backup_release = state.software_version
            state.backup_length = state.backup_sha256 = None  # its own now, no longer an upload
    else:
        state.phase_state = FAILED


def abort(state: SubcloudState, now: float | None = None) -> None:
    """Abort the running phase (its command, if any, is killed). Raises NoPhaseRunning."""
    now = time.monotonic() if now is None else now
    settle(state, now)
    if state.phase_state != RUNNING:
        raise NoPhaseRunning("No phase is running.")
    if state.phase_timed:
        state.phase_progress = _timed_progress(state, now)
    task, state.phase_task = state.phase_task, None
    state.phase_state = ABORTED
    state.phase_message = f"{state.phase} aborted at {state.phase_progress}%."
    state.phase_run += 1  # a command task still finishing sees it is no longer current
    if task is not None:
        task.cancel()


def progress(state: SubcloudState, now: float) -> int:
    """0-100: a timed running phase rises linearly with time and shows 100 only once finished."""
    if state.phase_state == RUNNING and state.phase_timed:
        return _timed_progress(state, now)
    return state.phase_progress


def view(state: SubcloudState, now: float | None = None) -> dict[str, Any]:
    """The `GET /v1/phases/current` answer (settling a finished timed phase first)."""
    now = time.monotonic() if now is None else now
    settle(state, now)
    return {
        "phase": state.phase,
        "state": state.phase_state,
        "progress": progress(state, now),
        "message": state.phase_message,
    }


def _timed_progress(state: SubcloudState, now: float) -> int:
    if state.phase_duration <= 0:
        return 99
    return max(0, min(99, int(100 * (now - state.phase_started) / state.phase_duration)))
