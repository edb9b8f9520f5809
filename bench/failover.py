"""Failover at scale: a peer group of N simulated subclouds moves from site 1 to site 2.

One `dcman sim --count N --phase-seconds S` (every phase, rehome included, takes S seconds)
and two `dcman serve` sites on SQLite. Site 1 deploys and manages the N subclouds, puts them
in a peer group (`max_subcloud_rehoming` M) and associates it with site 2 (priority 2), which
then holds N secondary copies. The two sites are on different system-controller subnets
(site 2: 127.50.0.0/16), so every copy carries site 2's gateway. Then site 1 is killed
(SIGKILL), and the group is migrated on site 2 at once (`PATCH …/migrate`), before site 2's
heartbeat has noticed. Measured:

(a) migrate: from the migrate call until every subcloud is managed and online on site 2
    (site 2 first waits until its heartbeat declares site 1 unavailable);
    With it, where the time of each wave went, from site 2's log (`waves`, medians and 90th
    percentiles in seconds): `start`, from `pre-rehome` until the agent runs the rehome;
    `phase`, the rehome as the site saw it (ideal: --phase-seconds); `refill`, from the k-th
    rehome that ended until the (k+M)-th `pre-rehome`, the slot it freed taken again;
    `managed`, from the end of a rehome until the subcloud is managed; `per_wave`, from the
    first `pre-rehome` until the last rehome ended, divided by N / M;
    With --automatic, nobody migrates: site 2's record of site 1 has policy `rehome` and its copy
    of the group the subclouds' password, and (a) is timed from the kill (heartbeat verdict,
    the witnesses, site 2's own migrate, every subcloud managed and online).
(b) reconcile: from site 1's restart (same data directory, same port) until site 1's copies
    are all `secondary` and unmanaged, site 1 names site 2 the group's leader, alarm
    280.005 is raised on site 1, and site 2's `migration_status` is reset.

Each M in `--max-rehoming` gets a fresh pair of sites. One JSON line per measurement:

    .venv/bin/python bench/failover.py --count 1000 --phase-seconds 1 --max-rehoming 50 250
    .venv/bin/python bench/failover.py --count 1000 --phase-seconds 1 --max-rehoming 50 --automatic
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from processes import ADMIN_PASSWORD, Serve, SiteWithSim, cpu_seconds, log, peak_rss_mb

SYSADMIN_PASSWORD = base64.b64encode(b"St8rlingX*").decode()
GROUP = "pg-bench"
SITE1_GATEWAY = "127.0.0.1"  # in site 1's (default) system-controller subnet, 127.0.0.0/16
SITE2_SUBNET, SITE2_GATEWAY = "127.50.0.0/16", "127.50.0.1"
WATCH_EVERY_S = 0.2


def api(site: Serve, method: str, path: str, **kw: Any) -> Any:
    response = httpx.request(method, site.url + "/v1.0" + path, headers={"X-Auth-Token": site.token},
                             timeout=120, **kw)
    if response.status_code != 200:
        raise SystemExit(f"{method} {path} on {site.url}: {response.status_code} {response.text}")
    return response.json()


def query(site: Serve, sql: str, params: tuple = ()) -> list[tuple]:
    """A read-only look at a site's database (the site keeps running)."""
    with sqlite3.connect(f"file:{site.db_path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql, params).fetchall()


def wait_for(what: str, predicate: Callable[[], bool], timeout: float, every: float = WATCH_EVERY_S) -> float:
    """Seconds until `predicate()` holds; gives up with a message after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(every)
    return time.monotonic() - started


async def each(site: Serve, items: list, request: Callable, concurrency: int) -> float:
    """`request(client, item)` for every item, `concurrency` in flight; the seconds it took."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, item: Any) -> None:
        async with gate:
            response = await request(client, item)
        if response.status_code != 200:
            raise SystemExit(f"{response.request.method} {response.request.url}: "
                             f"{response.status_code} {response.text}")

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=site.url + "/v1.0", timeout=600, limits=limits,
                                 headers={"X-Auth-Token": site.token}) as client:
        await asyncio.gather(*(one(client, item) for item in items))
    return time.monotonic() - started


# A subcloud's transition as a site logs it (deploy and migration loops).
LOGGED = re.compile(r"^(\S+ \S+) INFO dcman\.\w+: subcloud (\S+?):? (.+)$")


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3), "p90": round(ordered[int(0.9 * len(ordered))], 3)}


