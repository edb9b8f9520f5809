"""The state one agent keeps about its subcloud, and the documents it answers from it.

The simulator keeps up to 50,000 of these in one process, so the class has `__slots__`
(about 200 bytes each; ~0.8 kB with its name strings and cached status answer) and is only
created when a subcloud is first touched. The real agent keeps exactly one, with its faults
left at their defaults.
"""

from __future__ import annotations

import time
from typing import Any

from dcman.agent.http import encode_json

IDLE = "idle"
DEFAULT_SOFTWARE_VERSION = "24.09"

# The service groups a healthy / unhealthy subcloud reports. The site's rule: healthy when
# every group name has at least one member `active`. Unhealthy: `oam-services` has none.
HEALTHY_GROUPS: tuple[dict[str, str], ...] = (
    {"name": "controller-services", "state": "active"},
    {"name": "controller-services", "state": "standby"},
    {"name": "oam-services", "state": "active"},
)
UNHEALTHY_GROUPS: tuple[dict[str, str], ...] = (
    {"name": "controller-services", "state": "active"},
    {"name": "controller-services", "state": "standby"},
    {"name": "oam-services", "state": "disabled"},
)
# The endpoint types of the reference's current release, all in sync on a simulated subcloud.
ENDPOINTS: dict[str, str] = {
    endpoint: "in-sync"
    for endpoint in ("platform", "identity", "dc-cert", "firmware", "kubernetes", "kube-rootca", "software")
}
NO_ALARMS: tuple[int, int, int, int] = (0, 0, 0, 0)
ALARM_KEYS: tuple[str, str, str, str] = ("critical", "major", "minor", "warnings")


