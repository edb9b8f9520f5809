"""What `GET /v1.0/processes` and `dcman status` show: the processes sharing the site's
database, their roles, the shard leases each holds and the leader of each singleton."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dcman.db import cluster as cluster_db
from dcman.domain.cluster import SHARDS, LeaseKind, LeaseTiming
from dcman.services.context import SiteContext
from dcman.cluster.coordination import SINGLETONS


def _iso(value: Any) -> str:
    return value.isoformat(sep=" ", timespec="seconds")


async def cluster_status(ctx: SiteContext) -> dict[str, Any]:
    timing = LeaseTiming(ctx.settings.lease_seconds)
    async with ctx.engine.connect() as conn:
        now = await cluster_db.db_now(conn)
        rows = await cluster_db.list_processes(conn)
        leases = await cluster_db.leases_by_holder(conn, now)
    alive_since = now - timedelta(seconds=timing.ttl)
    processes, leaders = [], {name: None for name in SINGLETONS}
    for row in rows:
        alive = row.heartbeat_at >= alive_since
        held = leases.get(row.uuid, {})
        if alive:
            for name in row.leads:
                leaders[name] = row.uuid
        processes.append({
            "uuid": row.uuid, "host": row.host, "pid": row.pid, "bind": row.bind, "roles": list(row.roles),
            "alive": alive, "started_at": _iso(row.started_at), "heartbeat_at": _iso(row.heartbeat_at),
            "leases": {kind.value: held.get(kind.value, []) for kind in LeaseKind},
            "leads": list(row.leads) if alive else [],
        })
    unheld = {kind.value: SHARDS - sum(len(h.get(kind.value, [])) for h in leases.values()) for kind in LeaseKind}
    return {"processes": processes, "leaders": leaders, "shards": SHARDS, "unheld_shards": unheld,
            "lease_seconds": ctx.settings.lease_seconds, "this_process": ctx.process_id}