def wave_timings(log_path: Path, offset: int, slots: int) -> dict[str, Any]:
    """Where each wave's time went, from what the site logged after `offset` (see (a) above)."""
    at: dict[str, dict[str, float]] = {"queued": {}, "running": {}, "done": {}, "managed": {}}
    with log_path.open("rb") as handle:
        handle.seek(offset)
        for line in handle.read().decode(errors="replace").splitlines():
            found = LOGGED.match(line)
            if found is None:
                continue
            when = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            what = {"secondary -> pre-rehome": "queued", "rehome-failed -> pre-rehome": "queued",
                    "rehome-prep-failed -> pre-rehome": "queued", "pre-rehome -> rehoming": "running",
                    "rehoming -> complete": "done", "rehomed and online: managed": "managed"}.get(found[3])
            if what is not None:
                at[what][found[2]] = when
    queued, running, done, managed = at["queued"], at["running"], at["done"], at["managed"]
    if not done:
        return {}
    # A site that does not log its `pre-rehome` moves: the refill until the agent runs it.
    ends, starts = sorted(done.values()), sorted((queued or running).values())
    waves = len(done) / slots
    timings = {
        "start": spread([running[n] - queued[n] for n in running if n in queued] or [0.0]),
        "phase": spread([done[n] - running[n] for n in done if n in running]),
        "refill": spread([starts[k + slots] - ends[k] for k in range(len(starts) - slots)] or [0.0]),
        "managed": spread([managed[n] - done[n] for n in managed if n in done]),
    }
    return {**timings, "per_wave": round((ends[-1] - starts[0]) / waves, 3), "waves": round(waves, 1)}


@dataclass
class Peaks:
    """What the watcher thread saw while the migration ran."""

    sim_rehoming: int = 0      # subclouds whose agent ran the rehome phase at once
    site_rehoming: int = 0     # subclouds site 2 had in pre-rehome or rehoming at once
    polls: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


