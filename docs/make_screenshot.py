"""Makes docs/dashboard.png: a real site auditing a simulated fleet of 40 subclouds, a peer
site protecting one peer group, a few subclouds made unreachable; Chromium takes the picture.

    .venv/bin/python docs/make_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from browser import chromium_path
from conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    start_site_process,
    stop_site_process,
    token_for,
)
from simfleet import running_fleet, wait_until
from test_geo import Site, peer_state, register

COUNT = 40


def main() -> None:
    from playwright.sync_api import sync_playwright

    with running_fleet(Path(tempfile.mkdtemp()), COUNT + 2, interval=2.0) as fleet:
        names = [f"sim-{i:05d}" for i in range(1, COUNT + 1)]
        for name in names:
            fleet.add(name)
        for name in names:
            wait_until(lambda name=name: fleet.subcloud(name)["availability-status"] == "online", timeout=120)
        for name in names[:30]:
            fleet.call("PATCH", f"/subclouds/{name}", json={"management-state": "managed"})
        site1 = Site(fleet.site, fleet.token)
        running2 = start_site_process(Path(tempfile.mkdtemp()), fleet.site_env)
        try:
            site2 = Site(running2, token_for(running2))
            peer2 = register(site1, site2)
            register(site2, site1)
            wait_until(lambda: peer_state(site1, peer2["peer-uuid"]) == "available", timeout=30)
            group = site1.call("POST", "/subcloud-peer-groups", json={"peer-group-name": "east-coast"}).json()
            for name in names[:5]:
                site1.call("PATCH", f"/subclouds/{name}", json={"peer_group": "east-coast"})
            site1.call("POST", "/peer-group-associations", json={
                "peer_group_id": group["id"], "system_peer_id": peer2["id"], "peer_group_priority": 2})
            for name in names[-3:]:
                fleet.fault(name, reachable=False)
            fleet.fault(names[7], alarms={"critical": 0, "major": 2, "minor": 1, "warnings": 0})
            wait_until(lambda: all(fleet.subcloud(n)["availability-status"] == "offline" for n in names[-3:]),
                       timeout=30)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(fleet.site.url + "/ui?refresh=1")
                page.get_by_label("User", exact=True).fill(ADMIN_USER)
                page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.get_by_label("Name contains").fill("sim-0000")
                page.get_by_role("button", name="sim-00040", exact=True).wait_for(state="detached")
                page.get_by_role("button", name="sim-00003", exact=True).click()
                time.sleep(3)  # a few refreshes: the association has synced, the detail is filled
                page.screenshot(path=str(HERE / "dashboard.png"), full_page=True)
                browser.close()
        finally:
            stop_site_process(running2)


if __name__ == "__main__":
    main()
