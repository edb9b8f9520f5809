"""Availability audit at scale: a real site and a real simulator, N subclouds.

Starts `dcman sim --count N` and `dcman serve` (SQLite), adds every simulated subcloud
through the API, waits until each is deployed (bootstrap on the simulator) and online, measures one steady
stretch of audits, makes 1 % unreachable and times how long the site takes to see each
one offline, then brings them back and times the way back online.

    .venv/bin/python bench/audit_scale.py --count 10000 --interval 5
    .venv/bin/python bench/audit_scale.py --count 50000 --interval 30
    .venv/bin/python bench/audit_scale.py --count 100000 --interval 60 --processes 3 \
        --database postgresql://postgres@127.0.0.1:5432/test

With --processes N --database URL, N `dcman serve` processes share a fresh database created
on that server (see cluster.py); the figures then also say how the shards were divided, how
many subclouds went unprobed or were probed more than once per interval in the steady
window, and how long the survivors took to hold a SIGKILLed process's shards.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from cluster import ClusterWithSim
from processes import SiteWithSim, clone_subclouds, cpu_seconds, log, peak_rss_mb


class Bench(SiteWithSim):
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        super().__init__(work, args.count, args.interval, (), tls=args.tls)
        self.args = args
        self.missed: dict[str, int] = {}

    # --- the simulator ---------------------------------------------------------------------

    def set_reachable(self, names: list[str], reachable: bool) -> None:
        response = httpx.patch(self.control + "/sim/subclouds", json={"names": names, "reachable": reachable},
                               timeout=60)
        response.raise_for_status()

    # --- the site ----------------------------------------------------------------------------

    async def _each(self, items: list, request) -> None:  # type: ignore[no-untyped-def]
        """Send `request(client, item)` for every item, 8 at a time, as an operator's script would."""
        queue: asyncio.Queue = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)

        async def worker(client: httpx.AsyncClient) -> None:
            while not queue.empty():
                item = queue.get_nowait()
                response = await request(client, item)
                if response.status_code != 200:
                    raise SystemExit(f"{response.request.method} {response.request.url}: "
                                     f"{response.status_code} {response.text}")

        headers = {"X-Auth-Token": self.token}
        async with httpx.AsyncClient(base_url=self.site_url, timeout=120, headers=headers) as client:
            await asyncio.gather(*(worker(client) for _ in range(8)))

    async def add_all(self, items: list[dict]) -> float:
        password = base64.b64encode(b"St8rlingX*").decode()

        def add(client: httpx.AsyncClient, item: dict):  # type: ignore[no-untyped-def]
            files = {"bootstrap_values": ("b.yaml", yaml.safe_dump(item["bootstrap_values"]).encode())}
            data = {"bootstrap-address": "10.10.0.2", "sysadmin_password": password}
            return client.post("/v1.0/subclouds", data=data, files=files)

        started = time.monotonic()
        await self._each(items, add)
        return time.monotonic() - started

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def count(self, where: str) -> int:
        return self.query(f"SELECT count(*) FROM subclouds WHERE {where}")[0][0]

    def wait_all(self, where: str, expected: int, timeout: float) -> float:
        started = time.monotonic()
        while self.count(where) < expected:
            if time.monotonic() - started > timeout:
                raise SystemExit(f"only {self.count(where)} of {expected} reached {where} in {timeout}s")
            time.sleep(0.5)
        return time.monotonic() - started

    def watch(self, names: list[str], status: str, timeout: float) -> list[float]:
        """Seconds until each named subcloud is stored with `status`."""
        started = time.monotonic()
        pending = set(names)
        seen: list[float] = []
        marks = ",".join("?" * len(names))
        while pending and time.monotonic() - started < timeout:
            rows = self.query(f"SELECT name FROM subclouds WHERE availability_status = ? AND name IN ({marks})",
                              (status, *names))
            now = time.monotonic() - started
            for (name,) in rows:
                if name in pending:
                    pending.discard(name)
                    seen.append(now)
            time.sleep(0.1)
        if pending:  # reported as a figure (and the percentiles count them at the timeout)
            log(f"{len(pending)} subclouds never became {status} within {timeout}s, e.g. {sorted(pending)[:5]}")
            self.missed[status] = len(pending)
            seen.extend([timeout] * len(pending))
        return sorted(seen)


