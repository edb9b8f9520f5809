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
from pathlib import Path
from typing import Any

from OpenSSL import SSL

from dcman.drivers.agent_tls import AgentTls


FLUSH_BYTES = 65536
# An upload's piece: the agent buffers each request body whole (dcman.agent.backups says the same).
UPLOAD_PIECE_BYTES = 4 * 1024 * 1024


class AgentError(Exception):
    """The agent could not be reached or did not answer properly; `tls_refusal` says why its
    certificate was not accepted, when that is the reason."""

    def __init__(self, message: str, tls_refusal: str | None = None) -> None:
        super().__init__(message)
        self.tls_refusal = tls_refusal


class Fenced(AgentError):
    """The agent refused a managing request: the subcloud answers to `system_controller` at
    `fencing_epoch`, not to this site at the epoch it gave (dcman.agent.fencing)."""

    def __init__(self, message: str, system_controller: str | None, fencing_epoch: int | None) -> None:
        super().__init__(message)
        self.system_controller = system_controller
        self.fencing_epoch = fencing_epoch


def raise_if_fenced(answer: "AgentResponse") -> None:
    """Raise Fenced when `answer` is the agent's fencing refusal (a 409 with `fenced: true`)."""
    body = answer.body
    if answer.status == 409 and isinstance(body, dict) and body.get("fenced") is True:
        controller, epoch = body.get("system_controller"), body.get("fencing_epoch")
        raise Fenced(f"the subcloud refused it: {body.get('error')}",
                     controller if isinstance(controller, str) else None,
                     epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None)


@dataclass(frozen=True)
class AgentResponse:
    status: int
    body: Any


def _reason(answer: AgentResponse) -> Any:
    """The agent's one sentence in an error answer, else the whole body."""
    return answer.body.get("error", answer.body) if isinstance(answer.body, dict) else answer.body


def basic_auth(password: str) -> str:
    """The agent's credential: HTTP Basic with user `sysadmin` and the subcloud's password."""
    return "Basic " + base64.b64encode(f"sysadmin:{password}".encode()).decode()


