"""PostgreSQL coordination between the processes of a site, on one dedicated connection per
process: advisory locks elect the process that runs each singleton loop, and LISTEN/NOTIFY
carries loop wake-ups from the process where a change was made to all the others.

A lock is held as long as its connection lives, so a process that dies (or loses the
database) loses its leadership at once and another one takes it at its next tick. On SQLite
(one process) `LocalCoordination` leads everything and notifies nobody.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any

from dcman.services.context import SiteContext
from dcman.cluster.lease_keeper import LeaseKeeper
from dcman.cluster.membership import Membership

log = logging.getLogger("dcman.cluster")
CHANNEL = "dcman_wakeups"
# The loops that run in exactly one process of the site (role `peers`).
SINGLETONS = ("peer-monitor", "association-sync", "migration", "failover")


def lock_key(name: str) -> int:
    """A stable advisory-lock key for a singleton (per database: sites on one server differ)."""
    return zlib.crc32(f"dcman:singleton:{name}".encode())


class LocalCoordination:
    """The single process of an SQLite site: it leads every singleton."""

    async def lead(self, names: tuple[str, ...]) -> frozenset[str]:
        return frozenset(names)

    async def close(self) -> None:
        return None


class PgCoordination:
    def __init__(self, ctx: SiteContext, dsn: str) -> None:
        self.ctx = ctx
        self.dsn = dsn
        self.conn: Any = None
        self.led: frozenset[str] = frozenset()
        self.lock = asyncio.Lock()  # one operation at a time on the connection
        self.pending: set[str] = set()
        self.sender: asyncio.Task | None = None
        for wakeup in ctx.wakeups.values():
            wakeup.shared = self._queue

    # --- the connection -----------------------------------------------------------------

    async def _connect(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(self.dsn, timeout=10)
        await self.conn.add_listener(CHANNEL, self._heard)
        self.led = frozenset()  # a new connection holds no lock yet
        log.info("coordination connection open (listening on %s)", CHANNEL)

    async def _drop(self) -> None:
        conn, self.conn, self.led = self.conn, None, frozenset()
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()

    # --- leadership ---------------------------------------------------------------------

    async def lead(self, names: tuple[str, ...]) -> frozenset[str]:
        """The singletons this process leads now: keeps those it holds (if its connection
        still answers) and tries to take the others."""
        async with self.lock:
            try:
                if self.conn is None or self.conn.is_closed():
                    await self._drop()
                    await self._connect()
                else:
                    await self.conn.fetchval("SELECT 1", timeout=5)
                won = set(self.led)
                for name in names:
                    if name not in won and await self.conn.fetchval(
                            "SELECT pg_try_advisory_lock($1)", lock_key(name), timeout=5):
                        won.add(name)
                        log.info("process %s now leads %s", self.ctx.process_id, name)
                self.led = frozenset(won)
            except Exception as exc:  # the locks went with the connection, if they were held
                if self.led:
                    log.warning("coordination connection lost (%s): no longer leading %s", exc, ",".join(self.led))
                await self._drop()
        return self.led

    # --- wake-ups -----------------------------------------------------------------------

    def _queue(self, name: str) -> None:
        self.pending.add(name)
        if self.sender is None or self.sender.done():
            self.sender = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        """Send the queued wake-ups; a burst of changes costs one NOTIFY per loop name."""
        while self.pending:
            names, self.pending = self.pending, set()
            async with self.lock:
                if self.conn is None:
                    return  # the next tick reconnects; the loops' own ticks cover the gap
                try:
                    for name in sorted(names):
                        await self.conn.execute("SELECT pg_notify($1, $2)", CHANNEL,
                                                f"{self.ctx.process_id}:{name}")
                except Exception as exc:
                    log.info("could not notify the other processes: %s", exc)
                    return

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        sender, _, name = payload.partition(":")
        if sender == self.ctx.process_id:
            return
        wakeup = self.ctx.wakeups.get(name)
        if wakeup is not None:
            wakeup.set_local()

    async def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        await self._drop()


def _dsn(ctx: SiteContext) -> str | None:
    url = ctx.engine.url
    if not url.get_backend_name().startswith("postgresql"):
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def coordination_for(ctx: SiteContext) -> LocalCoordination | PgCoordination:
    dsn = _dsn(ctx)
    return LocalCoordination() if dsn is None else PgCoordination(ctx, dsn)


def keeper_for(ctx: SiteContext, membership: Membership) -> LeaseKeeper | None:
    """The renewal thread of a PostgreSQL process (an SQLite site is alone: none needed)."""
    dsn = _dsn(ctx)
    if dsn is None:
        return None
    timing = membership.timing
    return LeaseKeeper(dsn, membership.uuid, timing.tick, timing.ttl, timing.lease_seconds)