def percentile(values: list[float], fraction: float) -> float:
    index = min(len(values) - 1, max(0, round(fraction * (len(values) - 1))))
    return round(sorted(values)[index], 2)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--fraction", type=float, default=0.01, help="share made unreachable")
    parser.add_argument("--processes", type=int, default=1, help="dcman serve processes (needs --database)")
    parser.add_argument("--database", help="PostgreSQL server URL; a fresh database is made on it")
    parser.add_argument("--lease-seconds", type=float, default=15.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--tls", action="store_true",
                        help="the simulator serves TLS (a private CA made here) and the site verifies it")
    parser.add_argument("--clone", action="store_true",
                        help="add the first subcloud through the API and store the others straight into the "
                             "database (minutes instead of an hour at 50,000; no add figure)")
    args = parser.parse_args()
    if args.processes > 1 and not args.database:
        parser.error("--processes needs --database postgresql://…")

    work = Path(tempfile.mkdtemp(prefix="dcman-bench-"))
    cluster = ClusterWithSim(work, args.count, args.interval, args.processes, args.database, args.lease_seconds,
                             tls=args.tls) if args.database else None
    bench = Bench(args, work)
    site = cluster or bench
    site.start()
    if cluster is not None:  # the bench's operator calls and queries go to the cluster
        bench.control, bench.site_url, bench.token = cluster.control, cluster.site_url, cluster.token
        bench.query = cluster.query  # type: ignore[method-assign]
    try:
        items = site.sim_items()
        names = [item["name"] for item in items]
        log(f"adding {len(items)} subclouds")
        if cluster is not None:  # the first through the API, the others cloned from it
            await bench.add_all(items[:1])
            bench.wait_all("deploy_status = 'complete'", 1, 120)
            add_seconds = await cluster.clone(items)
        elif args.clone:
            await bench.add_all(items[:1])
            bench.wait_all("deploy_status = 'complete'", 1, 120)
            add_seconds = await clone_subclouds(f"sqlite+aiosqlite:///{bench.db_path}", items)
        else:
            add_seconds = await bench.add_all(items)
        log(f"added in {add_seconds:.0f}s; waiting for their deploys (bootstrap on the simulator)")
        bench.wait_all("deploy_status = 'complete'", len(names), 3600)
        online_seconds = bench.wait_all("availability_status = 'online'", len(names), 10 * args.interval + 600)
        # The cycle in which they came online also probed each at once as it appeared: let one
        # whole interval pass, so that the window holds steady cycles only.
        log(f"all online after {online_seconds:.0f}s; one interval to settle, then 2 intervals of steady audits")
        await asyncio.sleep(args.interval)

        pids = cluster.pids() if cluster is not None else [bench.site.pid]
        # Listing 100,000 subclouds takes seconds while probes go on: the probe window runs from
        # the middle of the first listing to the middle of the second; CPU is measured between them.
        listed = time.monotonic()
        before_items = {i["name"]: i["probes"] for i in site.sim_items()}
        window_start, cpu_before = (listed + time.monotonic()) / 2, [cpu_seconds(pid) for pid in pids]
        cpu_start = time.monotonic()
        await asyncio.sleep(2 * args.interval)
        cpu_seconds_each = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before)]
        listed = time.monotonic()
        deltas = {i["name"]: i["probes"] - before_items.get(i["name"], 0) for i in site.sim_items()}
        window = (listed + time.monotonic()) / 2 - window_start
        cpu_each = [cpu * window / (listed - cpu_start) for cpu in cpu_seconds_each]  # scaled to the window
        cpu_window = sum(cpu_each)
        sim_cpu = cpu_seconds(site.sim.pid)
        probes = sum(deltas.values())
        cycles = window / args.interval
        log(f"steady window: {probes / window:.0f} audits/s, {cpu_window / window:.2f} cores over the sites "
            f"{[round(c / window, 2) for c in cpu_each]}, unprobed {sum(1 for d in deltas.values() if d == 0)}")

        broken = sorted(random.Random(7).sample(names, max(1, int(len(names) * args.fraction))))
        healthy_offline_before = bench.count("availability_status = 'offline'")
        log(f"making {len(broken)} unreachable")
        bench.set_reachable(broken, False)
        to_offline = bench.watch(broken, "offline", 4 * args.interval + 60)
        false_offline = bench.count("availability_status = 'offline'") - len(broken) - healthy_offline_before
        log("bringing them back")
        bench.set_reachable(broken, True)
        to_online = bench.watch(broken, "online", 4 * args.interval + 60)

        result = {
            "subclouds": len(names),
            "audit_interval_s": args.interval,
            "tls": args.tls,
            "add_per_s": None if args.clone or cluster is not None else round(len(names) / add_seconds, 1),
            "all_online_after_s": round(online_seconds, 1),
            "audits_per_s": round(probes / window, 1),
            "audits_per_s_needed": round(len(names) / args.interval, 1),
            "cpu_s_per_cycle": round(cpu_window / cycles, 2),
            "cpu_cores_avg": round(cpu_window / window, 3),
            "peak_rss_mb": round(sum(peak_rss_mb(pid) for pid in pids)),
            "sim_peak_rss_mb": round(peak_rss_mb(site.sim.pid)),
            "unreachable": len(broken),
            "detect_offline_p50_s": percentile(to_offline, 0.5),
            "detect_offline_p99_s": percentile(to_offline, 0.99),
            "detect_offline_max_s": round(max(to_offline), 2),
            "detect_online_p50_s": percentile(to_online, 0.5),
            "detect_online_p99_s": percentile(to_online, 0.99),
            "detect_online_max_s": round(max(to_online), 2),
            "false_offline": max(0, false_offline),
            "never_offline": bench.missed.get("offline", 0),
            "never_back_online": bench.missed.get("online", 0),
        }
        if cluster is not None:
            result.update(cluster_figures(cluster, deltas, cycles, cpu_each, window, sim_cpu))
        print(json.dumps(result), flush=True)
    finally:
        site.finish(args.keep)


