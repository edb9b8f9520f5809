"""The association sync loop: every primary association that is not in sync, and whose
peer is available, is synced to the peer site (geo-redundancy reference §3)."""

from __future__ import annotations

import asyncio
import logging

from dcman.db import associations as associations_db
from dcman.services.associations import sync_association
from dcman.services.context import SiteContext

log = logging.getLogger("dcman.sync")
RETRY_S = 5.0


async def run(ctx: SiteContext) -> None:
    while True:
        ctx.sync_wakeup.clear()
        try:
            async with ctx.engine.connect() as conn:
                pending = await associations_db.associations_to_sync(conn)
            for association_id in pending:
                await sync_association(ctx, association_id)
        except Exception:  # the next round retries
            log.exception("association sync round failed")
        try:
            await asyncio.wait_for(ctx.sync_wakeup.wait(), RETRY_S)
        except TimeoutError:
            pass
