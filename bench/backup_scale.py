"""Backup at scale: a real site backs up a group of N simulated subclouds to central storage.

Starts `dcman sim --count N --phase-seconds S --backup-mb M` and `dcman serve` (SQLite), adds
every simulated subcloud to one group through the API, waits until all are deployed and
online, manages them, then asks for one `POST /v1.0/subcloud-backup {"group": ...}` and
watches the site's database until every subcloud is `complete-central`: how long that
takes, how many were backing up at once, the site's CPU and peak memory during the backups
(its peak RSS is reset first, through /proc/PID/clear_refs, so the adds do not count), and
that every central backup is on disk whole with the SHA-256 recorded beside it.

    .venv/bin/python bench/backup_scale.py --count 1000 --backup-mb 10 --phase-seconds 1

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx
from deploy_scale import SYSADMIN_PASSWORD
from deploy_scale import Bench as DeployBench
from processes import cpu_seconds, log

GROUP = "backup-bench"
WATCH_EVERY_S = 0.2


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Bench(DeployBench):
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        super().__init__(args, work)
        self.sim_args = ("--phase-seconds", str(args.phase_seconds), "--backup-mb", str(args.backup_mb))
        self.group_id = ""

    def form(self, item: dict) -> tuple[dict, dict]:
        data, files = super().form(item)
        data["group_id"] = self.group_id
        return data, files

    async def manage_all(self, names: list[str]) -> None:
        gate = asyncio.Semaphore(50)

        async def manage(client: httpx.AsyncClient, name: str) -> None:
            async with gate:
                response = await client.patch(f"/v1.0/subclouds/{name}", json={"management-state": "managed"})
            if response.status_code != 200:
                raise SystemExit(f"managing {name}: {response.status_code} {response.text}")

        async with httpx.AsyncClient(base_url=self.site_url, timeout=600,
                                     headers={"X-Auth-Token": self.token}) as client:
            await asyncio.gather(*(manage(client, name) for name in names))

    def backup_counts(self, db: sqlite3.Connection) -> dict[str, int]:
        return {str(k): v for k, v in db.execute("SELECT backup_status, count(*) FROM subclouds GROUP BY backup_status")}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--backup-mb", type=float, default=10.0, help="size of each subcloud's backup, in MiB")
    parser.add_argument("--phase-seconds", type=float, default=1.0, help="how long each simulated phase takes")
    parser.add_argument("--interval", type=float, default=5.0, help="DCMAN_AUDIT_INTERVAL of the site")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    args.full, args.concurrency = False, min(args.count, 200)

    work = Path(tempfile.mkdtemp(prefix="dcman-backup-bench-"))
    bench = Bench(args, work)
    bench.start()
    try:
        group = httpx.post(bench.site_url + "/v1.0/subcloud-groups", headers={"X-Auth-Token": bench.token},
                           json={"name": GROUP, "description": "backup bench", "update_apply_type": "parallel",
                                 "max_parallel_subclouds": 100}, timeout=60)
        group.raise_for_status()
        bench.group_id = str(group.json()["id"])
        items = bench.sim_items()
        names = [item["name"] for item in items]
        log(f"adding {len(items)} subclouds to group {GROUP}")
        await bench.add_all(items)
        db = sqlite3.connect(f"file:{bench.db_path}?mode=ro", uri=True, timeout=30)
        deadline = time.monotonic() + args.timeout
        while True:
            by_status, online = bench.counts(db)
            if by_status.get("complete", 0) >= len(items) and online >= len(items):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"not all deployed and online: {by_status}, {online} online")
            await asyncio.sleep(1)
        log("all deployed and online; managing them")
        await bench.manage_all(names)

        pid = bench.site.pid
        peak_reset = reset_peak(pid)
        rss_before = rss_mb(pid, "VmRSS")
        cpu_before = cpu_seconds(pid)
        started = time.monotonic()
        answer = httpx.post(bench.site_url + "/v1.0/subcloud-backup", headers={"X-Auth-Token": bench.token},
                            json={"group": GROUP, "sysadmin_password": SYSADMIN_PASSWORD}, timeout=600)
        if answer.status_code != 200:
            raise SystemExit(f"backup create: {answer.status_code} {answer.text}")
        answered_s = time.monotonic() - started
        log(f"backup of {len(answer.json()['subclouds'])} subclouds admitted in {answered_s:.1f}s")
        max_backing_up, sampled_peak = 0, 0.0
        last_log = 0.0
        while True:
            counts = bench.backup_counts(db)
            max_backing_up = max(max_backing_up, counts.get("backing-up", 0))
            sampled_peak = max(sampled_peak, rss_mb(pid, "VmRSS"))
            if counts.get("complete-central", 0) >= len(items):
                break
            failed = {k: v for k, v in counts.items() if k in ("failed", "validate-failed", "backup-prep-failed")}
            if failed:
                errors = db.execute("SELECT name, error_description FROM subclouds WHERE backup_status LIKE '%failed'"
                                    " LIMIT 3").fetchall()
                raise SystemExit(f"backups failed: {counts}: {errors}")
            if time.monotonic() > deadline:
                raise SystemExit(f"not all complete-central: {counts}")
            if time.monotonic() - last_log > 5:
                log(f"backup statuses: {counts}")
                last_log = time.monotonic()
            await asyncio.sleep(WATCH_EVERY_S)
        all_central_s = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_before
        peak = rss_mb(pid, "VmHWM") if peak_reset else sampled_peak

        # Every backup whole on disk with its recorded checksum (a sample is hashed again).
        expected_size = int(args.backup_mb * 1024 * 1024)
        ids = [row[0] for row in db.execute("SELECT id FROM subclouds ORDER BY id")]
        total = 0
        for position, subcloud_id in enumerate(ids):
            path = bench.server.data_dir / "subclouds" / str(subcloud_id) / "backups" / "24.09" / "backup.tgz"
            size = path.stat().st_size
            if size != expected_size:
                raise SystemExit(f"{path}: {size} bytes, not {expected_size}")
            total += size
            recorded = path.with_name("backup.tgz.sha256").read_text().split()[0]
            if position % 50 == 0 and hashlib.sha256(path.read_bytes()).hexdigest() != recorded:
                raise SystemExit(f"{path}: its SHA-256 is not the one recorded")
        result = {
            "subclouds": len(items),
            "backup_mb": args.backup_mb,
            "phase_seconds": args.phase_seconds,
            "admitted_s": round(answered_s, 2),
            "all_complete_central_s": round(all_central_s, 1),
            "max_backing_up_at_once": max_backing_up,
            "stored_gb": round(total / 1024**3, 2),
            "site_cpu_s": round(cpu, 1),
            "site_rss_before_mb": round(rss_before),
            "site_peak_rss_during_backup_mb": round(peak),
            "peak_measured_by": "VmHWM after clear_refs" if peak_reset else "VmRSS sampled every 0.2 s",
        }
        db.close()
        print(json.dumps(result), flush=True)
    finally:
        bench.finish(args.keep)


if __name__ == "__main__":
    asyncio.run(main())
