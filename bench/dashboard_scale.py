"""The dashboard's reads at scale: N subclouds written straight into a site's SQLite database,
then the calls the dashboard and Prometheus make, timed through the site's ASGI app (no loops,
no network), each the median of several runs.

    .venv/bin/python bench/dashboard_scale.py --count 50000

The last line printed is one JSON object with the figures (milliseconds per call).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import insert

from dcman.db import tables as t
from dcman.db.subclouds import network_keys
from dcman.site import site_app, start_site
from dcman.config import load_settings
from dcman.domain.states import EndpointType
from dcman.services import accounts

PASSWORD = "bench-Admin-1"
CALLS = {
    "list_first_page": "/v1.0/subclouds?limit=50",
    "list_last_page": "/v1.0/subclouds?limit=50&offset={last}",
    "list_name_search": "/v1.0/subclouds?limit=50&name=04999",
    "list_offline_managed": "/v1.0/subclouds?limit=50&availability=offline&management=managed",
    "list_group": "/v1.0/subclouds?limit=50&group=Default&deploy_status=complete",
    "dashboard": "/v1.0/dashboard",
    "fault_alarms_newest_100": "/v1.0/fault-alarms?limit=100",
    "metrics": "/metrics",
}


def rows(count: int) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    now = datetime(2025, 1, 1)
    subclouds, statuses, summaries, alarms = [], [], [], []
    for i in range(1, count + 1):
        hi, lo = divmod(i, 256)
        subnet, start, end = f"10.{hi}.{lo}.0/24", f"10.{hi}.{lo}.2", f"10.{hi}.{lo}.9"
        offline = i % 100 == 0
        subclouds.append({
            "id": i, "name": f"sc-{i:05d}", "region_name": uuid.uuid4().hex, "description": "", "location": "",
            "software_version": "24.09", "management_state": "managed" if i % 3 else "unmanaged",
            "availability_status": "offline" if offline else "online", "deploy_status": "complete",
            "error_description": "No errors present", "management_subnet": subnet, "management_start_ip": start,
            "management_end_ip": end, "management_gateway_ip": f"10.{hi}.{lo}.1",
            "systemcontroller_gateway_ip": "127.0.0.1", "openstack_installed": False, "audit_fail_count": 0,
            "first_identity_sync_complete": False, "group_id": 1, "rehomed": False, "created_at": now,
            **network_keys(subnet, start, end)})
        statuses += [{"subcloud_id": i, "endpoint_type": e.value, "sync_status": "in-sync"} for e in EndpointType]
        summaries.append({"uuid": str(uuid.uuid4()), "subcloud_id": i, "critical_alarms": 0, "major_alarms": 0,
                          "minor_alarms": 0, "warnings": 0, "cloud_status": "OK"})
        if offline:
            alarms.append({"alarm_id": "280.001", "entity_instance_id": f"subcloud=sc-{i:05d}", "subcloud_id": i,
                           "severity": "critical", "reason_text": f"sc-{i:05d} is offline", "timestamp": now})
    return subclouds, statuses, summaries, alarms


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcman-dashboard-"))
    settings = load_settings(data_dir=work, admin_password=PASSWORD,
                             secret_key=base64.urlsafe_b64encode(b"b" * 32).decode())
    ctx = await start_site(settings)
    started = time.monotonic()
    subclouds, statuses, summaries, alarms = rows(args.count)
    async with ctx.engine.begin() as conn:
        for table, values in ((t.subclouds, subclouds), (t.subcloud_status, statuses),
                              (t.subcloud_alarms, summaries), (t.fault_alarms, alarms)):
            for chunk in range(0, len(values), 5000):
                await conn.execute(insert(table), values[chunk:chunk + 5000])
    print(f"inserted {args.count} subclouds in {time.monotonic() - started:.1f}s", flush=True)
    token = (await accounts.login(ctx.engine, "admin", PASSWORD, 3600)).token
    app = site_app(settings, ctx, run_loops=False)
    figures: dict[str, object] = {"subclouds": args.count}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://site", headers={"X-Auth-Token": token},
            timeout=120) as client:
        for label, path in CALLS.items():
            path = path.format(last=args.count - 50)
            times = []
            for _ in range(args.runs):
                begin = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - begin) * 1000)
                assert response.status_code == 200, response.text
            figures[f"{label}_ms"] = round(statistics.median(times), 1)
            print(f"{label}: {figures[f'{label}_ms']} ms ({path})", flush=True)
        begin = time.perf_counter()
        assert (await client.get("/v1.0/subclouds")).status_code == 200
        figures["reference_full_list_ms"] = round((time.perf_counter() - begin) * 1000, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
