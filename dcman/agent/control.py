"""The simulator's control API (plain HTTP, JSON; no credential: it listens on loopback).

| call                               | effect                                                      |
|------------------------------------|-------------------------------------------------------------|
| GET   /sim                         | {"count", "agent_port", "first_address", "last_address"}    |
| GET   /sim/subclouds               | {"subclouds": [item...], "total"}; `?offset=&limit=` page,  |
|                                    | `?name=` exact name                                         |
| GET   /sim/subclouds/{name}        | one item                                                    |
| PATCH /sim/subclouds/{name}        | set faults → the updated item (404 unknown, 400 bad field)  |
| PATCH /sim/subclouds               | {"names": [...], <faults>} → {"updated": n} (bulk)          |
| POST  /sim/reset                   | every subcloud reachable, healthy, without faults           |

Faults: {"reachable": bool, "healthy": bool, "alarms": {"critical": n, "major": n, "minor": n,
"warnings": n}, "fail_phase": "install|bootstrap|config|rehome|network|prestage-packages|
prestage-images|backup|restore"|null, "phase_seconds": float,
"status_seconds": float (each status answer takes that long), "backup_mb": float (the size of the
backup a backup phase leaves, in MiB), "blocked_sites": [site uuid, ...] (at most 16: requests carrying
`X-Dcman-Site` of one of them are reset unanswered, as from an unreachable subcloud)}.
An item: name, region_name, management_start_ip, system_controller, systemcontroller_gateway (the
gateway that controller bootstrapped or rehomed it with), faults, probes (status calls
answered), overlaps (status calls that arrived while another was being answered: two auditors at
once), fencing_epoch, controller_heard_s (as in its /v1/status), double_controller (times a managing
request of a second site was accepted at the epoch another site's was: must stay 0), phase,
backup_release (the release of the backup it holds, or null), uploads (backups the site uploaded
to it), bootstrap_values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from dcman.agent.fleet import FaultError, Fleet, parse_faults
from dcman.agent.http import HttpError, Request, Response, encode_json, json_response

# Listings larger than this are built and encoded in the executor, so that a full listing of
# 50,000 subclouds does not stall the agents' answers for a second.
LARGE_LISTING = 2_000
_ITEM_PREFIX = "/sim/subclouds/"


class ControlApi:
    """Routes the control API's requests to the fleet."""

    def __init__(self, fleet: Fleet, agent_port: int) -> None:
        self.fleet = fleet
        self.agent_port = agent_port

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        path = request.path.rstrip("/")
        method = request.method
        if path == "/sim/subclouds":
            if method == "GET":
                return self._list(request)
            if method == "PATCH":
                return self._patch_many(request)
            raise _not_allowed("GET, PATCH")
        if path.startswith(_ITEM_PREFIX):
            index = self.fleet.index_of_name(path[len(_ITEM_PREFIX):])
            if index is None:
                raise HttpError(404, f"No simulated subcloud is named {path[len(_ITEM_PREFIX):]!r}.")
            if method == "GET":
                return json_response(200, self._item(index))
            if method == "PATCH":
                self.fleet.apply((index,), _faults_of(_object_body(request)))
                return json_response(200, self._item(index))
            raise _not_allowed("GET, PATCH")
        if path == "/sim/reset":
            if method != "POST":
                raise _not_allowed("POST")
            self.fleet.reset()
            return json_response(200, {"reset": self.fleet.count})
        if path == "/sim":
            return json_response(200, {"count": self.fleet.count, "agent_port": self.agent_port,
                                       "first_address": self.fleet.first_address,
                                       "last_address": self.fleet.last_address})
        raise HttpError(404, f"No such control resource: {request.path}.")

    # --- handlers -----------------------------------------------------------------------

    def _item(self, index: int) -> dict[str, Any]:
        now = time.monotonic()
        self.fleet.settle_one(index, now)
        return self.fleet.item(index, now)

    def _list(self, request: Request) -> Response | Awaitable[Response]:
        params = request.params()
        if params.get("name"):
            index = self.fleet.index_of_name(params["name"])
            indexes: range | list[int] = [] if index is None else [index]
        else:
            offset = _int_param(params, "offset", 0)
            limit = _int_param(params, "limit", self.fleet.count)
            indexes = range(min(offset, self.fleet.count), min(offset + limit, self.fleet.count))
        now = time.monotonic()
        self.fleet.settle_all(now)
        if len(indexes) <= LARGE_LISTING:
            return Response(200, self._encode_listing(indexes, now))
        return self._list_off_loop(indexes, now)

    async def _list_off_loop(self, indexes: range | list[int], now: float) -> Response:
        body = await asyncio.get_running_loop().run_in_executor(None, self._encode_listing, indexes, now)
        return Response(200, body)

    def _encode_listing(self, indexes: range | list[int], now: float) -> bytes:
        item = self.fleet.item
        return encode_json({"subclouds": [item(index, now) for index in indexes], "total": self.fleet.count})

    def _patch_many(self, request: Request) -> Response:
        body = _object_body(request)
        names = body.pop("names", None)
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise HttpError(400, 'The bulk change needs "names": a list of subcloud names.')
        changes = _faults_of(body)
        indexes: list[int] = []
        unknown: list[str] = []
        for name in names:
            index = self.fleet.index_of_name(name)
            if index is None:
                unknown.append(name)
            else:
                indexes.append(index)
        if unknown:
            return json_response(404, {"error": f"{len(unknown)} name(s) are no simulated subcloud; nothing changed.",
                                       "unknown": unknown[:20]})
        return json_response(200, {"updated": self.fleet.apply(indexes, changes)})


def _object_body(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise HttpError(400, "The request body must be a JSON object.")
    return body


def _faults_of(document: dict[str, Any]) -> dict[str, Any]:
    try:
        return parse_faults(document)
    except FaultError as exc:
        raise HttpError(400, str(exc)) from None


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise HttpError(400, f"{name} must be a non-negative integer.")
    return int(text)


def _not_allowed(allowed: str) -> HttpError:
    return HttpError(405, f"Only {allowed} allowed here.", f"Allow: {allowed}\r\n".encode())
