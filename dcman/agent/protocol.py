"""The agent protocol (`/v1/...`), answered for one subcloud state; shared by the real agent
and the simulator so that the site talks to both exactly the same way.

| call                              | answer                                               |
|-----------------------------------|------------------------------------------------------|
| GET  /v1/status                   | name, region, version, system controller, groups,    |
|                                   | fencing_epoch, controller_heard_s ...                |
| GET  /v1/alarms/summary           | {"critical", "major", "minor", "warnings"}           |
| POST /v1/phases/{phase}           | 202, the phase now running and the fencing_epoch     |
|                                   | (409 busy or fenced, 400 unknown)                    |
|   (network: payload management_start_address, the address the subcloud moves to)       |
|   (rehome: payload takeover_from {"system_controller", "fencing_epoch"}, the claim)     |
| GET  /v1/phases/current           | {"phase", "state", "progress", "message"}            |
| POST /v1/phases/current/abort     | 200, the phase now aborted (409 when nothing runs,   |
|                                   | or fenced)                                           |
| GET/DELETE /v1/backups/{release}  | the subcloud's backup, streamed / dropped (backups)  |
| GET /v1/backups/{release}/checksum, PUT .../upload, POST .../upload/commit  (backups)    |

A `restore` with `local_only` needs the subcloud to hold a backup of its release, a central one
(the site's) a backup of the payload's `release`, which the site uploads first (409 otherwise).

Every call needs `Authorization: Basic base64("sysadmin:<password>")`, or it is answered 401.
A site names itself on every call with `X-Dcman-Site: <site uuid>`; a managing call (phase start,
abort, backup deletion, an upload's piece or commit) carries `X-Dcman-Epoch: <int>` (absent: 0)
and is fenced as dcman.agent.fencing says. `controller_heard_s` is the seconds since the system controller last
called (any call naming it), counted from the agent's start if it never did; null without one.
An unreachable subcloud (simulator fault), or one cut from the calling site (`blocked_sites`),
answers nothing: its connection is reset.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from dcman.agent import backups, fencing, phases
from dcman.agent.commands import start_command_phase
from dcman.agent.credentials import REALM_HEADER, Credential
from dcman.agent.http import HttpError, Request, Response, error_response, json_response
from dcman.agent.subcloud import SubcloudState

_PHASES_PREFIX = "/v1/phases/"
_BACKUPS_PREFIX = "/v1/backups/"
_UNAUTHORIZED = error_response(
    401, "This call needs the subcloud's credential: Authorization: Basic base64(sysadmin:<password>).",
    REALM_HEADER)


class AgentProtocol:
    """Answers the agent protocol for any subcloud state given to `handle`.

    `phase_seconds` is the duration of a timed phase unless the subcloud's own fault says
    otherwise, `backup_mb` the size of a backup likewise; `commands` maps a phase to the shell
    command that carries it out (real agent); `readdress` is told of the address a network phase
    moves a subcloud to (the simulator); `backup_file` is the file a real agent's backup command
    writes.
    """

    def __init__(self, credential: Credential, *, phase_seconds: float,
                 commands: Mapping[str, str] | None = None,
                 readdress: Callable[[SubcloudState, str], None] | None = None,
                 backup_mb: float = backups.DEFAULT_BACKUP_MB, backup_file: Path | None = None) -> None:
        self.credential = credential
        self.phase_seconds = phase_seconds
        self.backup_mb = backup_mb
        self.backup_file = backup_file
        self.commands = dict(commands or {})
        self.readdress = readdress

    def handle(self, state: SubcloudState, request: Request) -> Response | Awaitable[Response] | None:
        """One request for `state`; None (reset, no answer) when the subcloud is unreachable."""
        if not state.reachable:
            return None
        headers = request.headers
        site = fencing.site_of(headers) if fencing.SITE_HEADER in headers else None
        if site is not None and site in state.blocked_sites:
            return None
        if not self.credential.accepts(headers.get("authorization")):
            return _UNAUTHORIZED
        if site is not None and site == state.system_controller:
            state.heard_at = time.monotonic()
        path = request.path
        method = request.method
        if path == "/v1/status":
            _only(method, "GET")
            phases.settle(state)
            state.probes += 1
            if state.status_seconds:
                return _slow_status(state)
            return Response(200, state.status_body())
        if path == "/v1/alarms/summary":
            _only(method, "GET")
            return json_response(200, state.alarm_document())
        if path.startswith(_PHASES_PREFIX):
            return self._phases(state, request, site, path[len(_PHASES_PREFIX):].rstrip("/"))
        if path.startswith(_BACKUPS_PREFIX):
            phases.settle(state)
            if method in ("DELETE", "PUT", "POST"):  # dropping a backup, an upload's piece or its commit
                refused = fencing.refuse_managing(state, site, fencing.epoch_of(headers))
                if refused is not None:
                    return refused
                fencing.accepted(state, site)
            return backups.handle(state, request, path[len(_BACKUPS_PREFIX):].rstrip("/"), self.backup_mb,
                                  self.backup_file)
        raise HttpError(404, f"No such agent resource: {path}.")

    def _phases(self, state: SubcloudState, request: Request, site: str | None, rest: str) -> Response:
        if rest == "current":
            _only(request.method, "GET")
            return json_response(200, phases.view(state))
        if rest == "current/abort":
            _only(request.method, "POST")
            refused = fencing.refuse_managing(state, site, fencing.epoch_of(request.headers))
            if refused is not None:
                return refused
            now = time.monotonic()
            try:
                phases.abort(state, now)
            except phases.NoPhaseRunning as exc:
                raise HttpError(409, str(exc)) from None
            fencing.accepted(state, site)
            return json_response(200, phases.view(state, now))
        if "/" in rest:
            raise HttpError(404, f"No such agent resource: {request.path}.")
        _only(request.method, "POST")
        if rest not in phases.PHASES:
            raise HttpError(400, f"Unknown phase {rest!r}; one of {', '.join(phases.PHASES)}.")
        payload = request.json()
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise HttpError(400, "The phase payload must be a JSON object.")
        controller = payload.get("system_controller")
        if controller is not None and not isinstance(controller, str):
            raise HttpError(400, "system_controller must be the calling site's UUID, as a string.")
        new_address = _new_address(payload) if rest == phases.READDRESSES else None
        epoch = fencing.epoch_of(request.headers)
        now = time.monotonic()
        phases.settle(state, now)
        claimer: str | None = None
        if rest == "rehome":
            claimer, refused = self._claim(state, site, epoch, payload, controller)
        else:
            refused = fencing.refuse_managing(state, site, epoch)
        if refused is not None:
            return refused
        if rest == "restore" and payload.get("local_only") is True and state.phase_state != phases.RUNNING \
                and state.backup_release != state.software_version:
            raise HttpError(409, f"Subcloud {state.name} holds no local backup of release {state.software_version} "
                                 "to restore from.")
        if rest == "restore" and payload.get("local_only") is not True and state.phase_state != phases.RUNNING:
            release = payload.get("release")
            if not isinstance(release, str) or state.backup_release != release:
                raise HttpError(409, f"Subcloud {state.name} holds no backup of release {release} to restore from: "
                                     "the site uploads its central backup first.")
        try:
            command = self.commands.get(rest)
            if rest in ("backup", "restore") and self.backup_file is not None:
                payload["backup_file"] = str(self.backup_file)  # where the backup command writes it, the restore reads it
            if command is not None:
                start_command_phase(state, rest, command, payload)
            else:
                seconds = self.phase_seconds if state.phase_seconds is None else state.phase_seconds
                phases.start(state, rest, payload, seconds=seconds, fails=state.fail_phase == rest, now=now)
        except phases.PhaseBusy as exc:
            raise HttpError(409, str(exc)) from None
        if claimer is not None:
            fencing.claim(state, claimer, now)
        fencing.accepted(state, site or (controller if isinstance(controller, str) else None))
        if new_address is not None and self.readdress is not None:
            self.readdress(state, new_address)
        # The answer says what was started, even when a zero-second phase is already over.
        return json_response(202, {"phase": rest, "state": phases.RUNNING, "progress": 0,
                                   "message": f"{rest} in progress.", "fencing_epoch": state.fencing_epoch})

    @staticmethod
    def _claim(state: SubcloudState, site: str | None, epoch: int, payload: dict,
               controller: str | None) -> tuple[str | None, Response | None]:
        """A rehome's claim: (who takes the subcloud over when it starts, or None for an old
        client's rehome without takeover_from; the refusal, if any)."""
        given = fencing.takeover_of(payload)
        if given is None:
            if site is not None:
                raise HttpError(400, "A rehome from a site needs takeover_from: {\"system_controller\": <uuid or "
                                     "null>, \"fencing_epoch\": <int>}, what the subcloud answers to now.")
            return None, fencing.refuse_managing(state, None, epoch)  # today's rehome, not older than the subcloud
        claimer = site or controller
        if claimer is None:
            raise HttpError(400, "A rehome with takeover_from needs the claiming site: X-Dcman-Site or "
                                 "system_controller.")
        return claimer, fencing.refuse_claim(state, site, given, state.phase_state == phases.RUNNING)


async def _slow_status(state: SubcloudState) -> Response:
    """A status answer that takes `status_seconds` (simulator fault), counting overlaps."""
    if state.probing:
        state.overlaps += 1
    state.probing += 1
    try:
        await asyncio.sleep(state.status_seconds)
    finally:
        state.probing -= 1
    return Response(200, state.status_body())


def _new_address(payload: dict) -> str:
    """The management start address a network phase moves the subcloud to (400 when not one)."""
    value = payload.get("management_start_address")
    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise HttpError(400, "The network phase needs management_start_address, the subcloud's new "
                             "management address.") from None


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, f"Only {allowed} is allowed here.", f"Allow: {allowed}\r\n".encode())
