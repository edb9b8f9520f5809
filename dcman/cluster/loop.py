"""The cluster loop: keeps this process in the registry with its fair share of shard leases
(cluster/membership) and runs each singleton loop it leads (cluster/coordination),
starting it when leadership is won and stopping it when lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from dcman.services.context import SiteContext
from dcman.cluster.coordination import LocalCoordination, PgCoordination
from dcman.cluster.membership import Membership, stop_working_all

log = logging.getLogger("dcman.cluster")
Singleton = Callable[[SiteContext], Coroutine[Any, Any, None]]


async def run(ctx: SiteContext, membership: Membership, coordination: LocalCoordination | PgCoordination,
              singletons: dict[str, Singleton]) -> None:
    loop = asyncio.get_running_loop()
    tasks: dict[str, asyncio.Task] = {}
    names = tuple(singletons)
    last_ok = loop.time()
    try:
        while True:
            started = loop.time()
            led = await coordination.lead(names) if names else frozenset()
            led_at = loop.time()
            for name in led - tasks.keys():
                tasks[name] = asyncio.create_task(_guarded(ctx, name, singletons[name]), name=name)
            for name in set(tasks) - led:
                log.warning("singleton %s stops here: leadership lost", name)
                task = tasks.pop(name)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            membership.leads = frozenset(tasks)
            try:
                await membership.tick()
                last_ok = loop.time()
                if last_ok - started > membership.timing.ttl / 2:  # leases near expiry: say why
                    log.warning("cluster tick took %.1f s (leadership %.1f s)", last_ok - started, led_at - started)
            except Exception:  # the next tick retries; past a lease period the shards go
                log.exception("cluster tick failed")
                if loop.time() - last_ok > membership.timing.ttl:
                    await stop_working_all(ctx)
            await asyncio.sleep(membership.timing.tick)
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def _guarded(ctx: SiteContext, name: str, singleton: Singleton) -> None:
    """Run one singleton; a crash of it restarts it rather than leaving the site without it."""
    while True:
        try:
            await singleton(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("singleton %s failed; restarting it", name)
            await asyncio.sleep(1.0)
