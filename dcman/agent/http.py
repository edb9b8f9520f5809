"""A minimal HTTP/1.1 server on raw asyncio, for the subcloud agent and the fleet simulator.

Why not uvicorn + FastAPI here: the simulator answers thousands of small status requests per
second for up to 50,000 subclouds on one CPU core, next to a busy site. A framework's
per-request cost (ASGI scope, middleware, validation) is several times the cost of the answer
itself. This server does only what the agent protocol needs:

* request line and headers, bodies with `Content-Length` (no chunked request bodies);
* keep-alive (HTTP/1.1 default) and `Connection: close`; pipelined requests answered in order;
* JSON answers; a handler may return an awaitable for the rare slow answer (the connection then
  waits for it before reading its next request, so answers stay in order);
* one *binder* per server that maps the connection's LOCAL address to a handler, so that one
  listening socket can serve many simulated subclouds (a process here may hold at most 20,000
  open files, so there is no socket per subcloud);
* a *reset* (RST, no answer) when the binder or the handler says so: the simulator's
  "unreachable" fault;
* idle keep-alive connections are closed after `idle_timeout`, and no more than
  `max_connections` are kept open, so a client that leaks connections cannot exhaust the files;
* TLS when given a `ServerTls` (dcman.agent.tls), spoken through memory buffers so that the
  simulator can pick each connection's certificate by the address it came to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias
from urllib.parse import parse_qs

from OpenSSL import SSL

from dcman.agent.tls import ServerTls

log = logging.getLogger("dcman.agent.http")

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024

_REASONS: dict[int, str] = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 411: "Length Required", 413: "Payload Too Large",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable",
}
_STATUS_LINES: dict[int, bytes] = {code: f"HTTP/1.1 {code} {reason}\r\n".encode() for code, reason in _REASONS.items()}
_JSON_HEAD = b"Content-Type: application/json\r\nContent-Length: "
_KEEP_ALIVE = b"\r\nConnection: keep-alive\r\n"
_CLOSE = b"\r\nConnection: close\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LINGER_RESET = struct.pack("ii", 1, 0)


class Request:
    """One parsed request: method, path, raw query string, lower-cased headers, body bytes."""

    __slots__ = ("method", "path", "query", "headers", "body")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The body as JSON (an empty body is `None`); a malformed body is a 400."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "The request body is not valid JSON.") from None

    def params(self) -> dict[str, str]:
        """The query parameters, the last value of each name winning."""
        if not self.query:
            return {}
        return {name: values[-1] for name, values in parse_qs(self.query, keep_blank_values=True).items()}


class Response:
    """A status, a JSON body already encoded, and extra header lines (each ending in CRLF)."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: bytes = b"") -> None:
        self.status = status
        self.body = body
        self.headers = headers


class StreamResponse(Response):
    """A large answer of `length` bytes sent as `chunks` come, at the pace the client reads:
    the agent streams a backup of many megabytes without holding it whole."""

    __slots__ = ("length", "chunks", "content_type")

    def __init__(self, length: int, chunks: Iterable[bytes], content_type: str = "application/octet-stream",
                 headers: bytes = b"") -> None:
        super().__init__(200, b"", headers)
        self.length = length
        self.chunks = chunks
        self.content_type = content_type


