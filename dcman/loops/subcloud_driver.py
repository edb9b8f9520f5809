"""What the drivers of one subcloud share (deploy phases, backups and restores, operations):
the subcloud re-read before every step, since the stored row is the truth and another
writer may have moved it; steps taken until one says there is nothing to do now; a log
file of its own per phase."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from dcman.db import subclouds as subclouds_db
from dcman.db.clock import utcnow
from dcman.domain.subcloud import Subcloud
from dcman.drivers.agent_client import AgentClient, Fenced
from dcman.services.context import SiteContext

T = TypeVar("T")


class SubcloudDriver:
    """Takes one subcloud as far as it can go now, one compare-and-set step at a time."""

    def __init__(self, ctx: SiteContext, client: AgentClient, subcloud_id: int) -> None:
        self.ctx, self.client, self.id = ctx, client, subcloud_id
        self.lost_polls = 0  # the agent's silences in a row, while a phase runs

    async def load(self) -> Subcloud | None:
        async with self.ctx.engine.connect() as conn:
            return await subclouds_db.get_subcloud(conn, self.id)

    def wants(self, subcloud: Subcloud) -> bool:
        """Whether the subcloud, as stored now, is still this driver's to take further."""
        return True

    async def step(self, subcloud: Subcloud) -> bool:
        """One step; False when there is nothing to do now."""
        raise NotImplementedError

    async def run(self) -> None:
        while (subcloud := await self.load()) is not None and self.wants(subcloud):
            if not await self.step(subcloud):
                return

    async def as_controller(self, subcloud: Subcloud, call: Callable[[int], Awaitable[T]]) -> T:
        """Run a managing agent call at the fencing epoch this site holds for the subcloud, and
        once more at the subcloud's own epoch when its refusal says it answers to this site
        at another one (a restart between this site's rehome claim and storing its epoch; the
        audit stores it). A subcloud that answers to another site refuses: Fenced."""
        try:
            return await call(subcloud.fencing_epoch)
        except Fenced as exc:
            if exc.system_controller != self.ctx.site_uuid or exc.fencing_epoch in (None, subcloud.fencing_epoch):
                raise
            return await call(exc.fencing_epoch)

    @staticmethod
    async def append_log(path: Path, line: str) -> None:
        """A time-stamped line at the end of a phase's log (written in a thread)."""

        def append() -> None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(f"{utcnow():%Y-%m-%d %H:%M:%S} {line}\n")

        await asyncio.to_thread(append)