class Bench(SiteWithSim):
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        super().__init__(work, args.count, args.interval, ("--phase-seconds", str(args.phase_seconds)))
        self.args = args

    def start_both(self) -> None:
        self.start()
        self.site1 = self.server
        self.site2 = self.add_site("site-2", {"DCMAN_SYSTEM_CONTROLLER_SUBNET": SITE2_SUBNET})

    # --- set-up ----------------------------------------------------------------------------

    async def deploy_and_manage(self, items: list[dict]) -> dict[str, float]:
        def add(client: httpx.AsyncClient, item: dict):  # type: ignore[no-untyped-def]
            files = {"bootstrap_values": ("bootstrap.yaml", yaml.safe_dump(item["bootstrap_values"]).encode())}
            return client.post("/subclouds", data={"bootstrap-address": "10.10.0.2",
                                                   "sysadmin_password": SYSADMIN_PASSWORD}, files=files)

        def manage(client: httpx.AsyncClient, name: str):  # type: ignore[no-untyped-def]
            return client.patch(f"/subclouds/{name}", json={"management-state": "managed"})

        names = [item["name"] for item in items]
        add_s = await each(self.site1, items, add, 50)
        online_s = wait_for("all deployed and online on site 1", lambda: self.count(
            self.site1, "deploy_status = 'complete' AND availability_status = 'online'") >= len(names), 1800)
        manage_s = await each(self.site1, names, manage, 16)
        return {"add_s": add_s, "deployed_online_s": online_s, "manage_s": manage_s}

    def peer_both_ways(self) -> tuple[dict, dict]:
        """Site 1 and site 2 register each other; the heartbeat interval is the API's minimum."""
        peers = []
        for on, other, gateway in ((self.site1, self.site2, SITE2_GATEWAY), (self.site2, self.site1, SITE1_GATEWAY)):
            identity = api(other, "GET", "/system")
            peers.append(api(on, "POST", "/system-peers", json={
                "peer_uuid": identity["uuid"], "peer_name": identity["name"],
                "manager_endpoint": other.url + "/v3", "manager_username": "admin",
                "manager_password": base64.b64encode(ADMIN_PASSWORD.encode()).decode(),
                "peer_controller_gateway_address": gateway,
                "heartbeat_interval": self.args.heartbeat, "heartbeat_failure_threshold": 1,
                # --automatic: site 2 fails the group over by itself (README, "Automatic failover").
                "heartbeat_failure_policy": "rehome" if self.args.automatic else "alarm"}))
        for on, peer in ((self.site1, peers[0]), (self.site2, peers[1])):
            wait_for("peer available",
                     lambda on=on, peer=peer: self.peer_state(on, peer["peer-uuid"]) == "available", 120)
        return peers[0], peers[1]

    async def group_and_sync(self, names: list[str], max_rehoming: int, peer2: dict) -> dict[str, float]:
        group = api(self.site1, "POST", "/subcloud-peer-groups", json={
            "peer-group-name": GROUP, "max-subcloud-rehoming": max_rehoming})

        def join(client: httpx.AsyncClient, name: str):  # type: ignore[no-untyped-def]
            return client.patch(f"/subclouds/{name}", json={"peer_group": GROUP})

        join_s = await each(self.site1, names, join, 16)
        started = time.monotonic()
        association = api(self.site1, "POST", "/peer-group-associations", json={
            "peer_group_id": group["id"], "system_peer_id": peer2["id"], "peer_group_priority": 2})
        wait_for("association in sync", lambda: self.sync_status(association["id"]) == "in-sync", 1800, 0.5)
        sync_s = time.monotonic() - started
        secondary = self.count(self.site2, "deploy_status = 'secondary'")
        if secondary != len(names):
            raise SystemExit(f"site 2 holds {secondary} secondary copies, not {len(names)}")
        # A change to one subcloud of the group: the association resyncs the group.
        started = time.monotonic()
        api(self.site1, "PATCH", f"/subclouds/{names[0]}", json={"description": "moved to rack 7"})
        wait_for("association in sync again", lambda: self.sync_status(association["id"]) == "in-sync", 1800, 0.1)
        resync_s = time.monotonic() - started
        if api(self.site2, "GET", f"/subclouds/{names[0]}")["description"] != "moved to rack 7":
            raise SystemExit("the resync did not carry the change to site 2")
        return {"join_s": join_s, "association_sync_s": sync_s, "resync_one_change_s": resync_s}

    # --- what the sites show --------------------------------------------------------------------

    def count(self, site: Serve, where: str) -> int:
        return query(site, f"SELECT count(*) FROM subclouds WHERE {where}")[0][0]

    def peer_state(self, site: Serve, peer_uuid: str) -> str:
        return api(site, "GET", f"/system-peers/{peer_uuid}")["availability-state"]

    def sync_status(self, association_id: int) -> str:
        status = api(self.site1, "GET", f"/peer-group-associations/{association_id}")["sync-status"]
        if status == "failed":
            raise SystemExit(f"association sync failed: {api(self.site1, 'GET', '/peer-group-associations')}")
        return status

    def group_row(self, site: Serve) -> tuple[str, str | None]:
        """(system_leader_id, migration_status) of the group, from the site's database."""
        rows = query(site, "SELECT system_leader_id, migration_status FROM subcloud_peer_groups "
                           "WHERE peer_group_name = ?", (GROUP,))
        return rows[0][0], rows[0][1]

    def watch(self, peaks: Peaks) -> None:
        """Poll the simulator and site 2 until told to stop: the most rehomes at once."""
        while not peaks.stop.is_set():
            began = time.monotonic()
            try:
                items = httpx.get(self.control + "/sim/subclouds", params={"limit": self.fleet_size},
                                  timeout=30).json()["subclouds"]
                running = sum(1 for i in items if i["phase"]["phase"] == "rehome" and i["phase"]["state"] == "running")
                peaks.sim_rehoming = max(peaks.sim_rehoming, running)
                peaks.site_rehoming = max(peaks.site_rehoming, self.count(
                    self.site2, "deploy_status IN ('pre-rehome', 'rehoming')"))
                peaks.polls += 1
            except (httpx.HTTPError, sqlite3.OperationalError):
                pass  # a busy moment: the next poll counts
            peaks.stop.wait(max(0.0, WATCH_EVERY_S - (time.monotonic() - began)))

    # --- the two measurements ----------------------------------------------------------------

    def migrate(self, n: int, peer1_uuid: str, slots: int) -> dict[str, Any]:
        """(a): site 1 was just killed; migrate on site 2 until all are managed and online."""
        peaks = Peaks()
        watcher = threading.Thread(target=self.watch, args=(peaks,), daemon=True)
        watcher.start()
        cpu_before = cpu_seconds(self.site2.pid)
        log_offset = self.site2.log_path.stat().st_size
        started = time.monotonic()
        api(self.site2, "PATCH", f"/subcloud-peer-groups/{GROUP}/migrate", json={"sysadmin_password": SYSADMIN_PASSWORD})
        answered = time.monotonic() - started
        unseen = wait_for("site 2 sees site 1 unavailable",
                          lambda: self.peer_state(self.site2, peer1_uuid) == "unavailable", 600)
        done = "peer_group_id IS NOT NULL AND management_state = 'managed' AND availability_status = 'online'"
        first_managed = wait_for("first subcloud managed", lambda: self.count(self.site2, done) > 0, 600)
        wait_for("all managed and online on site 2", lambda: self.count(self.site2, done) >= n, 3600)
        all_managed = time.monotonic() - started
        complete = wait_for("migration complete", lambda: self.group_row(self.site2)[1] == "complete", 600)
        peaks.stop.set()
        watcher.join()
        failed = self.count(self.site2, "deploy_status LIKE 'rehome%failed'")
        items = self.sim_items()
        controllers = [i["system_controller"] for i in items]
        gateways = [i["systemcontroller_gateway"] for i in items]
        return {"migrate_answered_s": round(answered, 2), "first_managed_s": round(first_managed + answered, 1),
                "all_managed_online_s": round(all_managed, 1),
                "migration_complete_s": round(all_managed + complete, 1),
                "rehomes_per_s": round(n / all_managed, 1),
                "peak_rehoming_at_sim": peaks.sim_rehoming, "peak_rehoming_on_site": peaks.site_rehoming,
                "rehome_failed": failed,
                "sim_controller_is_site2": sum(1 for c in controllers if c == self.site2_uuid),
                "sim_gateway_is_site2s": sum(1 for g in gateways if g == SITE2_GATEWAY),
                "unavailable_seen_after_migrate_s": round(unseen + answered, 1),
                "site2_cpu_s": round(cpu_seconds(self.site2.pid) - cpu_before, 1),
                "site2_peak_rss_mb": round(peak_rss_mb(self.site2.pid)), "watch_polls": peaks.polls,
                "waves": wave_timings(self.site2.log_path, log_offset, slots)}

    def automatic(self, n: int, peer1_uuid: str, slots: int, killed: float) -> dict[str, Any]:
        """(a) with --automatic: site 1 was killed at `killed`; nobody migrates. Measured from the
        kill: site 2's heartbeat verdict, its own migrate (the witnesses asked), every subcloud
        managed and online on site 2."""
        peaks = Peaks()
        watcher = threading.Thread(target=self.watch, args=(peaks,), daemon=True)
        watcher.start()
        cpu_before = cpu_seconds(self.site2.pid)
        log_offset = self.site2.log_path.stat().st_size
        wait_for("site 2 sees site 1 unavailable", lambda: self.peer_state(self.site2, peer1_uuid) == "unavailable", 600)
        unseen = time.monotonic() - killed
        wait_for("site 2 migrating by itself", lambda: self.group_row(self.site2)[1] in ("migrating", "complete"), 600,
                 0.05)
        decided = time.monotonic() - killed
        done = "peer_group_id IS NOT NULL AND management_state = 'managed' AND availability_status = 'online'"
        wait_for("all managed and online on site 2", lambda: self.count(self.site2, done) >= n, 3600)
        all_managed = time.monotonic() - killed
        wait_for("migration complete", lambda: self.group_row(self.site2)[1] == "complete", 600)
        peaks.stop.set()
        watcher.join()
        alarm = query(self.site2, "SELECT reason_text FROM fault_alarms WHERE alarm_id = '280.006'")
        controllers = [i["system_controller"] for i in self.sim_items()]
        return {"unavailable_after_kill_s": round(unseen, 1), "self_migrate_after_kill_s": round(decided, 1),
                "all_managed_online_after_kill_s": round(all_managed, 1),
                "rehome_phase_s": round(all_managed - decided, 1),
                "rehome_failed": self.count(self.site2, "deploy_status LIKE 'rehome%failed'"),
                "sim_controller_is_site2": sum(1 for c in controllers if c == self.site2_uuid),
                "peak_rehoming_at_sim": peaks.sim_rehoming, "alarm_280_006": alarm[0][0] if alarm else None,
                "site2_cpu_s": round(cpu_seconds(self.site2.pid) - cpu_before, 1),
                "site2_peak_rss_mb": round(peak_rss_mb(self.site2.pid)),
                "waves": wave_timings(self.site2.log_path, log_offset, slots)}

    def reconcile(self, n: int) -> dict[str, Any]:
        """(b): restart site 1 and wait until it has let go of the group and site 2 is reset."""
        started = time.monotonic()
        self.site1.start()
        serving = time.monotonic() - started
        uuid2, entity = self.site2_uuid, f"peer_group={GROUP},peer={self.site2_uuid}"

        def reconciled() -> bool:
            let_go = self.count(self.site1, "peer_group_id IS NOT NULL AND deploy_status = 'secondary' "
                                            "AND management_state = 'unmanaged'") >= n
            alarm = query(self.site1, "SELECT count(*) FROM fault_alarms WHERE alarm_id = '280.005' "
                                      "AND entity_instance_id = ?", (entity,))[0][0] == 1
            return (let_go and alarm and self.group_row(self.site1)[0] == uuid2
                    and self.group_row(self.site2)[1] in (None, "none"))

        wait_for("site 1 reconciled", reconciled, 1800)
        total = time.monotonic() - started
        managed_on_site1 = self.count(self.site1, "management_state = 'managed'")
        return {"reconciled_s": round(total, 1), "site1_serving_s": round(serving, 1),
                "site1_managed_left": managed_on_site1,
                "site1_cpu_s": round(cpu_seconds(self.site1.pid), 1),
                "site1_peak_rss_mb": round(peak_rss_mb(self.site1.pid))}