class HttpError(Exception):
    """Raised by a handler to answer `{"error": message}` with this status."""

    def __init__(self, status: int, message: str, headers: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def encode_json(document: Any) -> bytes:
    """Compact JSON bytes (no spaces: the simulator's answers are small and many)."""
    return json.dumps(document, separators=(",", ":")).encode()


def json_response(status: int, document: Any, headers: bytes = b"") -> Response:
    return Response(status, encode_json(document), headers)


def error_response(status: int, message: str, headers: bytes = b"") -> Response:
    return Response(status, encode_json({"error": message}), headers)


# A handler answers one request: a Response, an awaitable of one, or None to reset the
# connection without answering.
HandlerResult: TypeAlias = "Response | Awaitable[Response | None] | None"
Handler: TypeAlias = Callable[[Request], HandlerResult]
# A binder picks the handler of a new connection from its local address, or None to reset it.
Binder: TypeAlias = Callable[[str], "Handler | None"]


def reset_transport(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP reset (SO_LINGER 0) and without flushing: what an unreachable host's
    dying stack looks like to the client."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
    transport.abort()  # type: ignore[attr-defined]


class HttpServer:
    """The shared part of every connection: the binder, the open connections, the limits."""

    def __init__(self, binder: Binder, *, idle_timeout: float = 120.0, max_connections: int = 18_000,
                 tls: ServerTls | None = None) -> None:
        self.binder = binder
        self.tls = tls
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.connections: set[HttpConnection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def protocol(self) -> HttpConnection:
        return HttpConnection(self)

    async def start(self, host: str, port: int, backlog: int = 4096) -> asyncio.Server:
        """Listen on host:port (SO_REUSEADDR) and start closing idle connections."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.protocol, host, port, reuse_address=True, backlog=backlog)
        self._sweeper = loop.create_task(self._sweep())
        return self._server

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()

    async def _sweep(self) -> None:
        period = max(0.5, self.idle_timeout / 4)
        while True:
            await asyncio.sleep(period)
            cutoff = time.monotonic() - self.idle_timeout
            for connection in [c for c in self.connections if c.last_active < cutoff and not c.busy]:
                connection.close()


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests from the byte stream and writes the answers."""

    __slots__ = ("_server", "_transport", "_handler", "_buffer", "busy", "last_active", "_continued", "_secure",
                 "_writable")

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._handler: Handler | None = None
        self._buffer = bytearray()
        self.busy = False
        self.last_active = 0.0
        self._continued = False
        self._secure: SSL.Connection | None = None
        self._writable: asyncio.Event | None = None  # made by the first streamed answer

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        server = self._server
        if len(server.connections) >= server.max_connections:
            reset_transport(transport)
            return
        sockname = transport.get_extra_info("sockname")
        handler = server.binder(sockname[0] if sockname else "")
        if handler is None:
            reset_transport(transport)
            return
        if server.tls is not None:
            try:
                self._secure = server.tls.connection(sockname[0] if sockname else "")
            except (SSL.Error, ValueError):
                log.exception("cannot set up TLS for a connection to %s", sockname)
                reset_transport(transport)
                return
        self._handler = handler
        self.last_active = time.monotonic()
        server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._handler = None
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            return
        self.last_active = time.monotonic()
        if self._secure is None:
            self._buffer += data
        elif not self._tls_received(data):
            return
        if not self.busy:
            self._process()

    # --- TLS ----------------------------------------------------------------------------

    def _tls_received(self, data: bytes) -> bool:
        """Feed TLS bytes in and the plain text out to the buffer; False when the connection failed."""
        secure = self._secure
        assert secure is not None
        try:
            secure.bio_write(data)
            while True:
                try:
                    self._buffer += secure.recv(65536)
                except (SSL.WantReadError, SSL.ZeroReturnError):
                    break
        except SSL.Error as exc:  # a client that refused our certificate, or does not speak TLS
            log.debug("TLS with a client failed: %s", exc)
            self._flush_tls()
            self._handler = None
            if self._transport is not None:
                self._transport.abort()
            return False
        self._flush_tls()
        return True

    def _flush_tls(self) -> None:
        secure, transport = self._secure, self._transport
        if secure is None or transport is None:
            return
        while True:  # a short read means the buffer is empty: no second call, no exception
            try:
                out = secure.bio_read(65536)
            except SSL.WantReadError:
                return
            transport.write(out)
            if len(out) < 65536:
                return

    def _write(self, data: bytes) -> None:
        if self._secure is None:
            self._transport.write(data)  # type: ignore[union-attr]
            return
        try:
            self._secure.sendall(data)
        except SSL.Error as exc:
            log.debug("TLS write failed: %s", exc)
            self._reset()
            return
        self._flush_tls()

    def eof_received(self) -> bool:
        # The client will send nothing more; keep the connection open only to finish an answer.
        return self.busy

    def pause_writing(self) -> None:
        if self._writable is not None:
            self._writable.clear()
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._writable is not None:
            self._writable.set()
        if self._transport is not None:
            self._transport.resume_reading()

    # --- requests -----------------------------------------------------------------------

    def close(self) -> None:
        """Close gracefully (after pending writes)."""
        self._handler = None
        if self._secure is not None and self._transport is not None:
            try:
                self._secure.shutdown()  # close_notify: the client may then resume the session
            except SSL.Error:
                pass
            self._flush_tls()
        if self._transport is not None:
            self._transport.close()

    def _process(self) -> None:
        buf = self._buffer
        while buf and not self.busy and self._handler is not None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._fail(431, "The request head is too large.")
                return
            parsed = _parse_head(bytes(buf[:end]))
            if isinstance(parsed, str):
                self._fail(400, parsed)
                return
            method, path, query, headers, keep_alive = parsed
            if "transfer-encoding" in headers:
                self._fail(501, "Chunked request bodies are not supported; send a Content-Length.")
                return
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit():
                self._fail(400, "The Content-Length header is not a number.")
                return
            length = int(length_text)
            if length > MAX_BODY_BYTES:
                self._fail(413, "The request body is too large.")
                return
            total = end + 4 + length
            if len(buf) < total:
                if not self._continued and headers.get("expect", "").lower() == "100-continue":
                    self._continued = True
                    self._write(_CONTINUE)
                return
            self._continued = False
            body = bytes(buf[end + 4:total]) if length else b""
            del buf[:total]
            self._dispatch(Request(method, path, query, headers, body), keep_alive)

    def _dispatch(self, request: Request, keep_alive: bool) -> None:
        try:
            result = self._handler(request)  # type: ignore[misc]
        except HttpError as exc:
            result = error_response(exc.status, exc.message, exc.headers)
        except Exception:
            log.exception("handler failed on %s %s", request.method, request.path)
            result = error_response(500, "The agent failed to answer this request.")
        if result is None:
            self._reset()
        elif isinstance(result, Response):
            self._send(result, keep_alive)
        else:
            self.busy = True
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda done: self._finished(done, keep_alive))

    def _finished(self, task: asyncio.Future[Response | None], keep_alive: bool) -> None:
        self.busy = False
        try:
            result = task.result()
        except HttpError as exc:
            result = error_response(exc.status, exc.message, exc.headers)
        except asyncio.CancelledError:
            result = None
        except Exception:
            log.exception("handler failed")
            result = error_response(500, "The agent failed to answer this request.")
        if self._handler is None:  # the connection went away meanwhile
            return
        if result is None:
            self._reset()
            return
        self._send(result, keep_alive)
        if self._buffer:
            self._process()

    def _send(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        if isinstance(response, StreamResponse):
            self._start_stream(response, keep_alive)
            return
        body = response.body
        self._write(b"".join((
            _STATUS_LINES.get(response.status) or f"HTTP/1.1 {response.status} Status\r\n".encode(),
            _JSON_HEAD, str(len(body)).encode(), _KEEP_ALIVE if keep_alive else _CLOSE,
            response.headers, b"\r\n", body,
        )))
        if not keep_alive:
            self.close()

    def _start_stream(self, response: StreamResponse, keep_alive: bool) -> None:
        """Write the head now and the chunks from a task that waits whenever the client falls behind."""
        self.busy = True
        self._write(b"".join((
            _STATUS_LINES[200], b"Content-Type: ", response.content_type.encode(), b"\r\nContent-Length: ",
            str(response.length).encode(), _KEEP_ALIVE if keep_alive else _CLOSE, response.headers, b"\r\n")))
        if self._writable is None:
            self._writable = asyncio.Event()
            self._writable.set()
        asyncio.ensure_future(self._stream(response, keep_alive))

    async def _stream(self, response: StreamResponse, keep_alive: bool) -> None:
        try:
            for chunk in response.chunks:
                if self._transport is None or self._transport.is_closing():
                    return  # the client went away
                self._write(chunk)
                assert self._writable is not None
                await self._writable.wait()
                # A set event does not yield: without this, a client that went away (writes to
                # a lost transport neither fail nor pause) had the loop make every chunk of a
                # 100 GiB answer before it could see so, and the other subclouds went unanswered.
                await asyncio.sleep(0)
        except Exception:
            log.exception("streaming an answer failed")
            self._reset()
            return
        self.busy = False
        self.last_active = time.monotonic()
        if not keep_alive:
            self.close()
        elif self._buffer:
            self._process()

    def _fail(self, status: int, message: str) -> None:
        self._send(error_response(status, message), keep_alive=False)

    def _reset(self) -> None:
        transport = self._transport
        self._handler = None
        if transport is not None:
            reset_transport(transport)


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str], bool] | str:
    """(method, path, query, headers, keep_alive) of a request head, or the reason it is bad."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return "The request head is not readable."
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return "The request line is not `METHOD target HTTP/1.x`."
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return "A request header line has no colon."
        headers[name.strip().lower()] = value.strip()
    path, _, query = target.partition("?")
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.1":
        keep_alive = "close" not in connection
    else:
        keep_alive = "keep-alive" in connection
    return method, path, query, headers, keep_alive
