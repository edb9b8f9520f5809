"""The one runner of the reconcilers (controller-runtime's shape): each loop is a reconcile
function; the runner owns when it runs (wake-ups, ticks), what a failed round costs
(logged, then a back-off) and the per-subcloud tasks of the loops that drive subclouds.

A round is level-triggered: it reads the stored state and acts on what it finds, so a
missed wake-up, a failed round or a restart only delays the work, never loses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dcman.cluster.shards import ShardSet
from dcman.domain.cluster import SHARDS

log = logging.getLogger("dcman.loops")
# After failed rounds in a row the next waits twice as long each time, up to this.
MAX_BACKOFF_S = 5.0

Reconcile = Callable[[], Awaitable[float | None]]
Work = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Timing:
    """When a loop runs again: at its wake-up, else `idle_s` after the last round (a round may
    ask for a shorter wait); rounds are at least `min_gap_s` apart however often it is woken."""

    idle_s: float
    min_gap_s: float = 0.0


async def run(name: str, reconcile: Reconcile, timing: Timing, wakeup: asyncio.Event | None = None) -> None:
    """Run `reconcile` round after round, for ever. It returns how long to wait at most before
    the next round (None: the idle tick); a wake-up set during a round is not lost (cleared
    before it)."""
    failures = 0
    while True:
        if wakeup is not None:
            wakeup.clear()
        delay: float | None = None
        try:
            delay = await reconcile()
            failures = 0
        except Exception:  # a database hiccup must not kill the loop; the next round retries
            failures += 1
            log.exception("%s: round failed (%d in a row)", name, failures)
        if timing.min_gap_s:
            await asyncio.sleep(timing.min_gap_s)
        if failures:  # not woken early: a round that fails at once would spin on every wake-up
            await asyncio.sleep(min(MAX_BACKOFF_S, timing.idle_s * 2 ** (failures - 1)))
            continue
        wait = timing.idle_s if delay is None else delay
        if wakeup is None:
            await asyncio.sleep(wait)
            continue
        try:
            await asyncio.wait_for(wakeup.wait(), wait)
        except TimeoutError:
            pass


class Tasks:
    """One task per key (a subcloud, a peer), each running its work until it returns; one
    key's trouble is logged and never stops the others."""

    def __init__(self, name: str, ended: Callable[[], None] | None = None) -> None:
        self.name = name
        self.ended = ended  # called when a task ends, so that its loop looks again at once
        self.running: dict[int, asyncio.Task] = {}

    def __len__(self) -> int:
        return len(self.running)

    def __contains__(self, key: int) -> bool:
        return key in self.running

    def start(self, key: int, work: Work) -> None:
        async def guarded() -> None:
            try:
                await work()
            except Exception:
                log.exception("%s of %s failed", self.name, key)
            finally:
                self.running.pop(key, None)
                if self.ended is not None:
                    self.ended()

        self.running[key] = asyncio.create_task(guarded(), name=f"{self.name}-{key}")

    async def stop(self, keys: Iterable[int]) -> None:
        """Cancel the tasks of these keys and wait until they are gone."""
        stopping = [self.running[key] for key in keys if key in self.running]
        for task in stopping:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)


Pending = Callable[[AsyncConnection, list[int], int, frozenset[int]], Awaitable[Iterable[tuple[int, Work]]]]


class SubcloudTasks(Tasks):
    """At most `limit` subclouds driven at once, only of the shards this process holds; the
    tasks of shards given back are stopped before their leases go (every step they take is a
    compare-and-set on the stored state, so the new holder carries on from there)."""

    def __init__(self, name: str, shards: ShardSet, limit: int, ended: Callable[[], None] | None = None) -> None:
        super().__init__(name, ended)
        self.shards, self.limit = shards, limit
        shards.drainers.append(self.drain)

    async def drain(self, shards: frozenset[int]) -> None:
        await self.stop([key for key in self.running if key % SHARDS in shards])

    async def fill(self, engine: AsyncEngine, pending: Pending, busy: Iterable[int] = ()) -> None:
        """Start the work `pending` finds, up to the limit: it is given the subclouds to leave
        out (those running here and `busy`), how many to find at most, and the held shards."""
        room, shards = self.limit - len(self.running), self.shards.held
        if room <= 0 or not shards:
            return
        async with engine.connect() as conn:
            found = await pending(conn, [*self.running, *busy], room, shards)
        for subcloud_id, work in found:
            if self.shards.holds(subcloud_id):  # not given back while we queried
                self.start(subcloud_id, work)
