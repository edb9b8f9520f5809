"""The one client of a peer site (`PeerSite`): a method for each thing a peer is asked, so
that the peer API's paths, request bodies and answer fields are written here only.

Underneath: Keystone login with the peer's account, the dcmanager endpoint from its catalog,
the token reused until it nears expiry, timeouts, retries with back-off, and TLS verified
(against DCMAN_PEER_CA_FILE when set, else the system's CAs), never retried in clear."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import yaml

from dcman.domain.associations import SubcloudCopy
from dcman.domain.peer_groups import SubcloudPeerGroup
from dcman.domain.states import AssociationSyncStatus, AssociationType, DeployStatus, ManagementState, MigrationStatus
from dcman.tls import TlsSetupError, client_context, tls_failure

T = TypeVar("T")
USER_AGENT = "dcmanager/1.0"  # how the reference marks a request from a peer site


def _subcloud_path(region_name: str, suffix: str = "") -> str:
    """A subcloud's path on a peer site: by region name, as the reference's peers address it
    (quoted, since a region name is data that came from a site, not a path)."""
    return f"/subclouds/{quote(region_name, safe='')}{suffix}"


class PeerError(Exception):
    """The peer site could not be reached or refused the call; `status` is its HTTP code if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _fault(response: httpx.Response) -> str:
    """The sentence of an error body: the reference's on /v1.0, Keystone's on /v3."""
    try:
        body = response.json()
        if isinstance(body.get("error"), dict):
            return str(body["error"]["message"])
        return str(body["error_message"]["faultstring"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text[:300]


@dataclass(frozen=True)
class RemoteGroup:
    """A subcloud peer group as the peer site shows it; `fields` is the whole answer."""

    id: int
    name: str
    priority: int
    migration_status: str | None
    fields: dict[str, Any]


@dataclass(frozen=True)
class RemoteSubcloud:
    """A subcloud as the peer site shows it; `fields` is the whole answer."""

    region_name: str
    name: str
    deploy_status: str
    management_state: str | None
    fields: dict[str, Any]

    @property
    def secondary(self) -> bool:
        return self.deploy_status == DeployStatus.SECONDARY


@dataclass(frozen=True)
class RemoteAssociation:
    id: int
    peer_group_id: int
    system_peer_id: int


class UnreadableAnswer(PeerError):
    """The peer answered, but not with what its API gives."""


def _unreadable(what: str, answer: Any) -> UnreadableAnswer:
    return UnreadableAnswer(f"the peer's answer for {what} is not readable: {str(answer)[:200]}")


def _read(what: str, answer: Any, build: Callable[[Any], T]) -> T:
    """`build(answer)`, or UnreadableAnswer when the answer lacks what it reads."""
    try:
        return build(answer)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _unreadable(what, answer) from None


def _group(answer: Any) -> RemoteGroup:
    return _read("a peer group", answer, lambda a: RemoteGroup(
        int(a["id"]), str(a["peer_group_name"]), int(a["group_priority"]), a.get("migration_status"), dict(a)))


def _subcloud(answer: Any) -> RemoteSubcloud:
    return _read("a subcloud", answer, lambda a: RemoteSubcloud(
        str(a["region-name"]), str(a["name"]), str(a["deploy-status"]), a.get("management-state"), dict(a)))


def _association(answer: Any) -> RemoteAssociation:
    return _read("an association", answer, lambda a: RemoteAssociation(
        int(a["id"]), int(a["peer-group-id"]), int(a["system-peer-id"])))


def _group_fields(group: SubcloudPeerGroup, priority: int) -> dict[str, Any]:
    return {"group-priority": priority, "group-state": group.group_state,
            "max-subcloud-rehoming": group.max_subcloud_rehoming, "system-leader-id": group.system_leader_id,
            "system-leader-name": group.system_leader_name}


def _listed(answer: Any, key: str) -> list[Any]:
    listed = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(listed, list):
        raise _unreadable(key, answer)
    return listed


class PeerSite:
    """One peer site, reached with its account; `close()` it when done."""

    def __init__(self, endpoint: str, username: str, password: str, *, ca_file: str | None = None,
                 timeout: float = 10.0, retries: int = 2) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.username, self.password = username, password
        self.retries = retries
        # A CA file that became unreadable after start fails every call with its reason, rather
        # than the monitor task; no call is ever made without verification.
        self._tls_error: str | None = None
        self._trusted = "DCMAN_PEER_CA_FILE" if ca_file else "the system's CAs"
        verify: Any = True
        if self.endpoint.startswith("https://"):
            try:
                verify = client_context(ca_file, "DCMAN_PEER_CA_FILE")
            except TlsSetupError as exc:
                self._tls_error = str(exc)
        self._http = httpx.AsyncClient(timeout=timeout, verify=verify, headers={"User-Agent": USER_AGENT})
        self._token: str | None = None
        self._expires = datetime.min.replace(tzinfo=timezone.utc)
        self._api: str | None = None

    async def close(self) -> None:
        await self._http.aclose()

    async def _login(self) -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": self.username, "password": self.password, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        response = await self._http.post(f"{self.endpoint}/auth/tokens", json=body)
        if response.status_code != 201:
            raise PeerError(f"login to {self.endpoint} failed: {_fault(response)}", response.status_code)
        token = response.json()["token"]
        self._token = response.headers["X-Subject-Token"]
        self._expires = datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
        services = [s for s in token.get("catalog", []) if s.get("type") == "dcmanager"]
        endpoints = [e for s in services for e in s.get("endpoints", []) if e.get("interface") == "public"]
        if not endpoints:
            raise PeerError(f"the peer at {self.endpoint} has no dcmanager endpoint in its catalog")
        api = str(endpoints[0]["url"]).rstrip("/")
        if self.endpoint.startswith("https://") and not api.startswith("https://"):
            raise PeerError(f"the peer at {self.endpoint} gives its API as {api}, not https; "
                            "refusing to call it in clear")
        self._api = api

    def _unreachable(self, exc: httpx.HTTPError) -> PeerError:
        """Why the peer could not be reached, naming a certificate that did not verify."""
        failure = tls_failure(exc)
        if failure is not None and failure[0]:
            return PeerError(f"cannot verify the TLS certificate of the peer at {self.endpoint} against "
                             f"{self._trusted}: {failure[1]}")
        if failure is not None:
            return PeerError(f"TLS with the peer at {self.endpoint} failed: {failure[1]}")
        return PeerError(f"cannot reach the peer at {self.endpoint}: {type(exc).__name__}")

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        """One API call (path under /v1.0); returns the JSON answer, raises PeerError."""
        if self._tls_error is not None:
            raise PeerError(self._tls_error)
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                if self._token is None or datetime.now(timezone.utc) + timedelta(seconds=30) >= self._expires:
                    await self._login()
                response = await self._http.request(method, f"{self._api}{path}",
                                                    headers={"X-Auth-Token": self._token or ""}, **kw)
                if response.status_code == 401 and attempt < self.retries:
                    self._token = None  # revoked or expired early: log in again
                    continue
                if response.status_code >= 500 and attempt < self.retries:
                    raise PeerError(f"{method} {path}: {response.status_code}", response.status_code)
                if response.status_code >= 400:
                    raise PeerError(f"{method} {path} on the peer: {_fault(response)}", response.status_code)
                return response.json() if response.content else None
            except httpx.HTTPError as exc:
                if attempt == self.retries or tls_failure(exc) is not None:  # TLS will not heal in a retry
                    raise self._unreachable(exc) from None
            except PeerError as exc:
                if exc.status is not None and exc.status < 500 or attempt == self.retries:
                    raise
            await asyncio.sleep(delay)
            delay *= 2
        raise PeerError(f"{method} {path}: no answer after {self.retries + 1} attempts")

    async def _found(self, path: str) -> Any:
        """The answer of a GET, or None when the peer has no such thing (404)."""
        try:
            return await self._call("GET", path)
        except PeerError as exc:
            if exc.status == 404:
                return None
            raise

    # --- the site -----------------------------------------------------------------------

    async def system(self) -> dict[str, str]:
        """The peer site's identity: its `uuid` and `name`."""
        answer = await self._call("GET", "/system")
        return answer if isinstance(answer, dict) else {}

    async def system_peer_id(self, site_uuid: str) -> int | None:
        """The peer's id for its system peer of the site `site_uuid` (this one), if it has one."""
        answer = await self._found(f"/system-peers/{quote(site_uuid, safe='')}")
        return None if answer is None else _read("a system peer", answer, lambda a: int(a["id"]))

    # --- peer groups ----------------------------------------------------------------------

    async def peer_groups(self) -> list[dict[str, Any]]:
        """The peer's subcloud peer groups as it shows them (also the heartbeat, §2)."""
        return _listed(await self._call("GET", "/subcloud-peer-groups"), "subcloud_peer_groups")

    async def peer_group(self, ref: str | int) -> RemoteGroup | None:
        """The peer's group of that name or id, None when it has none."""
        answer = await self._found(f"/subcloud-peer-groups/{quote(str(ref), safe='')}")
        return None if answer is None else _group(answer)

    async def peer_group_subclouds(self, ref: str | int) -> list[RemoteSubcloud]:
        answer = await self._call("GET", f"/subcloud-peer-groups/{quote(str(ref), safe='')}/subclouds")
        return [_subcloud(s) for s in _listed(answer, "subclouds")]

    async def create_peer_group(self, group: SubcloudPeerGroup, priority: int,
                                protection: list[dict[str, Any]]) -> RemoteGroup:
        """The peer's copy of `group`, with the priority the association gives it there and the
        sites protecting it (dcman.domain.associations.protection)."""
        return _group(await self._call("POST", "/subcloud-peer-groups", json={
            "peer-group-name": group.peer_group_name, **_group_fields(group, priority), "protection": protection}))

    async def update_peer_group(self, group_id: int, group: SubcloudPeerGroup, priority: int,
                                protection: list[dict[str, Any]]) -> RemoteGroup:
        """Bring the peer's copy `group_id` in line with `group` (its name stays)."""
        return _group(await self._call("PATCH", f"/subcloud-peer-groups/{group_id}",
                                       json={**_group_fields(group, priority), "protection": protection}))

    async def delete_peer_group(self, group_id: int) -> None:
        await self._call("DELETE", f"/subcloud-peer-groups/{group_id}")

    async def clear_migration_status(self, group_name: str) -> None:
        """The peer's copy of the group is no longer `complete` (it was audited here, §5)."""
        await self._call("PATCH", f"/subcloud-peer-groups/{quote(group_name, safe='')}",
                         json={"migration_status": MigrationStatus.NONE.value})

    async def audit_peer_group(self, group_name: str, copy: dict[str, Any], site_uuid: str) -> None:
        """Have the peer audit its group against this site's copy of it (§5)."""
        await self._call("PATCH", f"/subcloud-peer-groups/{quote(group_name, safe='')}/audit",
                         json={**copy, "peer_uuid": site_uuid})

    # --- associations ---------------------------------------------------------------------

    async def associations(self) -> list[RemoteAssociation]:
        answer = await self._call("GET", "/peer-group-associations")
        return [_association(a) for a in _listed(answer, "peer_group_associations")]

    async def add_non_primary_association(self, group_id: int, system_peer_id: int,
                                          priority: int) -> RemoteAssociation:
        return _association(await self._call("POST", "/peer-group-associations", json={
            "peer_group_id": group_id, "system_peer_id": system_peer_id, "peer_group_priority": priority,
            "association_type": AssociationType.NON_PRIMARY.value}))

    async def start_sync(self, association_id: int, priority: int) -> None:
        """The peer's association is syncing, with the group's priority on this site."""
        await self._call("PATCH", f"/peer-group-associations/{association_id}", json={
            "sync_status": AssociationSyncStatus.SYNCING.value, "peer_group_priority": priority})

    async def end_sync(self, association_id: int, problems: str | None) -> None:
        """The peer's association is in sync, or failed with these problems."""
        status = AssociationSyncStatus.FAILED if problems else AssociationSyncStatus.IN_SYNC
        await self._call("PATCH", f"/peer-group-associations/{association_id}", json={
            "sync_status": status.value, "sync_message": problems})

    async def delete_association(self, association_id: int) -> None:
        await self._call("DELETE", f"/peer-group-associations/{association_id}")

    # --- subclouds ------------------------------------------------------------------------

    async def subcloud(self, region_name: str) -> RemoteSubcloud:
        return _subcloud(await self._call("GET", _subcloud_path(region_name)))

    async def add_secondary(self, copy: SubcloudCopy) -> RemoteSubcloud:
        """Add the secondary copy of a subcloud, as the reference's sync sends it (multipart)."""
        data = {"secondary": "true", "region_name": copy.region_name, "bootstrap-address": copy.bootstrap_address,
                "release": copy.release}
        data.update({k: v for k, v in (("description", copy.description), ("location", copy.location))
                     if v is not None})  # a null stays null
        files = {"bootstrap_values": ("bootstrap.yaml", yaml.safe_dump(copy.bootstrap_values).encode())}
        if copy.install_values is not None:
            files["install_values"] = ("install.yaml", yaml.safe_dump(copy.install_values).encode())
        return _subcloud(await self._call("POST", "/subclouds", data=data, files=files))

    async def update_copy(self, region_name: str, changes: dict[str, Any]) -> RemoteSubcloud:
        """Change the peer's copy of a subcloud (its secondary subcloud of that region)."""
        return _subcloud(await self._call("PATCH", _subcloud_path(region_name), json=changes))

    async def put_in_group(self, region_name: str, group_id: int) -> None:
        await self._call("PATCH", _subcloud_path(region_name), json={"peer_group": str(group_id)})

    async def delete_secondary(self, region_name: str) -> None:
        """Take the copy out of its group, then delete it (a member cannot be deleted)."""
        await self._call("PATCH", _subcloud_path(region_name), json={"peer_group": "none"})
        await self._call("DELETE", _subcloud_path(region_name))

    async def release(self, region_name: str) -> None:
        """Have the peer unmanage its copy and mark it rehome-pending (nothing to do when it has
        none, or already did); raises PeerError with the peer's status when it will not."""
        there = await self._call("GET", _subcloud_path(region_name, "/detail"))
        if not isinstance(there, dict):
            raise _unreadable("a subcloud", there)
        unmanaged = there.get("management-state") == ManagementState.UNMANAGED
        if unmanaged and there.get("deploy-status") == DeployStatus.REHOME_PENDING:
            return
        request: dict[str, str] = {"migrate": "true"}
        if not unmanaged:
            request["management-state"] = ManagementState.UNMANAGED.value
        await self._call("PATCH", _subcloud_path(region_name), json=request)
