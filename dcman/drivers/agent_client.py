"""A lean HTTP/1.1 client for the subcloud agent protocol, on raw asyncio.

The audit sends tens of thousands of tiny GETs per minute, each to a different address, so
a general-purpose client's per-request overhead would dominate the site's CPU. This one
opens a connection, sends one or more requests on it (keep-alive between them, close after
the last), parses Content-Length responses, and gives up at a deadline. Over https it speaks
TLS through memory buffers, resuming each agent's last session (dcman.drivers.agent_tls).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

from OpenSSL import SSL

from dcman.drivers.agent_tls import AgentTls


FLUSH_BYTES = 65536


class AgentError(Exception):
    """The agent could not be reached or did not answer properly; `tls_refusal` says why its
    certificate was not accepted, when that is the reason."""

    def __init__(self, message: str, tls_refusal: str | None = None) -> None:
        super().__init__(message)
        self.tls_refusal = tls_refusal


@dataclass(frozen=True)
class AgentResponse:
    status: int
    body: Any


def basic_auth(password: str) -> str:
    """The agent's credential: HTTP Basic with user `sysadmin` and the subcloud's password."""
    return "Basic " + base64.b64encode(f"sysadmin:{password}".encode()).decode()


def _ssl_reason(error: SSL.Error) -> str:
    """The last OpenSSL reason of an error, e.g. `wrong version number`."""
    details = error.args[0] if error.args else None
    if isinstance(details, list) and details and isinstance(details[-1], tuple):
        return str(details[-1][-1])
    return str(error) or type(error).__name__


class _Exchange(asyncio.Protocol):
    """Sends `requests` one after another on one connection and collects the responses; with
    `tls`, through a TLS connection to `address` kept in memory buffers."""

    def __init__(self, requests: list[bytes], done: asyncio.Future, tls: AgentTls | None = None,
                 address: str = "", pipelined: bool = False) -> None:
        # Pipelined: every request goes in the first write (only for requests safe to repeat:
        # the agent answers them in order, and one wasted answer costs nothing).
        self._requests = [b"".join(requests)] if pipelined else requests
        self._expected = len(requests)
        self._done = done
        self._responses: list[AgentResponse] = []
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._tls, self._address = tls, address
        self._secure: SSL.Connection | None = tls.connection(address) if tls is not None else None
        self._handshaken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if self._secure is None:
            self._write(self._requests[0])
        else:
            self._tls_received(b"")  # sends the ClientHello

    def data_received(self, data: bytes) -> None:
        if self._secure is None:
            self._received(data)
        else:
            self._tls_received(data)

    # --- TLS ----------------------------------------------------------------------------

    def _tls_received(self, data: bytes) -> None:
        secure = self._secure
        assert secure is not None
        plain = bytearray()
        handshaking = not self._handshaken
        try:
            if data:
                secure.bio_write(data)
            if handshaking:
                try:
                    secure.do_handshake()
                except SSL.WantReadError:
                    self._flush_tls()
                    return
                self._handshaken = True
                secure.sendall(self._requests[0])
            while True:
                try:
                    plain += secure.recv(65536)
                except (SSL.WantReadError, SSL.ZeroReturnError):
                    break
        except SSL.Error as exc:
            self._tls_failed(exc)
            return
        if handshaking:  # once the handshake is done, reading answers makes nothing to send
            self._flush_tls()
        if plain:
            self._received(plain)

    def _tls_failed(self, error: SSL.Error) -> None:
        assert self._tls is not None and self._secure is not None
        self._tls.forget(self._address)
        refusal = self._secure.get_app_data().refusal
        if refusal is not None:
            self._fail(AgentError(f"TLS certificate of {self._address} refused: {refusal}", refusal))
        else:
            self._fail(AgentError(f"TLS handshake with {self._address} failed: {_ssl_reason(error)}"))

    def _flush_tls(self) -> None:
        """Send what TLS wrote to its buffer (a short read means it is empty: no second call)."""
        assert self._secure is not None and self._transport is not None
        while True:
            try:
                out = self._secure.bio_read(FLUSH_BYTES)
            except SSL.WantReadError:
                return
            self._transport.write(out)
            if len(out) < FLUSH_BYTES:
                return

    def _write(self, request: bytes) -> None:
        assert self._transport is not None
        if self._secure is None:
            self._transport.write(request)
        else:
            self._secure.sendall(request)
            self._flush_tls()

    def _close(self) -> None:
        """After the last answer, keep the TLS session for the next probe. It is marked shut down
        without sending close_notify (OpenSSL resumes only a session closed cleanly): every answer
        was framed by its Content-Length, so there is nothing a truncation could hide."""
        assert self._transport is not None
        if self._secure is not None and self._tls is not None:
            self._secure.set_shutdown(SSL.SENT_SHUTDOWN)
            self._tls.done(self._address, self._secure)
        self._transport.close()

    # --- HTTP ---------------------------------------------------------------------------

    def _received(self, data: bytes | bytearray) -> None:
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
            if len(self._responses) == self._expected:
                self._done.set_result(self._responses)
                self._close()
                return
            if len(self._requests) == 1:  # pipelined: all sent already
                continue
            try:
                self._write(self._requests[len(self._responses)])
            except SSL.Error as exc:
                self._tls_failed(exc)
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if self._secure is not None and not self._handshaken:
            self._tls_failed_lost(exc)
            return
        self._fail(AgentError(f"connection closed before the answer ({exc or 'closed by the agent'})"))

    def _tls_failed_lost(self, exc: Exception | None) -> None:
        assert self._tls is not None
        self._tls.forget(self._address)
        self._fail(AgentError(f"TLS handshake with {self._address} failed: the agent closed the connection "
                              f"({exc or 'it may not speak TLS, or refused this site'})"))

    def _fail(self, error: Exception) -> None:
        if not self._done.done():
            self._done.set_exception(error)
        if self._transport is not None:
            self._transport.abort()


class AgentClient:
    """Talks to agents at `{scheme}://{address}:{port}`; every call is bounded by `timeout`."""

    def __init__(self, port: int, scheme: str = "https", timeout: float = 5.0, ca_file: str | None = None) -> None:
        self.port = port
        self.timeout = timeout
        self.tls: AgentTls | None = AgentTls.create(ca_file) if scheme == "https" else None

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
        """Run (method, path, json body or None) calls in order on one connection; GETs only are
        pipelined (sent at once), the others each wait for the answer before it."""
        requests = [self._request(m, p, address, auth, b, i == len(calls) - 1) for i, (m, p, b) in enumerate(calls)]
        pipelined = len(calls) > 1 and all(method == "GET" for method, _, _ in calls)
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        transport = None
        try:
            async with asyncio.timeout(self.timeout):
                transport, _ = await loop.create_connection(
                    lambda: _Exchange(requests, done, self.tls, address, pipelined), address, self.port
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
