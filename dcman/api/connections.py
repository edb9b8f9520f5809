"""The site's HTTP connections, guarded against clients that connect and say nothing.

uvicorn closes an idle keep-alive connection, but it waits for ever on a connection that sent
nothing or half a request head; a few hundred of those used to take every file descriptor, so
that the audit could not open its probes and the whole fleet looked offline. Here a request
head must arrive within HEAD_SECONDS, the open connections are capped below the descriptor
limit (keeping a reserve for the audit, the deploy and the database), and a connection that
arrives at the cap evicts the oldest one that has no request running.
"""

from __future__ import annotations

import logging
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("dcman.connections")

HEAD_SECONDS = 10.0
# A request line and headers larger than this are refused (431): a head is never held in full
# just because it keeps coming.
MAX_HEAD_BYTES = 64 << 10
KEEP_ALIVE_SECONDS = 5
# Descriptors kept for the site's own use: 500 audit probes, 200 deploy drivers, the database
# pool, peer calls and log files.
RESERVED_DESCRIPTORS = 1024
MIN_CONNECTIONS = 64


def raise_descriptor_limit() -> int:
    """Raise the soft limit on open files to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)
    return soft


def connection_cap(descriptors: int) -> int:
    """How many client connections may be open at once with `descriptors` files allowed."""
    if descriptors - RESERVED_DESCRIPTORS >= MIN_CONNECTIONS:
        return descriptors - RESERVED_DESCRIPTORS
    log.warning("only %d open files are allowed; raise the limit (ulimit -n) for a site of any size", descriptors)
    return max(16, descriptors // 2)


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on request heads and a connection cap."""

    max_connections = 1000  # set by dcman serve from the descriptor limit

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timer: Any = None
        self.opened_at = 0.0
        self.head_bytes = 0

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._evict_one()
        super().connection_made(transport)
        self.opened_at = self.loop.time()
        if len(self.connections) > self.max_connections:  # none could be evicted: every one is busy
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        reading_head = self.head_timer is not None
        super().data_received(data)
        if reading_head and self.head_timer is not None:  # the head is still not complete
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self._cancel_head_timer()
                self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n"
                                     b"content-length: 0\r\n\r\n")
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_bytes = 0
        if self.head_timer is None:  # a keep-alive connection starts its next request
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def idle(self) -> bool:
        """No request of this connection is being answered (it is idle, or sends a head)."""
        return self.cycle is None or self.cycle.response_complete

    def _evict_one(self) -> None:
        idle = [c for c in self.connections if isinstance(c, GuardedHttp) and c.idle()]
        if idle:
            oldest = min(idle, key=lambda c: c.opened_at)
            oldest.transport.close()
            self.connections.discard(oldest)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self.head_timer = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if self.idle() and not self.transport.is_closing():
            self.transport.close()