def parse_head(head: bytes | bytearray) -> tuple[int, int | None]:
    """(status, Content-Length or None) of a response head; ValueError when it is malformed."""
    lines = bytes(head).decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except IndexError:
        raise ValueError("no status") from None
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, length


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
            try:
                status, content_length = parse_head(self._buffer[:head_end])
            except ValueError:
                self._fail(AgentError("malformed HTTP response"))
                return
            length = content_length or 0
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

    @classmethod
    def for_site(cls, settings: Any, timeout: float = 10.0, site_uuid: str | None = None) -> "AgentClient":
        """A client with the site's agent settings: DCMAN_SUBCLOUD_AGENT_PORT, _SCHEME and the
        subclouds' CA (`settings` is a dcman.config.Settings); it names the site `site_uuid`."""
        return cls(settings.subcloud_agent_port, settings.subcloud_agent_scheme, timeout, settings.subcloud_ca_file,
                   site_uuid=site_uuid)

    def __init__(self, port: int, scheme: str = "https", timeout: float = 5.0, ca_file: str | None = None, *,
                 site_uuid: str | None = None) -> None:
        self.port = port
        self.timeout = timeout
        self.tls: AgentTls | None = AgentTls.create(ca_file) if scheme == "https" else None
        # Every request names the site (X-Dcman-Site): the agent fences by it and reports how
        # long ago its controller was heard from.
        self.site_uuid = site_uuid
        self._site_line = [f"X-Dcman-Site: {site_uuid}"] if site_uuid else []

    def _request(self, method: str, path: str, address: str, auth: str, body: Any, last: bool,
                 epoch: int | None = None) -> bytes:
        """One request; `body` is sent as JSON, or as raw bytes (an upload's piece) when it is bytes;
        `epoch`, for a managing call, as X-Dcman-Epoch."""
        raw = isinstance(body, (bytes, bytearray))
        payload = b"" if body is None else bytes(body) if raw else json.dumps(body).encode()
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {address}:{self.port}",
            f"Authorization: {auth}",
            "User-Agent: dcman/1.0",
            f"Connection: {'close' if last else 'keep-alive'}",
            *self._site_line,
        ]
        if epoch is not None:
            lines.append(f"X-Dcman-Epoch: {int(epoch)}")
        if body is not None:
            lines += [f"Content-Type: {'application/octet-stream' if raw else 'application/json'}",
                      f"Content-Length: {len(payload)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    async def exchange(self, address: str, auth: str, calls: list[tuple[str, str, Any]],
                       epoch: int | None = None) -> list[AgentResponse]:
        """Run (method, path, json body or None) calls in order on one connection; GETs only are
        pipelined (sent at once), the others each wait for the answer before it. `epoch` goes
        with every call as X-Dcman-Epoch (managing calls)."""
        requests = [self._request(m, p, address, auth, b, i == len(calls) - 1, epoch)
                    for i, (m, p, b) in enumerate(calls)]
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

    async def post(self, address: str, auth: str, path: str, body: Any, epoch: int | None = None) -> AgentResponse:
        return (await self.exchange(address, auth, [("POST", path, body)], epoch))[0]

    async def put(self, address: str, auth: str, path: str, body: Any, epoch: int | None = None) -> AgentResponse:
        return (await self.exchange(address, auth, [("PUT", path, body)], epoch))[0]

    # --- what dcman asks of an agent (dcman.agent.protocol): its paths are written here only

    async def status(self, address: str, auth: str) -> AgentResponse:
        return await self.get(address, auth, "/v1/status")

    async def probe(self, address: str, auth: str, alarms: bool) -> list[AgentResponse]:
        """The audit's probe: the status and, with `alarms`, the alarm summary, pipelined on one connection."""
        calls: list[tuple[str, str, Any]] = [("GET", "/v1/status", None)]
        if alarms:
            calls.append(("GET", "/v1/alarms/summary", None))
        return await self.exchange(address, auth, calls)

    async def start_phase(self, address: str, auth: str, phase: str, payload: dict[str, Any],
                          epoch: int = 0) -> int | None:
        """Start `phase` at fencing `epoch`; a run of it already under way (a restart caught us)
        is adopted. Returns the subcloud's epoch after the start (None when the agent does not
        say, or for an adopted run). Raises Fenced when the subcloud answers to another site or
        epoch, AgentError with the reason otherwise."""
        answer = await self.post(address, auth, f"/v1/phases/{phase}", payload, epoch)
        raise_if_fenced(answer)
        if answer.status == 409:
            current = await self.current_phase(address, auth)
            body = current.body if isinstance(current.body, dict) else {}
            if body.get("phase") != phase or body.get("state") != "running":
                detail = answer.body.get("error") if isinstance(answer.body, dict) else answer.body
                raise AgentError(f"the subcloud refused it: {detail}")
            return None
        if answer.status != 202:
            raise AgentError(f"the agent refused the {phase} phase ({answer.status}): {answer.body}")
        started = answer.body.get("fencing_epoch") if isinstance(answer.body, dict) else None
        return started if isinstance(started, int) and not isinstance(started, bool) else None

    async def current_phase(self, address: str, auth: str) -> AgentResponse:
        """The agent's phase: its `phase`, `state`, `progress` and `message`."""
        return await self.get(address, auth, "/v1/phases/current")

    async def abort_phase(self, address: str, auth: str, epoch: int = 0) -> AgentResponse:
        """Abort the running phase; Fenced when the subcloud answers to another site or epoch."""
        answer = await self.post(address, auth, "/v1/phases/current/abort", {}, epoch)
        raise_if_fenced(answer)
        return answer

    async def delete_backup(self, address: str, auth: str, release: str, epoch: int = 0) -> AgentResponse:
        """Drop the subcloud's backup of `release`; Fenced as `abort_phase`."""
        answer = (await self.exchange(address, auth, [("DELETE", f"/v1/backups/{release}", None)], epoch))[0]
        raise_if_fenced(answer)
        return answer

    async def backup_checksum(self, address: str, auth: str, release: str) -> tuple[int, str] | None:
        """(size, SHA-256) of the subcloud's backup of `release`, or None when it holds none."""
        answer = await self.get(address, auth, f"/v1/backups/{release}/checksum")
        if answer.status == 404:
            return None
        body = answer.body if isinstance(answer.body, dict) else {}
        size, sha256 = body.get("size"), body.get("sha256")
        if answer.status != 200 or not isinstance(size, int) or not isinstance(sha256, str):
            raise AgentError(f"the agent's checksum answer was {answer.status}: {answer.body}")
        return size, sha256

    async def upload_backup(self, address: str, auth: str, release: str, path: Path, size: int, sha256: str,
                            epoch: int = 0) -> None:
        """Send the file at `path` (`size` bytes, `sha256`) to the subcloud as its backup of
        `release`, UPLOAD_PIECE_BYTES per request (read off the loop, one piece in memory at a
        time), then commit it, each a managing call at fencing `epoch`; Fenced as `abort_phase`,
        AgentError says why the agent refused it otherwise."""
        piece_path = f"/v1/backups/{release}/upload"
        with path.open("rb") as handle:
            offset = 0
            while True:
                piece = await asyncio.to_thread(handle.read, UPLOAD_PIECE_BYTES)
                if not piece and offset:
                    break
                answer = await self.put(address, auth, f"{piece_path}?offset={offset}", piece, epoch)
                raise_if_fenced(answer)
                if answer.status != 200:
                    raise AgentError(f"the agent refused the piece at byte {offset} ({answer.status}): "
                                     f"{_reason(answer)}")
                offset += len(piece)
                if not piece:
                    break
        answer = await self.post(address, auth, f"{piece_path}/commit", {"size": size, "sha256": sha256}, epoch)
        raise_if_fenced(answer)
        if answer.status != 200:
            raise AgentError(f"the agent refused the upload ({answer.status}): {_reason(answer)}")

    async def download_backup(self, address: str, auth: str, release: str, write: Any,
                              max_length: int | None = None) -> int:
        """Stream the subcloud's backup of `release` into `await write(bytes)` (see `download`)."""
        return await download(self, address, auth, f"/v1/backups/{release}", write, max_length=max_length)


