"""The shards this process may work on now, per lease kind: what the audit and deploy loops
read, and how they are told to let go of shards before the leases are given back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dcman.domain.cluster import SHARDS, LeaseKind

Drainer = Callable[[frozenset[int]], Awaitable[None]]


@dataclass
class ShardSet:
    """The shards of one lease kind held by this process. Membership alone changes `held`."""

    kind: LeaseKind
    held: frozenset[int] = frozenset()
    # Called with shards about to be given back: each loop stops their work and returns when
    # none of it is in flight any more, so that no subcloud is worked by two processes at once.
    drainers: list[Drainer] = field(default_factory=list)

    def holds(self, subcloud_id: int) -> bool:
        return subcloud_id % SHARDS in self.held

    async def let_go(self, shards: frozenset[int]) -> None:
        """Stop working these shards: drop them, then wait for the loops to drain them."""
        self.held = self.held - shards
        if shards:
            await asyncio.gather(*(drain(shards) for drain in self.drainers))
