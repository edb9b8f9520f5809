"""This process among those sharing the database: its row in the process registry, its
heartbeat, and its shard leases (design principle 5).

Every tick (a quarter of DCMAN_LEASE_SECONDS) a process heartbeats, renews its leases, gives
back what is above its fair share when another worker of that role is short, and claims
free or expired leases up to its share with SELECT … FOR UPDATE SKIP LOCKED. Taking a lease
whose holder died first recovers that shard's interrupted deploy steps, in the same
transaction. On SQLite the site is one process: it removes the rows of its previous runs and
takes every lease at once, through the same code.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from dcman.db import cluster as cluster_db
from dcman.domain.cluster import (
    KIND_OF_ROLE,
    SHARDS,
    LeaseKind,
    LeaseTiming,
    Role,
    fair_share,
    surplus,
)
from dcman.services.context import SiteContext
from dcman.services.backup import recover_interrupted_backups
from dcman.services.deploy import recover_interrupted

log = logging.getLogger("dcman.cluster")


class Membership:
    def __init__(self, ctx: SiteContext, roles: tuple[Role, ...]) -> None:
        self.ctx = ctx
        self.roles = roles
        self.uuid = ctx.process_id or str(uuid.uuid4())
        ctx.process_id = self.uuid
        self.timing = LeaseTiming(ctx.settings.lease_seconds)
        self.kinds = [KIND_OF_ROLE[role] for role in roles if role in KIND_OF_ROLE]
        self.leads: frozenset[str] = frozenset()
        self.exclusive = not ctx.engine.url.get_backend_name().startswith("postgresql")

    def _expires(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.timing.ttl)

    async def join(self) -> None:
        """Enter the registry (on SQLite, as the only process: earlier runs' leases expire now)."""
        async with self.ctx.engine.begin() as conn:
            now = await cluster_db.db_now(conn)
            if self.exclusive:
                await cluster_db.remove_others(conn, self.uuid)
                await cluster_db.expire_all(conn, now)
            await cluster_db.register(conn, self._row(now))
        log.info("process %s joined with roles %s", self.uuid, ",".join(self.roles))

    def _row(self, now: datetime) -> dict[str, Any]:
        return {"uuid": self.uuid, "host": socket.gethostname(), "pid": os.getpid(), "bind": self.ctx.settings.bind,
                "roles": ",".join(self.roles), "leads": ",".join(sorted(self.leads)), "started_at": now,
                "heartbeat_at": now}

    async def tick(self) -> None:
        """Heartbeat and bring every lease kind of this process's roles to its fair share."""
        plans: dict[LeaseKind, tuple[int, set[int], set[int]]] = {}
        async with self.ctx.engine.begin() as conn:
            now = await cluster_db.db_now(conn)
            if not await cluster_db.heartbeat(conn, self.uuid, now, ",".join(sorted(self.leads))):
                await cluster_db.register(conn, self._row(now))  # forgotten as dead: back in
            await cluster_db.forget_dead(conn, now - timedelta(seconds=self.timing.forget_after))
            for kind in self.kinds:
                held = set(self.ctx.shards[kind].held)
                kept = await cluster_db.renew(conn, kind, self.uuid, held, self._expires(now))
                workers = await cluster_db.live_workers(conn, _role_of(kind), now - timedelta(seconds=self.timing.ttl))
                fair = fair_share(len(workers))
                counts = await cluster_db.holdings(conn, kind, now)
                short = any(counts.get(worker, 0) < fair for worker in workers if worker != self.uuid)
                plans[kind] = (fair, held - kept, surplus(kept, fair, short))
        for kind, (fair, lost, give_back) in plans.items():
            shards = self.ctx.shards[kind]
            if lost:
                log.warning("process %s lost %d %s lease(s) it did not renew in time", self.uuid, len(lost), kind)
            await shards.let_go(frozenset(lost | give_back))
            if give_back:
                async with self.ctx.engine.begin() as conn:
                    await cluster_db.release(conn, kind, self.uuid, give_back, await cluster_db.db_now(conn),
                                             clean=True)
                log.info("process %s gave back %d %s shard(s) for a fair share of %d", self.uuid, len(give_back),
                         kind, fair)
            if len(shards.held) < fair:
                await self._claim(kind, fair - len(shards.held))

    async def _claim(self, kind: LeaseKind, count: int) -> None:
        async with self.ctx.engine.begin() as conn:
            now = await cluster_db.db_now(conn)
            taken = await cluster_db.claim(conn, kind, self.uuid, count, now, self._expires(now))
            from_dead = frozenset(shard for shard, previous in taken if previous not in (None, self.uuid))
            recovered = 0
            if kind is LeaseKind.DEPLOY and from_dead:
                recovered = await recover_interrupted(conn, from_dead)
                recovered += await recover_interrupted_backups(conn, from_dead)
        if not taken:
            return
        shards = self.ctx.shards[kind]
        shards.held = shards.held | {shard for shard, _ in taken}
        log.info("process %s took %d %s shard(s) (%d from a dead process, %d step(s) recovered); holds %d of %d",
                 self.uuid, len(taken), kind, len(from_dead), recovered, len(shards.held), SHARDS)
        (self.ctx.deploy_wakeup if kind is LeaseKind.DEPLOY else self.ctx.audit_wakeup).set_local()

    async def leave(self) -> None:
        """At a clean stop: stop working, let the leases expire now (the taker recovers the
        shards as after a restart, §2.3.4) and leave the registry."""
        for kind in self.kinds:
            shards = self.ctx.shards[kind]
            held = set(shards.held)
            await shards.let_go(frozenset(held))
            async with self.ctx.engine.begin() as conn:
                await cluster_db.release(conn, kind, self.uuid, held, await cluster_db.db_now(conn), clean=False)
        async with self.ctx.engine.begin() as conn:
            await cluster_db.remove_process(conn, self.uuid)


def _role_of(kind: LeaseKind) -> str:
    return next(role.value for role, k in KIND_OF_ROLE.items() if k is kind)


async def stop_working_all(ctx: SiteContext) -> None:
    """The database has not answered for longer than a lease: another process may hold our
    shards by now, so stop working them until the next successful tick claims some again."""
    for shards in ctx.shards.values():
        if shards.held:
            log.warning("no heartbeat for a lease period: letting go of %d %s shard(s)", len(shards.held),
                        shards.kind)
            await shards.let_go(shards.held)