async def run_once(args: argparse.Namespace, max_rehoming: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="dcman-failover-bench-"))
    bench = Bench(args, work)
    bench.start_both()
    try:
        items = bench.sim_items()
        names = [item["name"] for item in items]
        log(f"site 1 deploys and manages {len(names)} subclouds")
        setup = await bench.deploy_and_manage(items)
        peer2, peer1 = bench.peer_both_ways()
        bench.site2_uuid = peer2["peer-uuid"]
        log(f"setup so far {setup}; joining the group and syncing it to site 2")
        setup.update(await bench.group_and_sync(names, max_rehoming, peer2))
        if args.automatic:  # the standby's copy keeps the subclouds' password for it
            api(bench.site2, "PATCH", f"/subcloud-peer-groups/{GROUP}", json={"sysadmin_password": SYSADMIN_PASSWORD})
        log(f"setup {({k: round(v, 1) for k, v in setup.items()})}; killing site 1 and "
            f"{'letting site 2 fail over by itself' if args.automatic else 'migrating at once'}")
        killed = time.monotonic()
        bench.site1.kill()
        common = {"subclouds": len(names), "max_subcloud_rehoming": max_rehoming,
                  "phase_seconds": args.phase_seconds, "audit_interval_s": args.interval,
                  "heartbeat_interval_s": args.heartbeat}
        if args.automatic:
            migrated = bench.automatic(len(names), peer1["peer-uuid"], max_rehoming, killed)
        else:
            migrated = bench.migrate(len(names), peer1["peer-uuid"], max_rehoming)
        print(json.dumps({"measure": "automatic-failover" if args.automatic else "migrate", **common, **migrated,
                          "load_avg_1m": round(os.getloadavg()[0], 1),
                          "association_sync_s": round(setup["association_sync_s"], 1),
                          "resync_one_change_s": round(setup["resync_one_change_s"], 1)}), flush=True)
        log("restarting site 1")
        reconciled = bench.reconcile(len(names))
        print(json.dumps({"measure": "reconcile", **common, **reconciled, "load_avg_1m": round(os.getloadavg()[0], 1)}),
              flush=True)
    finally:
        bench.finish(args.keep)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--phase-seconds", type=float, default=1.0, help="how long each simulated phase takes")
    parser.add_argument("--max-rehoming", type=int, nargs="+", default=[50, 250],
                        help="max_subcloud_rehoming of the group; one fresh run per value")
    parser.add_argument("--interval", type=float, default=5.0, help="DCMAN_AUDIT_INTERVAL of both sites")
    parser.add_argument("--heartbeat", type=int, default=10, help="heartbeat interval of the system peers (10-600)")
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument("--automatic", action="store_true",
                        help="site 2 has policy rehome and the group's password: nobody migrates, it fails over itself")
    args = parser.parse_args()
    for max_rehoming in args.max_rehoming:
        await run_once(args, max_rehoming)


if __name__ == "__main__":
    asyncio.run(main())