class SubcloudState:
    """Identity, faults and the current phase of one subcloud.

    Faults (simulator only): `reachable`, `healthy`, `alarms`, `fail_phase`,
    `phase_seconds` (None: the process default), `backup_mb` and `blocked_sites`. The `phase_*`
    slots belong to `dcman.agent.phases`, which alone changes them.

    Fencing (dcman.agent.protocol): `fencing_epoch` rises with every rehome that claims the
    subcloud; `heard_at` is when its system controller last called (monotonic); `last_site` and
    `last_epoch` are whose managing request was last accepted and at which epoch, and
    `double_controller` counts two sites accepted at one epoch (the simulator's witness).
    """

    __slots__ = (
        "name", "region_name", "software_version", "system_controller", "controller_gateway",
        "reachable", "healthy", "alarms", "fail_phase", "phase_seconds", "status_seconds", "probes",
        "probing", "overlaps",
        "phase", "phase_state", "phase_progress", "phase_message", "phase_started", "phase_duration",
        "phase_fails", "phase_timed", "phase_controller", "phase_gateway", "phase_run", "phase_task",
        "backup_mb", "backup_release", "backup_length", "backup_sha256", "upload", "uploads",
        "address", "phase_address",
        "fencing_epoch", "heard_at", "blocked_sites", "last_site", "last_epoch", "double_controller",
        "_status_body", "_status_key",
    )

    def __init__(self, name: str, region_name: str, software_version: str = DEFAULT_SOFTWARE_VERSION) -> None:
        self.name = name
        self.region_name = region_name
        self.software_version = software_version
        self.system_controller: str | None = None
        # The systemcontroller_gateway_address its controller deployed or rehomed it with.
        self.controller_gateway: str | None = None
        self.reachable = True
        self.healthy = True
        self.alarms = NO_ALARMS
        self.fail_phase: str | None = None
        self.phase_seconds: float | None = None
        self.status_seconds = 0.0
        self.probes = 0
        # Status calls being answered now, and how many arrived while another was (two
        # auditors probing one subcloud at once); observable when status_seconds > 0.
        self.probing = 0
        self.overlaps = 0
        self.phase: str | None = None
        self.phase_state = IDLE
        self.phase_progress = 0
        self.phase_message = ""
        self.phase_started = 0.0
        self.phase_duration = 0.0
        self.phase_fails = False
        self.phase_timed = True
        self.phase_controller: str | None = None
        self.phase_gateway: str | None = None
        self.phase_run = 0
        self.phase_task: Any = None
        # The size of a backup in MiB (simulator fault; None: 1 MiB), and the release of the
        # backup the subcloud holds, if any (dcman.agent.backups).
        self.backup_mb: float | None = None
        self.backup_release: str | None = None
        # An uploaded backup's size and SHA-256 (None: the one a backup phase left), the upload
        # the site is sending, and how many uploads were committed (dcman.agent.backups).
        self.backup_length: int | None = None
        self.backup_sha256: str | None = None
        self.upload: Any = None
        self.uploads = 0
        # The management address it answers at after a network reconfiguration (None: its
        # first one), and the one the running network phase moves it to.
        self.address: str | None = None
        self.phase_address: str | None = None
        self.fencing_epoch = 0
        # Counted from the state's creation until the controller first calls.
        self.heard_at = time.monotonic()
        # Sites whose requests are reset unanswered (simulator fault): a site-subcloud cut.
        self.blocked_sites: tuple[str, ...] = ()
        self.last_site: str | None = None
        self.last_epoch = -1
        self.double_controller = 0
        self._status_body: bytes | None = None
        self._status_key: tuple[str | None, bool] | None = None

    def clear_faults(self) -> None:
        """Back to reachable, healthy, no alarms, no failing phase, default phase duration."""
        self.reachable = True
        self.healthy = True
        self.alarms = NO_ALARMS
        self.fail_phase = None
        self.phase_seconds = None
        self.status_seconds = 0.0
        self.backup_mb = None
        self.blocked_sites = ()

    def status_document(self, now: float | None = None) -> dict[str, Any]:
        """The `GET /v1/status` answer."""
        return {**self._static_document(), "fencing_epoch": self.fencing_epoch,
                "controller_heard_s": self.controller_heard_s(now)}

    def controller_heard_s(self, now: float | None = None) -> float | None:
        """Seconds since the system controller last called (None without one), to 0.1 s."""
        if self.system_controller is None:
            return None
        return round(max(0.0, (time.monotonic() if now is None else now) - self.heard_at), 1)

    def _static_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "region_name": self.region_name,
            "software_version": self.software_version,
            "system_controller": self.system_controller,
            "service_groups": list(HEALTHY_GROUPS if self.healthy else UNHEALTHY_GROUPS),
            "endpoints": ENDPOINTS,
        }

    def status_body(self, now: float | None = None) -> bytes:
        """The encoded status answer. The simulator answers it thousands of times a second, so
        its static part is cached until the system controller or health changes, without its
        closing brace, and only the witness fields are formatted per answer."""
        key = (self.system_controller, self.healthy)
        if self._status_body is None or self._status_key != key:
            self._status_body = encode_json(self._static_document())[:-1]
            self._status_key = key
        heard = self.controller_heard_s(now)
        return b"%s,\"fencing_epoch\":%d,\"controller_heard_s\":%s}" % (
            self._status_body, self.fencing_epoch, b"null" if heard is None else repr(heard).encode())

    def alarm_document(self) -> dict[str, int]:
        """The `GET /v1/alarms/summary` answer."""
        return dict(zip(ALARM_KEYS, self.alarms))

    def fault_document(self, default_phase_seconds: float, default_backup_mb: float = 1.0) -> dict[str, Any]:
        """The faults as the simulator's control API shows them."""
        return {
            "reachable": self.reachable,
            "healthy": self.healthy,
            "alarms": self.alarm_document(),
            "fail_phase": self.fail_phase,
            "phase_seconds": default_phase_seconds if self.phase_seconds is None else self.phase_seconds,
            "status_seconds": self.status_seconds,
            "backup_mb": default_backup_mb if self.backup_mb is None else self.backup_mb,
            "blocked_sites": list(self.blocked_sites),
        }
