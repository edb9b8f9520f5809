"""The dcmanager client's reads at fleet scale, over HTTP, while the audit runs.

`dcman sim --count N` and a `dcman serve` (SQLite) that audits every simulated subcloud each
--interval seconds: the N subclouds are written straight into the site's database (deployed,
managed, online, seven endpoint statuses and an alarm summary each) instead of being added
one by one, then the site is started and, once its audit has gone round the fleet, the calls
the client makes are timed: the unpaged `GET /v1.0/subclouds` (`dcmanager subcloud list`),
one subcloud (`subcloud show`, `subcloud show --detail`) and `GET /v1.0/alarms` (`alarm
summary`: the answer the site kept, then as built after a change). Each figure is the median
of --runs calls, with the 1-minute load average then (the machine may be shared) and the CPU
the site spent auditing meanwhile.

    .venv/bin/python bench/api_scale.py --count 10000 --interval 5
    .venv/bin/python bench/api_scale.py --count 50000 --interval 30

The last line printed is one JSON object with the figures (milliseconds per call).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from collections.abc import Callable
from pathlib import Path

import httpx
from processes import SiteWithSim, cpu_seconds, log
from sqlalchemy import create_engine, insert

from dcman.db import subclouds as subclouds_db
from dcman.db import tables as t
from dcman.agent import addressing
from dcman.domain.states import EndpointType
from dcman.services.secrets import SecretBox

SIM_PASSWORD = "St8rlingX*"  # dcman sim's default


def write_fleet(db_path: Path, count: int) -> None:
    """Every simulated subcloud as a deployed, managed, online subcloud of the site, with the
    simulator's sysadmin password (the audit's credential) sealed by the site's key."""
    now = datetime(2025, 1, 1, 12, 0, 0, 123456)
    password = SecretBox.for_site(None, db_path.parent).encrypt(SIM_PASSWORD)
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        for first in range(0, count, 5000):
            subclouds, statuses, summaries = [], [], []
            for index in range(first, min(first + 5000, count)):
                values = addressing.bootstrap_values(index, "127.0.0.1")
                name, subcloud_id = values["name"], index + 1
                subnet, start, end = (values["management_subnet"], values["management_start_address"],
                                      values["management_end_address"])
                subclouds.append({
                    "id": subcloud_id, "name": name, "region_name": addressing.region_name(name),
                    "description": None, "location": None, "software_version": "24.09",
                    "management_state": "managed", "availability_status": "online", "deploy_status": "complete",
                    "error_description": "No errors present", "management_subnet": subnet,
                    "management_start_ip": start, "management_end_ip": end,
                    "management_gateway_ip": values["management_gateway_address"],
                    "systemcontroller_gateway_ip": values["systemcontroller_gateway_address"],
                    "external_oam_floating_address": values["external_oam_floating_address"],
                    "openstack_installed": False, "audit_fail_count": 0, "first_identity_sync_complete": True,
                    "group_id": 1, "rehomed": False, "sysadmin_password": password, "created_at": now,
                    **subclouds_db.network_keys(subnet, start, end)})
                statuses += [{"subcloud_id": subcloud_id, "endpoint_type": e.value, "sync_status": "in-sync",
                              "created_at": now} for e in EndpointType]
                summaries.append({"uuid": str(uuid.uuid4()), "subcloud_id": subcloud_id, "critical_alarms": 0,
                                  "major_alarms": 0, "minor_alarms": 0, "warnings": 0, "cloud_status": "OK"})
            for table, rows in ((t.subclouds, subclouds), (t.subcloud_status, statuses),
                                (t.subcloud_alarms, summaries)):
                conn.execute(insert(table), rows)
    engine.dispose()


def timed(client: httpx.Client, path: str, runs: int, before: Callable[[], None] = lambda: None) -> dict[str, float]:
    times, loads, size = [], [], 0
    for _ in range(runs):
        before()
        begin = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - begin) * 1000)
        loads.append(os.getloadavg()[0])
        assert response.status_code == 200, response.text[:300]
        size = len(response.content)
    return {"ms": round(statistics.median(times), 1), "best_ms": round(min(times), 1),
            "load": round(statistics.median(loads), 2), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=5.0, help="audit interval, seconds")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcman-api-scale-"))
    bench = SiteWithSim(work, args.count, args.interval)
    bench.start()
    try:
        bench.server.stop()
        started = time.monotonic()
        write_fleet(bench.db_path, args.count)
        log(f"wrote {args.count} subclouds in {time.monotonic() - started:.1f}s")
        bench.server.start()
        # Let the audit go round the whole fleet once before timing.
        cpu_before = cpu_seconds(bench.server.pid)
        time.sleep(args.interval * 1.5)
        log(f"site CPU over the first {args.interval * 1.5:.0f}s: {cpu_seconds(bench.server.pid) - cpu_before:.1f}s")
        middle = addressing.name_of(args.count // 2)
        calls = {"subcloud_list_unpaged": "/v1.0/subclouds", "subcloud_show": f"/v1.0/subclouds/{middle}",
                 "subcloud_show_detail": f"/v1.0/subclouds/{middle}/detail", "alarm_summary": "/v1.0/alarms"}
        figures: dict[str, object] = {"subclouds": args.count, "audit_interval_s": args.interval}
        with httpx.Client(base_url=bench.site_url, headers={"X-Auth-Token": bench.token}, timeout=120) as client:
            cpu_before, wall_before = cpu_seconds(bench.server.pid), time.monotonic()
            for label, path in calls.items():
                figures[label] = timed(client, path, args.runs)
                log(f"{label}: {figures[label]}")
            # The summary as built when a subcloud's alarms changed just before the call: the
            # version raised as the audit's write would, so the site cannot send its last answer.
            with sqlite3.connect(bench.db_path) as db:
                def changed() -> None:
                    db.execute("UPDATE alarm_summary_version SET version = version + 1")
                    db.commit()
                figures["alarm_summary_after_a_change"] = timed(client, calls["alarm_summary"], args.runs, changed)
            log(f"alarm_summary_after_a_change: {figures['alarm_summary_after_a_change']}")
            cpu, wall = cpu_seconds(bench.server.pid) - cpu_before, time.monotonic() - wall_before
        with sqlite3.connect(f"file:{bench.db_path}?mode=ro", uri=True) as db:
            online = db.execute("SELECT count(*) FROM subclouds WHERE availability_status = 'online'").fetchone()[0]
        figures["site_cores_while_timing"] = round(cpu / wall, 2)
        figures["online_after"] = online
        print(json.dumps(figures), flush=True)
    finally:
        bench.finish(args.keep)


if __name__ == "__main__":
    main()
