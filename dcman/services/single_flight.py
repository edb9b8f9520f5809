"""One run of an expensive read at a time: callers that arrive while it runs share its answer.

/metrics and the dashboard read the whole site; 300 scrapes at once then cost one read (one
database connection, one rendering) instead of starving the pool and the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[object, asyncio.Future[T]] = {}

    async def run(self, key: object, read: Callable[[], Awaitable[T]]) -> T:
        """The answer of the read under way for `key`, or of a new one. The key must be an object
        that lives as long as what it reads (an engine), so that it is never reused for another."""
        future = self._running.get(key)
        if future is None:
            future = asyncio.ensure_future(read())
            self._running[key] = future
            future.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(future)  # a caller that gives up does not cancel the others' read

    def _forget(self, key: object, done: asyncio.Future[T]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so that a failure nobody awaited is not logged as lost
