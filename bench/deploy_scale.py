"""Deploy at scale: a real site deploys N simulated subclouds added all at once.

Starts `dcman sim --count N --phase-seconds S` and `dcman serve` (SQLite, agent scheme
http, the simulator's agent port, DCMAN_AUDIT_INTERVAL), then adds every simulated
subcloud concurrently through the API (`POST /v1.0/subclouds`, bootstrap values from the
simulator's `GET /sim/subclouds?offset=&limit=`, sysadmin password 'St8rlingX*' in base64),
and watches the site's SQLite database (read-only, every 0.2 s) until every subcloud is
`complete` and online: how long that takes, and how many subclouds were at most in a
running phase state (installing / bootstrapping / configuring) at once.

    .venv/bin/python bench/deploy_scale.py --count 1000 --phase-seconds 1
    .venv/bin/python bench/deploy_scale.py --count 1000 --phase-seconds 1 --full

`--full` adds install values and a deploy config too, so that all three phases run. The
last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from processes import SiteWithSim, cpu_seconds, log, peak_rss_mb

SYSADMIN_PASSWORD = base64.b64encode(b"St8rlingX*").decode()
RUNNING_PHASES = ("installing", "bootstrapping", "configuring")
WATCH_EVERY_S = 0.2
INSTALL_VALUES = {
    "bootstrap_interface": "eno1",
    "bootstrap_address": "10.10.0.2",
    "bootstrap_address_prefix": 16,
    "install_type": 0,
    "bmc_username": "root",
    "bmc_address": "10.20.0.2",
    "software_version": "24.09",
}
DEPLOY_CONFIG = "deployment: {profile: edge}\n"












@dataclass
class Watch:
    """What the database watcher saw, in seconds since the adds started."""

    started: float
    expected: int
    max_running: int = 0
    all_complete_s: float | None = None
    all_online_s: float | None = None
    last_counts: dict[str, int] = field(default_factory=dict)
    polls: int = 0
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Bench(SiteWithSim):
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        super().__init__(work, args.count, args.interval, ("--phase-seconds", str(args.phase_seconds)))
        self.args = args

    # --- the site ----------------------------------------------------------------------------

    def form(self, item: dict) -> tuple[dict, dict]:
        files = {"bootstrap_values": ("bootstrap.yaml", yaml.safe_dump(item["bootstrap_values"]).encode(),
                                      "application/x-yaml")}
        data = {"bootstrap-address": "10.10.0.2", "sysadmin_password": SYSADMIN_PASSWORD}
        if self.args.full:
            files["install_values"] = ("install.yaml", yaml.safe_dump(INSTALL_VALUES).encode(), "application/x-yaml")
            files["deploy_config"] = ("deploy.yaml", DEPLOY_CONFIG.encode(), "application/x-yaml")
            data["bmc_password"] = base64.b64encode(b"bmc-secret").decode()
        return data, files

    async def add_all(self, items: list[dict]) -> tuple[float, float]:
        """POST every subcloud at once (at most --concurrency in flight); returns the seconds
        until every add was answered and the slowest single add."""
        gate = asyncio.Semaphore(self.args.concurrency)
        limits = httpx.Limits(max_connections=self.args.concurrency, max_keepalive_connections=self.args.concurrency)
        slowest = 0.0

        async def add(client: httpx.AsyncClient, item: dict) -> None:
            nonlocal slowest
            data, files = self.form(item)
            async with gate:
                began = time.monotonic()
                response = await client.post("/v1.0/subclouds", data=data, files=files)
                slowest = max(slowest, time.monotonic() - began)
            if response.status_code != 200:
                raise SystemExit(f"adding {item['name']}: {response.status_code} {response.text}")

        started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.site_url, timeout=600, limits=limits,
                                     headers={"X-Auth-Token": self.token}) as client:
            await asyncio.gather(*(add(client, item) for item in items))
        return time.monotonic() - started, slowest

    def counts(self, db: sqlite3.Connection) -> tuple[dict[str, int], int]:
        """(subclouds per deploy status, subclouds online)."""
        by_status = dict(db.execute("SELECT deploy_status, count(*) FROM subclouds GROUP BY deploy_status"))
        online = db.execute("SELECT count(*) FROM subclouds WHERE availability_status = 'online'").fetchone()[0]
        return by_status, online

    def watch(self, watch: Watch, timeout: float) -> None:
        """Poll the site's database every 0.2 s (in a thread) until all are complete and online."""
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        try:
            while not watch.done.is_set():
                began = time.monotonic()
                try:
                    by_status, online = self.counts(db)
                except sqlite3.OperationalError as exc:  # busy beyond the timeout: try again
                    watch.error = str(exc)
                    time.sleep(WATCH_EVERY_S)
                    continue
                now = time.monotonic() - watch.started
                watch.polls += 1
                watch.last_counts = by_status
                watch.max_running = max(watch.max_running, sum(by_status.get(s, 0) for s in RUNNING_PHASES))
                if watch.all_complete_s is None and by_status.get("complete", 0) >= watch.expected:
                    watch.all_complete_s = now
                if watch.all_online_s is None and online >= watch.expected:
                    watch.all_online_s = now
                if watch.all_complete_s is not None and watch.all_online_s is not None:
                    return
                failed = sum(n for s, n in by_status.items() if s.endswith("-failed"))
                if failed:
                    watch.error = f"{failed} subclouds failed their deploy: {by_status}"
                    return
                if now > timeout:
                    watch.error = f"not all complete and online after {timeout:.0f}s: {by_status}, {online} online"
                    return
                time.sleep(max(0.0, WATCH_EVERY_S - (time.monotonic() - began)))
        finally:
            db.close()
            watch.done.set()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--phase-seconds", type=float, default=1.0, help="how long each simulated phase takes")
    parser.add_argument("--interval", type=float, default=5.0, help="DCMAN_AUDIT_INTERVAL of the site")
    parser.add_argument("--concurrency", type=int, default=0,
                        help="adds in flight at once (default: all of them)")
    parser.add_argument("--full", action="store_true", help="install values and a deploy config too")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    args.concurrency = args.concurrency or args.count

    work = Path(tempfile.mkdtemp(prefix="dcman-deploy-bench-"))
    bench = Bench(args, work)
    bench.start()
    try:
        items = bench.sim_items()
        log(f"adding {len(items)} subclouds, {args.concurrency} at once")
        cpu_before = cpu_seconds(bench.site.pid)
        watch = Watch(started=time.monotonic(), expected=len(items))
        watcher = threading.Thread(target=bench.watch, args=(watch, args.timeout), daemon=True)
        watcher.start()
        add_seconds, slowest_add = await bench.add_all(items)
        log(f"all adds answered after {add_seconds:.1f}s (slowest {slowest_add:.1f}s); waiting for the deploys")
        while not watch.done.is_set():
            await asyncio.sleep(1)
            log(f"deploy statuses: {watch.last_counts}")
        if watch.error and (watch.all_complete_s is None or watch.all_online_s is None):
            raise SystemExit(watch.error)
        cpu = cpu_seconds(bench.site.pid) - cpu_before
        assert watch.all_complete_s is not None and watch.all_online_s is not None
        phases = 3 if args.full else 1
        result = {
            "subclouds": len(items),
            "phase_seconds": args.phase_seconds,
            "phases": phases,
            "add_all_s": round(add_seconds, 1),
            "slowest_add_s": round(slowest_add, 2),
            "all_complete_s": round(watch.all_complete_s, 1),
            "all_online_s": round(watch.all_online_s, 1),
            "max_in_running_phase": watch.max_running,
            "audit_interval_s": args.interval,
            "site_cpu_s": round(cpu, 1),
            "site_peak_rss_mb": round(peak_rss_mb(bench.site.pid)),
            "sim_peak_rss_mb": round(peak_rss_mb(bench.sim.pid)),
            "watch_polls": watch.polls,
        }
        print(json.dumps(result), flush=True)
    finally:
        bench.finish(args.keep)


if __name__ == "__main__":
    asyncio.run(main())
