"""The migration loop: advances every `migrating` peer group (geo-redundancy reference §4),
see dcman.services.migration. Fast while a migration runs, idle otherwise."""

from __future__ import annotations

import asyncio
import logging

from dcman.services.context import SiteContext
from dcman.services.migration import Migrations

log = logging.getLogger("dcman.migration")
BUSY_TICK_S = 0.5
MIN_GAP_S = 0.1
IDLE_TICK_S = 5.0


async def run(ctx: SiteContext) -> None:
    migrations = Migrations()
    while True:
        ctx.migration_wakeup.clear()
        busy = False
        try:
            busy = await migrations.advance(ctx)
        except Exception:  # the next round retries
            log.exception("migration round failed")
        # Woken when a rehome ends, so a freed slot is filled at once; a round reads the whole
        # group, so rounds are at least MIN_GAP_S apart however many rehomes end.
        await asyncio.sleep(MIN_GAP_S)
        try:
            await asyncio.wait_for(ctx.migration_wakeup.wait(), BUSY_TICK_S if busy else IDLE_TICK_S)
        except TimeoutError:
            pass