class _Download(_Exchange):
    """One GET whose answer's body goes to `sink` as it arrives instead of being kept: the
    head is parsed here, then every body byte is handed on; reading pauses while the sink is
    behind, so a backup of any size costs a bounded amount of memory."""

    def __init__(self, request: bytes, head: asyncio.Future, sink: "DownloadSink", tls: AgentTls | None,
                 address: str) -> None:
        super().__init__([request], head, tls, address)
        self._sink = sink
        self._head_done = False
        self._remaining = 0

    def _received(self, data: bytes | bytearray) -> None:
        if self._head_done:
            self._body(bytes(data))
            return
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buffer) > 65536:
                self._fail(AgentError("malformed HTTP response"))
            return
        try:
            status, length = parse_head(self._buffer[:head_end])
        except ValueError:
            self._fail(AgentError("malformed HTTP response"))
            return
        if length is None:
            self._fail(AgentError("the agent's answer has no Content-Length"))
            return
        rest = bytes(self._buffer[head_end + 4:])
        self._buffer.clear()
        self._head_done, self._remaining = True, length
        self._sink.start(status, length, self)
        if length == 0:
            self._sink.end()
            self._close()
        elif rest:
            self._body(rest)

    def _body(self, data: bytes) -> None:
        if self._remaining <= 0:
            return
        data = data[:self._remaining]
        self._remaining -= len(data)
        self._sink.put(data)
        if self._remaining == 0:
            self._sink.end()
            self._close()

    def pause(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_done and self._remaining == 0:
            return
        if self._head_done:
            self._sink.fail(AgentError(f"the agent closed the connection with {self._remaining} bytes still to come"))
            return
        super().connection_lost(exc)  # fails the sink through _fail

    def _fail(self, error: Exception) -> None:
        self._sink.fail(error)
        super()._fail(error)


class DownloadSink:
    """Where a download's body goes: a queue of chunks, drained by `AgentClient.download`."""

    # Per download: 250 at once stay within a few hundred MB even when the disk is slow.
    HIGH_WATER = 256 * 1024
    LOW_WATER = 64 * 1024

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
        self.started: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self.queued = 0
        self.paused = False
        self.protocol: _Download | None = None

    def start(self, status: int, length: int, protocol: _Download) -> None:
        self.protocol = protocol
        if not self.started.done():
            self.started.set_result((status, length))

    def put(self, data: bytes) -> None:
        self.queue.put_nowait(data)
        self.queued += len(data)
        if self.queued > self.HIGH_WATER and not self.paused and self.protocol is not None:
            self.paused = True
            self.protocol.pause()

    def taken(self, size: int) -> None:
        self.queued -= size
        if self.paused and self.queued < self.LOW_WATER and self.protocol is not None:
            self.paused = False
            self.protocol.resume()

    def end(self) -> None:
        self.queue.put_nowait(None)

    def fail(self, error: Exception) -> None:
        if not self.started.done():
            self.started.set_exception(error)
            self.started.exception()  # retrieved: the caller sees it through the queue too
        self.queue.put_nowait(error)


async def download(client: AgentClient, address: str, auth: str, path: str, write: Any,
                   idle_timeout: float = 30.0, batch: int = 128 * 1024, max_length: int | None = None) -> int:
    """GET `path` from the agent and pass its body to `await write(bytes)` in pieces of up to
    `batch` bytes, as they come; returns the length. A non-200 answer, a body longer than
    `max_length`, a silence of `idle_timeout` seconds or a cut connection raise AgentError."""
    loop = asyncio.get_running_loop()
    sink = DownloadSink()
    request = client._request("GET", path, address, auth, None, True)
    head: asyncio.Future = loop.create_future()
    transport = None
    try:
        try:
            async with asyncio.timeout(client.timeout):
                transport, _ = await loop.create_connection(
                    lambda: _Download(request, head, sink, client.tls, address), address, client.port)
                status, length = await sink.started
        except TimeoutError:
            raise AgentError(f"no answer from {address}:{client.port} within {client.timeout:g}s") from None
        except OSError as exc:
            raise AgentError(f"cannot reach {address}:{client.port}: {exc.strerror or exc}") from None
        if status != 200:
            body = bytearray()
            while (item := await asyncio.wait_for(sink.queue.get(), idle_timeout)) is not None:
                if isinstance(item, Exception):
                    raise item
                body += item
            try:
                message = json.loads(body).get("error", "")
            except (ValueError, AttributeError):
                message = ""
            raise AgentError(f"the agent answered {status}: {message}".rstrip(": "))
        if max_length is not None and length > max_length:
            raise AgentError(f"the backup is {length} bytes and only {max(0, max_length)} may be stored")
        received = 0
        while True:
            try:
                item = await asyncio.wait_for(sink.queue.get(), idle_timeout)
            except TimeoutError:
                raise AgentError(f"the agent sent nothing for {idle_timeout:g}s after {received} of {length} bytes"
                                 ) from None
            if item is None:
                break
            if isinstance(item, Exception):
                raise item
            pieces, size = [item], len(item)
            while size < batch and not sink.queue.empty():
                nxt = sink.queue.get_nowait()
                if not isinstance(nxt, bytes):
                    sink.queue.put_nowait(nxt)  # an end or a failure: nothing follows it, so it stays last
                    break
                pieces.append(nxt)
                size += len(nxt)
            chunk = b"".join(pieces)
            sink.taken(len(chunk))
            await write(chunk)
            received += len(chunk)
        return received
    finally:
        if transport is not None and not transport.is_closing():
            transport.abort()
        if head.done() and not head.cancelled():
            head.exception()  # the failure went through the sink; mark it retrieved
