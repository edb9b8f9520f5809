"""A TCP proxy whose link can be cut, healed and pointed elsewhere, for tests and benches.

`Proxy(upstream_host, upstream_port)` listens on a free port of `listen_host` and forwards
every connection to the upstream, on its own asyncio loop in a daemon thread, so a test's
synchronous code (or another loop) drives it with plain calls:

    proxy = Proxy("127.0.0.1", site_port)
    proxy.cut()            # a partition: new and open connections go silent
    proxy.heal()           # traffic flows again (silenced connections are then reset)
    proxy.retarget(port)   # the upstream restarted on another port
    proxy.close()

Two ways to cut (`Proxy(..., mode=)` or `cut(mode=)`):
- "drop" (the default) is what a partition looks like: a new connection is accepted and
  never answered, an open one stops carrying bytes either way. An HTTP client fails at its
  own read timeout, as it would behind a dead link; a site's heartbeat (timeout
  min(10 s, interval / 2)) thus fails within its timeout and within its interval, and a
  failover measured behind it is not flattered by instant errors.
- "reset" answers every new and open connection with a TCP reset: clients fail at once (a
  host that is up with nothing listening, or a firewall that rejects).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field

MODES = ("drop", "reset")
CONNECT_TIMEOUT_S = 5.0
CHUNK = 65536


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a refusing peer or a rejecting firewall would."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One client connection: its writer, the upstream's, and the tasks copying between them."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)


class Proxy:
    """A cuttable TCP forwarder to `upstream_host:upstream_port`; `.port` is where it listens."""

    def __init__(self, upstream_host: str, upstream_port: int, listen_host: str = "127.0.0.1",
                 mode: str = "drop") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.mode = mode
        self.is_cut = False
        self.accepted = 0  # connections accepted so far (cut or not), for tests
        self._links: set[_Link] = set()
        self._held: set[asyncio.StreamWriter] = set()  # silenced clients, reset on heal
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name=f"proxy-{upstream_port}",
                                        daemon=True)
        self._thread.start()
        started.wait(10)
        self.port: int = self._call(self._listen())

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.port}"

    # --- the controls (any thread) ------------------------------------------------------

    def cut(self, mode: str | None = None) -> None:
        """Cut the link: from now on nothing passes; open connections are silenced or reset."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self._call(self._cut(mode or self.mode))

    def heal(self) -> None:
        """Let traffic through again; connections silenced by the cut are reset (their clients
        gave up on them at their timeout, as after a real partition)."""
        self._call(self._heal())

    def retarget(self, port: int, host: str | None = None) -> None:
        """Forward new connections to another upstream port (and host); open ones are reset,
        since they led to a process that is gone."""
        self._call(self._retarget(host or self.upstream[0], port))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the loop's side ----------------------------------------------------------------

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(started.set)
        self._loop.run_forever()

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=15)

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.listen_host, 0)
        return self._server.sockets[0].getsockname()[1]

    async def _cut(self, mode: str) -> None:
        self.is_cut, self.mode = True, mode
        for link in list(self._links):
            self._drop_link(link, silence=mode == "drop")

    async def _heal(self) -> None:
        self.is_cut = False
        for writer in list(self._held):
            _reset(writer)
        self._held.clear()

    async def _retarget(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        for link in list(self._links):
            self._drop_link(link, silence=False)

    async def _close(self) -> None:
        self._server.close()
        for link in list(self._links):
            self._drop_link(link, silence=False)
        for writer in list(self._held):
            _reset(writer)
        self._held.clear()

    def _drop_link(self, link: _Link, silence: bool) -> None:
        """Stop copying for `link`: its upstream side is closed; its client is kept silent
        (drop) or reset."""
        self._links.discard(link)
        for task in link.tasks:
            task.cancel()
        if link.upstream is not None:
            link.upstream.transport.abort()
        if silence:
            self._hold(link.client)
        else:
            _reset(link.client)

    def _hold(self, writer: asyncio.StreamWriter) -> None:
        self._held.add(writer)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.is_cut:
            if self.mode == "reset":
                _reset(writer)
            else:
                self._hold(writer)  # accepted, never answered; what it sends is left unread
            return
        link = _Link(writer)
        self._links.add(link)
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream),
                                                          CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            # Nothing listens upstream (a killed site): the client sees its connection reset.
            if link in self._links:
                self._links.discard(link)
                _reset(writer)
            return
        if link not in self._links:  # cut or retargeted while connecting
            up_writer.transport.abort()
            return
        link.upstream = up_writer
        link.tasks = [asyncio.ensure_future(self._pipe(reader, up_writer, link)),
                      asyncio.ensure_future(self._pipe(up_reader, writer, link))]

    async def _pipe(self, source: asyncio.StreamReader, target: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while data := await source.read(CHUNK):
                target.write(data)
                await target.drain()
            if target.can_write_eof():
                target.write_eof()  # a half-close travels on, as it would without the proxy
        except asyncio.CancelledError:
            return
        except OSError:  # one side reset: so is the other
            if link in self._links:
                self._drop_link(link, silence=False)
            return
        # This direction ended cleanly; when the other has too, the link is done.
        if link in self._links and all(t.done() or t is asyncio.current_task() for t in link.tasks):
            self._links.discard(link)
            link.client.close()
            if link.upstream is not None:
                link.upstream.close()
