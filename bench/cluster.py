"""Several `dcman serve` processes on one PostgreSQL database and one simulator: the harness
of `audit_scale.py --processes N --database URL`.

The first subcloud is added through the API (so that its row is exactly what an add stores);
the rest are cloned from it straight into the database in batches (adding 100,000 through the
API at ~20/s would take over an hour and measure the add, not the audit). They are stored
offline, so the figures include the audit bringing every one online.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from processes import Serve, SiteWithSim, log


def _admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


class ClusterWithSim(SiteWithSim):
    """A `dcman sim` and `processes` × `dcman serve` on a fresh database made from `database`:
    `server` is the first process (it migrates the schema), `others` the rest."""

    def __init__(self, work: Path, count: int, interval: float, processes: int, database: str,
                 lease_seconds: float) -> None:
        super().__init__(work, count, interval, ())
        self.processes, self.lease_seconds = processes, lease_seconds
        self.admin_dsn = _admin_dsn(database)
        self.db_name = f"dcman_bench_{uuid.uuid4().hex[:10]}"
        self.dsn = self.admin_dsn.rsplit("/", 1)[0] + "/" + self.db_name
        self.server = self._process(0)
        self.site_url = self.server.url

    def _process(self, n: int) -> Serve:
        env = {**self.site_env("bench-site"), "DCMAN_LEASE_SECONDS": str(self.lease_seconds),
               "DCMAN_DATABASE_URL": "postgresql+asyncpg://" + self.dsn.removeprefix("postgresql://"),
               "DCMAN_SECRET_KEY": "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMTI="}
        return Serve(self.work / f"site{n}", self.work / f"site{n}.log", env)

    def _admin(self, sql: str) -> None:
        conn = psycopg2.connect(self.admin_dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def start(self) -> None:
        self._admin(f'CREATE DATABASE "{self.db_name}"')
        super().start()  # the simulator, then the first process
        for n in range(1, self.processes):  # one at a time after the first: it migrated the schema
            other = self._process(n)
            other.start()
            self.others.append(other)

    @property
    def sites(self) -> list[Serve]:
        return [self.server, *self.others]

    def pids(self) -> list[int]:
        return [site.pid for site in self.sites]

    def finish(self, keep: bool) -> None:
        super().finish(keep)
        if not keep:
            self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = psycopg2.connect(self.dsn)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return cur.fetchall()
        finally:
            conn.close()

    def status(self) -> dict[str, Any]:
        return httpx.get(self.site_url + "/v1.0/processes", headers={"X-Auth-Token": self.token}, timeout=30).json()

    async def clone(self, items: list[dict], batch: int = 2000) -> float:
        """Store every item as a copy of the first subcloud's row (added through the API)."""
        from sqlalchemy import insert, select
        from sqlalchemy.ext.asyncio import create_async_engine

        from dcman.db import tables as t
        from dcman.db.repository import network_keys, utcnow

        started = time.monotonic()
        engine = create_async_engine("postgresql+asyncpg://" + self.dsn.removeprefix("postgresql://"))
        try:
            async with engine.connect() as conn:
                template = dict((await conn.execute(select(t.subclouds).where(
                    t.subclouds.c.name == items[0]["name"]))).mappings().one())
            template.pop("id")
            for start in range(1, len(items), batch):
                now = utcnow()
                rows = []
                for item in items[start:start + batch]:
                    values = item["bootstrap_values"]
                    row = {**template, "name": item["name"], "region_name": item["region_name"],
                           "management_subnet": values["management_subnet"],
                           "management_start_ip": values["management_start_address"],
                           "management_end_ip": values["management_end_address"],
                           "management_gateway_ip": values["management_gateway_address"],
                           "availability_status": "offline", "audit_fail_count": 0, "created_at": now,
                           "updated_at": now}
                    row.update(network_keys(row["management_subnet"], row["management_start_ip"],
                                            row["management_end_ip"]))
                    rows.append(row)
                async with engine.begin() as conn:
                    ids = list((await conn.execute(insert(t.subclouds).returning(t.subclouds.c.id), rows)).scalars())
                    await conn.execute(insert(t.subcloud_alarms), [
                        {"uuid": str(uuid.uuid4()), "subcloud_id": i, "critical_alarms": -1, "major_alarms": -1,
                         "minor_alarms": -1, "warnings": -1, "cloud_status": "disabled", "created_at": now}
                        for i in ids])
                if start // batch % 10 == 0:
                    log(f"stored {start + len(rows)} of {len(items)}")
        finally:
            await engine.dispose()
        return time.monotonic() - started


def run_clone(bench: ClusterWithSim, items: list[dict]) -> float:
    return asyncio.run(bench.clone(items))