def cluster_figures(cluster: ClusterWithSim, deltas: dict[str, int], cycles: float, cpu_each: list[float],
                    window: float, sim_cpu_total: float) -> dict:
    """How the processes divided the work, then how long a SIGKILLed one took to be replaced."""
    status = cluster.status()
    figures = {
        "processes": cluster.processes,
        "audit_shards_each": [len(p["leases"]["audit"]) for p in status["processes"] if p["alive"]],
        "cpu_cores_each": [round(cpu / window, 3) for cpu in cpu_each],
        "peak_rss_mb_each": [round(peak_rss_mb(pid)) for pid in cluster.pids()],
        "sim_cpu_s_total": round(sim_cpu_total, 1),
        "unprobed_in_window": sum(1 for d in deltas.values() if d == 0),
        # A subcloud audited by two processes would show about twice the cycles.
        "probed_over_once_per_interval": sum(1 for d in deltas.values() if d > cycles + 1),
        "max_probes_in_window": max(deltas.values()),
        "window_cycles": round(cycles, 2),
    }
    victim = cluster.sites[-1]
    log(f"SIGKILL of process pid {victim.pid}")
    victim.process.kill()
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < 10 * cluster.lease_seconds + 60:
        current = cluster.status()
        if current["unheld_shards"] == {"audit": 0, "deploy": 0} and \
                sum(1 for p in current["processes"] if p["alive"]) == cluster.processes - 1:
            figures["takeover_after_kill_s"] = round(time.monotonic() - killed_at, 1)
            break
        time.sleep(0.2)
    figures["lease_seconds"] = cluster.lease_seconds
    return figures


if __name__ == "__main__":
    asyncio.run(main())
