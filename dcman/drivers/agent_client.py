"""A lean HTTP/1.1 client for the subcloud agent protocol, on raw asyncio.

The audit sends tens of thousands of tiny GETs per minute, each to a different address, so
a general-purpose client's per-request overhead would dominate the site's CPU. This one
opens a connection, sends one or more requests on it (keep-alive between them, close after
the last), parses Content-Length responses, and gives up at a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from dataclasses import dataclass
from typing import Any


class AgentError(Exception):
    """The agent could not be reached or did not answer properly."""


@dataclass(frozen=True)
class AgentResponse:
    status: int
    body: Any


def basic_auth(password: str) -> str:
    """The agent's credential: HTTP Basic with user `sysadmin` and the subcloud's password."""
    return "Basic " + base64.b64encode(f"sysadmin:{password}".encode()).decode()


class _Exchange(asyncio.Protocol):
    """Sends `requests` one after another on one connection and collects the responses."""

    def __init__(self, requests: list[bytes], done: asyncio.Future) -> None:
        self._requests = requests
        self._done = done
        self._responses: list[AgentResponse] = []
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        transport.write(self._requests[0])  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while not self._done.done():
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self._buffer[:head_end]).decode("latin-1").split("\r\n")
            length = 0
            try:
                status = int(head[0].split(" ", 2)[1])
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
            except (IndexError, ValueError):
                self._fail(AgentError("malformed HTTP response"))
                return
            if len(self._buffer) < head_end + 4 + length:
                return
            raw = bytes(self._buffer[head_end + 4 : head_end + 4 + length])
            del self._buffer[: head_end + 4 + length]
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self._responses.append(AgentResponse(status, body))
            if len(self._responses) == len(self._requests):
                self._done.set_result(self._responses)
                assert self._transport is not None
                self._transport.close()
                return
            assert self._transport is not None
            self._transport.write(self._requests[len(self._responses)])

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(AgentError(f"connection closed before the answer ({exc or 'closed by the agent'})"))

    def _fail(self, error: Exception) -> None:
        if not self._done.done():
            self._done.set_exception(error)
        if self._transport is not None:
            self._transport.abort()


class AgentClient:
    """Talks to agents at `{scheme}://{address}:{port}`; every call is bounded by `timeout`."""

    def __init__(self, port: int, scheme: str = "https", timeout: float = 5.0) -> None:
        self.port = port
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if scheme == "https" else None

    def _request(self, method: str, path: str, address: str, auth: str, body: Any, last: bool) -> bytes:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {address}:{self.port}",
            f"Authorization: {auth}",
            "User-Agent: dcman/1.0",
            f"Connection: {'close' if last else 'keep-alive'}",
        ]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    async def exchange(self, address: str, auth: str, calls: list[tuple[str, str, Any]]) -> list[AgentResponse]:
        """Run (method, path, json body or None) calls in order on one connection."""
        requests = [self._request(m, p, address, auth, b, i == len(calls) - 1) for i, (m, p, b) in enumerate(calls)]
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        transport = None
        try:
            async with asyncio.timeout(self.timeout):
                transport, _ = await loop.create_connection(
                    lambda: _Exchange(requests, done), address, self.port, ssl=self._ssl
                )
                return await done
        except TimeoutError:
            raise AgentError(f"no answer from {address}:{self.port} within {self.timeout:g}s") from None
        except OSError as exc:
            raise AgentError(f"cannot reach {address}:{self.port}: {exc.strerror or exc}") from None
        finally:
            if transport is not None and not done.done():
                transport.abort()
            if done.done() and not done.cancelled():
                done.exception()  # mark retrieved

    async def get(self, address: str, auth: str, path: str) -> AgentResponse:
        return (await self.exchange(address, auth, [("GET", path, None)]))[0]

    async def post(self, address: str, auth: str, path: str, body: Any) -> AgentResponse:
        return (await self.exchange(address, auth, [("POST", path, body)]))[0]
