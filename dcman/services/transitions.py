"""A subcloud transition in a transaction of its own, and the wake-ups it sends once committed:
the loops' compare-and-set step. Use cases that write more in one transaction call
dcman.db.subclouds.apply_transition themselves, then `wake`."""

from __future__ import annotations

from collections.abc import Mapping

from dcman.db import subclouds as subclouds_db
from dcman.domain.transitions import Transition
from dcman.services.context import SiteContext


async def move(ctx: SiteContext, subcloud_id: int, change: Transition,
               only_if: Mapping[str, object] | None = None) -> bool:
    """Apply `change` when the row still holds `only_if`; True when it did."""
    async with ctx.engine.begin() as conn:
        moved = await subclouds_db.apply_transition(conn, subcloud_id, change, only_if=only_if)
    if moved:
        wake(ctx, change)
    return moved


def wake(ctx: SiteContext, change: Transition) -> None:
    """Wake the loops a committed transition concerns."""
    for name in change.wake:
        ctx.wakeups[name].set()
