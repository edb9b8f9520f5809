"""The invariant of geo-redundancy: every subcloud is managed by at most one site, and a
managed subcloud obeys the site that manages it (its system controller is that site)."""

from __future__ import annotations

from typing import Any, Protocol

import httpx


class SiteLike(Protocol):
    def get(self, path: str) -> dict: ...


def assert_one_manager(sites: list[Any], control_url: str) -> None:
    """`sites`: the running sites (anything with `.get(path)` answering /v1.0 calls);
    `control_url`: the simulator's control API."""
    managers: dict[str, str] = {}  # region name -> uuid of the site managing it
    by_name: dict[str, str] = {}   # the same by subcloud name (a simulated subcloud knows its region after bootstrap)
    for site in sites:
        uuid = site.get("/system")["uuid"]
        for subcloud in site.get("/subclouds")["subclouds"]:
            if subcloud["management-state"] != "managed":
                continue
            region = subcloud["region-name"]
            assert region not in managers, (
                f"subcloud {subcloud['name']} ({region}) is managed by two sites: {managers[region]} and {uuid}")
            managers[region] = uuid
            by_name[subcloud["name"]] = uuid
    listing = httpx.get(f"{control_url}/sim/subclouds", params={"limit": 10000}, timeout=10).json()["subclouds"]
    for simulated in listing:
        manager = managers.get(simulated["region_name"]) or by_name.get(simulated["name"])
        if manager is not None:
            assert simulated["system_controller"] == manager, (
                f"subcloud {simulated['name']} is managed by {manager} but obeys {simulated['system_controller']}")
