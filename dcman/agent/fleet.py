"""The simulated fleet: up to 50,000 subclouds in one process, and their faults.

A subcloud's state is created the first time anything touches it (a connection to its
address, a fault, a listing of a modified one); until then its identity is computed from its
index (`dcman.agent.addressing`) and its faults are the defaults. The states live in one list
indexed by subcloud number, so finding the subcloud of a connection costs one address parse
and one list lookup. A subcloud moved by a network reconfiguration answers only at its new
address (a small map of moved addresses, looked at first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from dcman.agent import addressing, phases
from dcman.agent.subcloud import ALARM_KEYS, DEFAULT_SOFTWARE_VERSION, NO_ALARMS, SubcloudState

FAULT_FIELDS: tuple[str, ...] = ("reachable", "healthy", "alarms", "fail_phase", "phase_seconds", "status_seconds",
                                 "backup_mb", "blocked_sites")
MAX_BACKUP_MB = 100 * 1024
MAX_BLOCKED_SITES = 16
MAX_SITE_CHARS = 64


class FaultError(ValueError):
    """A fault change the simulator cannot apply; the message names the field."""


class Fleet:
    """Every simulated subcloud, by index."""

    def __init__(self, count: int, *, systemcontroller_gateway: str = "127.0.0.1", phase_seconds: float = 0.5,
                 software_version: str = DEFAULT_SOFTWARE_VERSION, backup_mb: float = 1.0) -> None:
        if not 0 < count <= addressing.MAX_COUNT:
            raise ValueError(f"count must be between 1 and {addressing.MAX_COUNT}")
        self.count = count
        self.systemcontroller_gateway = systemcontroller_gateway
        self.phase_seconds = phase_seconds
        self.backup_mb = backup_mb
        self.software_version = software_version
        self._states: list[SubcloudState | None] = [None] * count
        # Addresses network phases moved (or are moving) subclouds to, and whose they are.
        self._moved: dict[str, int] = {}

    # --- lookup -------------------------------------------------------------------------

    def state(self, index: int) -> SubcloudState:
        """The state of subcloud `index`, created on first use."""
        state = self._states[index]
        if state is None:
            name = addressing.name_of(index)
            state = SubcloudState(name, addressing.region_name(name), self.software_version)
            self._states[index] = state
        return state

    def index_of_address(self, address: str) -> int | None:
        """The subcloud answering at `address` now: its first address until a network phase
        moved it, then only the new one."""
        index = self._moved.get(address) if self._moved else None
        if index is not None:
            state = self.state(index)
            phases.settle(state)  # a finished move is seen by the first connection to the new address
            if state.address == address:
                return index
        index = addressing.index_of_address(address, self.count)
        if index is None:
            return None
        state = self._states[index]
        if state is not None and state.address is not None and state.address != address:
            return None
        return index

    def readdress(self, state: SubcloudState, address: str) -> None:
        """A network phase started: the subcloud will answer at `address` once it succeeds."""
        index = self.index_of_name(state.name)
        if index is not None:
            self._moved[address] = index

    def index_of_name(self, name: str) -> int | None:
        return addressing.index_of_name(name, self.count)

    def touched(self) -> Iterator[SubcloudState]:
        """The states created so far."""
        return (state for state in self._states if state is not None)

    @property
    def first_address(self) -> str:
        return addressing.agent_address(0)

    @property
    def last_address(self) -> str:
        return addressing.agent_address(self.count - 1)

    # --- faults -------------------------------------------------------------------------

    def apply(self, indexes: Iterable[int], changes: dict[str, Any]) -> int:
        """Apply validated fault changes (from `parse_faults`) to these subclouds."""
        applied = 0
        for index in indexes:
            state = self.state(index)
            for name, value in changes.items():
                setattr(state, name, value)
            applied += 1
        return applied

    def reset(self) -> int:
        """Every subcloud back to reachable, healthy and without faults; returns how many had
        a state (the others never left the defaults)."""
        reset = 0
        for state in self.touched():
            state.clear_faults()
            reset += 1
        return reset

    # --- the control API's view ---------------------------------------------------------

    def settle_all(self, now: float) -> None:
        """Settle every finished timed phase, so a listing built off the loop only reads."""
        for state in self.touched():
            if state.phase_state == phases.RUNNING:
                phases.settle(state, now)

    def settle_one(self, index: int, now: float) -> None:
        state = self._states[index]
        if state is not None:
            phases.settle(state, now)

    def item(self, index: int, now: float) -> dict[str, Any]:
        """One subcloud as `GET /sim/subclouds` lists it. Reads only: safe off the loop."""
        state = self._states[index]
        name = addressing.name_of(index) if state is None else state.name
        if state is None:
            faults = {"reachable": True, "healthy": True, "alarms": dict(zip(ALARM_KEYS, NO_ALARMS)),
                      "fail_phase": None, "phase_seconds": self.phase_seconds, "status_seconds": 0.0,
                      "backup_mb": self.backup_mb, "blocked_sites": []}
            phase = {"phase": None, "state": "idle", "progress": 0, "message": ""}
        else:
            faults = state.fault_document(self.phase_seconds, self.backup_mb)
            phase = {"phase": state.phase, "state": state.phase_state,
                     "progress": phases.progress(state, now), "message": state.phase_message}
        values = addressing.bootstrap_values(index, self.systemcontroller_gateway)
        return {
            "name": name,
            "region_name": addressing.region_name(name) if state is None else state.region_name,
            "management_start_ip": values["management_start_address"] if state is None or state.address is None
            else state.address,
            "system_controller": None if state is None else state.system_controller,
            "systemcontroller_gateway": None if state is None else state.controller_gateway,
            "faults": faults,
            "probes": 0 if state is None else state.probes,
            "overlaps": 0 if state is None else state.overlaps,
            "fencing_epoch": 0 if state is None else state.fencing_epoch,
            "controller_heard_s": None if state is None else state.controller_heard_s(now),
            "double_controller": 0 if state is None else state.double_controller,
            "phase": phase,
            "backup_release": None if state is None else state.backup_release,
            "uploads": 0 if state is None else state.uploads,
            "bootstrap_values": values,
        }


def parse_faults(document: dict[str, Any]) -> dict[str, Any]:
    """Validated fault changes as SubcloudState attribute values; FaultError names a bad field."""
    changes: dict[str, Any] = {}
    for name, value in document.items():
        if name not in FAULT_FIELDS:
            raise FaultError(f"Unknown field {name!r}; faults are {', '.join(FAULT_FIELDS)}.")
        if name in ("reachable", "healthy"):
            if not isinstance(value, bool):
                raise FaultError(f"{name} must be true or false.")
            changes[name] = value
        elif name == "alarms":
            changes[name] = _parse_alarms(value)
        elif name == "fail_phase":
            if value is not None and value not in phases.PHASES:
                raise FaultError(f"fail_phase must be null or one of {', '.join(phases.PHASES)}.")
            changes[name] = value
        elif name == "backup_mb":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or not 0 <= value <= MAX_BACKUP_MB:
                raise FaultError(f"backup_mb must be a number of MiB between 0 and {MAX_BACKUP_MB}.")
            changes[name] = float(value)
        elif name == "blocked_sites":
            changes[name] = _parse_sites(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or not 0 <= value <= 86400:
                raise FaultError(f"{name} must be a number of seconds between 0 and 86400.")
            changes[name] = float(value)
    return changes


def _parse_alarms(value: Any) -> tuple[int, int, int, int]:
    """The alarm counts; a key left out counts 0 (the document is the whole summary)."""
    if not isinstance(value, dict):
        raise FaultError('alarms must be an object like {"critical": 1, "major": 0, "minor": 0, "warnings": 0}.')
    for key, count in value.items():
        if key not in ALARM_KEYS:
            raise FaultError(f"Unknown alarm severity {key!r}; one of {', '.join(ALARM_KEYS)}.")
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 2**31:
            raise FaultError(f"alarms.{key} must be a non-negative integer.")
    return tuple(value.get(key, 0) for key in ALARM_KEYS)  # type: ignore[return-value]


def _parse_sites(value: Any) -> tuple[str, ...]:
    """The site UUIDs whose requests the subcloud resets, as a tuple (small: looked up per request)."""
    if not isinstance(value, list) or len(value) > MAX_BLOCKED_SITES or not all(
            isinstance(site, str) and 0 < len(site) <= MAX_SITE_CHARS for site in value):
        raise FaultError(f"blocked_sites must be a list of at most {MAX_BLOCKED_SITES} site UUIDs, "
                         f"each a string of 1 to {MAX_SITE_CHARS} characters.")
    return tuple(value)
