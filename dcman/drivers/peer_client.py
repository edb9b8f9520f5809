"""The one client for calls to a peer site: Keystone login with the peer's account, the
dcmanager endpoint from its catalog, the token reused until it nears expiry, timeouts,
retries with back-off, and TLS verified (against DCMAN_PEER_CA_FILE when set, else the
system's CAs), never retried in clear."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx

from dcman.tls import TlsSetupError, client_context, tls_failure

USER_AGENT = "dcmanager/1.0"  # how the reference marks a request from a peer site


def subcloud_path(region_name: str, suffix: str = "") -> str:
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


class PeerClient:
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

    async def call(self, method: str, path: str, **kw: Any) -> Any:
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
