"""Several `dcman serve` processes on one PostgreSQL database and one simulator: the harness
of `audit_scale.py --processes N --database URL`.

The first subcloud is added through the API (so that its row is exactly what an add stores);
the rest are cloned from it straight into the database in batches (adding 100,000 through the
API at ~20/s would take over an hour and measure the add, not the audit). They are stored
offline, so the figures include the audit bringing every one online.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from processes import Serve, SiteWithSim, clone_subclouds


def _admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


class ClusterWithSim(SiteWithSim):
    """A `dcman sim` and `processes` × `dcman serve` on a fresh database made from `database`:
    `server` is the first process (it migrates the schema), `others` the rest."""

    def __init__(self, work: Path, count: int, interval: float, processes: int, database: str,
                 lease_seconds: float, tls: bool = False) -> None:
        super().__init__(work, count, interval, (), tls=tls)
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

    async def clone(self, items: list[dict]) -> float:
        """Store every item after the first as a copy of the first's row (added through the API)."""
        return await clone_subclouds("postgresql+asyncpg://" + self.dsn.removeprefix("postgresql://"), items)


def run_clone(bench: ClusterWithSim, items: list[dict]) -> float:
    return asyncio.run(bench.clone(items))
