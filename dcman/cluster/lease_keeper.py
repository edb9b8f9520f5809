"""Heartbeat and lease renewal on a thread of their own (PostgreSQL), so that a process whose
event loop is saturated (an audit burst on a CPU shared with others) does not miss its
renewals and lose its shards, and the work in flight on them, to its peers while alive.

The keeper renews only while the event loop still answers (`loop_seen` is refreshed by a
small task every half second): a process whose loop is stuck for a whole lease period lets
its leases expire, and the others take its work, as if it had died.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

log = logging.getLogger("dcman.cluster")

RENEW_SQL = """UPDATE shard_leases SET expires_at = (now() AT TIME ZONE 'utc') + make_interval(secs => $2)
WHERE holder = $1 AND expires_at >= (now() AT TIME ZONE 'utc')"""
HEARTBEAT_SQL = "UPDATE processes SET heartbeat_at = (now() AT TIME ZONE 'utc') WHERE uuid = $1"


class LeaseKeeper:
    def __init__(self, dsn: str, process_id: str, tick: float, ttl: float, lease_seconds: float) -> None:
        self.dsn, self.process_id = dsn, process_id
        self.tick, self.ttl, self.lease_seconds = tick, ttl, lease_seconds
        self.loop_seen = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dcman-lease-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    async def watch_loop(self) -> None:
        """Runs on the main event loop: proves it still answers."""
        while True:
            self.loop_seen = time.monotonic()
            await asyncio.sleep(0.5)

    def _run(self) -> None:
        asyncio.run(self._keep())

    async def _keep(self) -> None:
        import asyncpg

        conn = None
        while not self._stop.is_set():
            if time.monotonic() - self.loop_seen < self.lease_seconds:
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.dsn, timeout=10)
                    await conn.execute(HEARTBEAT_SQL, self.process_id, timeout=self.tick)
                    await conn.execute(RENEW_SQL, self.process_id, self.ttl, timeout=self.tick)
                except Exception as exc:  # the main loop's own tick still renews; retry next time
                    log.info("lease keeper: %r", exc)
                    if conn is not None:
                        conn.terminate()
                    conn = None
            else:
                log.warning("lease keeper: the event loop has not answered for %.0f s; leases left to expire",
                            time.monotonic() - self.loop_seen)
            await asyncio.to_thread(self._stop.wait, self.tick)
        if conn is not None:
            await conn.close()
