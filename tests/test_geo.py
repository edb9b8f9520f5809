"""Two real sites and a simulator: system peers watch each other, and an association copies a
peer group and its subclouds from the primary site to the peer site."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from conftest import (ADMIN_PASSWORD, ADMIN_USER, DCMAN, RunningSite, add_form, restart_site_process,
                      start_site_process, stop_site_process, token_for)
from simfleet import Fleet, running_fleet, wait_until


@dataclass
class Site:
    running: RunningSite
    token: str

    def call(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.running.url + "/v1.0" + path, headers={"X-Auth-Token": self.token},
                             timeout=20, **kw)

    def get(self, path: str) -> dict:
        response = self.call("GET", path)
        assert response.status_code == 200, response.text
        return response.json()


def register(on: Site, other: Site) -> dict:
    identity = other.get("/system")
    response = on.call("POST", "/system-peers", json={
        "peer_uuid": identity["uuid"], "peer_name": identity["name"],
        "manager_endpoint": other.running.url + "/v3", "manager_username": ADMIN_USER,
        "manager_password": base64.b64encode(ADMIN_PASSWORD.encode()).decode(),
        "peer_controller_gateway_address": "127.0.0.1", "heartbeat_interval": 10,
        "heartbeat_failure_threshold": 1})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> Iterator[tuple[Fleet, Site, Site]]:
    with running_fleet(tmp_path_factory.mktemp("geo"), 4) as fleet:
        site1 = Site(fleet.site, fleet.token)
        running2 = start_site_process(tmp_path_factory.mktemp("site2"), fleet.site_env)
        site2 = Site(running2, token_for(running2))
        try:
            yield fleet, site1, site2
        finally:
            stop_site_process(site2.running)


def peer_state(site: Site, peer: str) -> str:
    return site.get(f"/system-peers/{peer}")["availability-state"]


def test_peers_registered_both_ways_become_available(sites):
    fleet, site1, site2 = sites
    peer2 = register(site1, site2)
    peer1 = register(site2, site1)
    assert peer2["availability-state"] == "created"
    wait_until(lambda: peer_state(site1, peer2["peer-uuid"]) == "available", timeout=30)
    wait_until(lambda: peer_state(site2, peer1["peer-uuid"]) == "available", timeout=30)


def test_an_association_copies_the_group_and_its_subclouds_to_the_peer_as_secondary(sites):
    fleet, site1, site2 = sites
    fleet.deployed("sim-00001")
    assert site1.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 200
    group = site1.call("POST", "/subcloud-peer-groups", json={"peer-group-name": "pg1"})
    assert group.status_code == 200, group.text
    joined = site1.call("PATCH", "/subclouds/sim-00001", json={"peer_group": "pg1"})
    assert joined.status_code == 200, joined.text
    peer2 = site1.get("/system-peers")["system_peers"][0]
    created = site1.call("POST", "/peer-group-associations", json={
        "peer_group_id": group.json()["id"], "system_peer_id": peer2["id"], "peer_group_priority": 2})
    assert created.status_code == 200, created.text
    association = created.json()

    wait_until(lambda: site1.get(f"/peer-group-associations/{association['id']}")["sync-status"] == "in-sync",
               timeout=30)
    remote_group = site2.get("/subcloud-peer-groups/pg1")
    assert remote_group["group_priority"] == 2
    [remote] = site2.get("/subcloud-peer-groups/pg1/subclouds")["subclouds"]
    local = site1.get("/subclouds/sim-00001")
    assert (remote["name"], remote["region-name"], remote["deploy-status"]) == (
        "sim-00001", local["region-name"], "secondary")
    [remote_association] = site2.get("/peer-group-associations")["peer_group_associations"]
    assert (remote_association["association-type"], remote_association["sync-status"]) == ("non-primary", "in-sync")

    shown = subprocess.run([DCMAN, "peer-group-association", "--url", site2.running.url, "--password",
                            ADMIN_PASSWORD, "list", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)[0]["association-type"] == "non-primary"


def test_a_subcloud_update_on_the_leader_goes_out_of_sync_and_back(sites):
    fleet, site1, site2 = sites
    [association] = site1.get("/peer-group-associations")["peer_group_associations"]
    updated = site1.call("PATCH", "/subclouds/sim-00001", json={"description": "moved to rack 7"})
    assert updated.status_code == 200, updated.text
    assert site1.get(f"/peer-group-associations/{association['id']}")["sync-status"] in ("out-of-sync", "in-sync")
    wait_until(lambda: site2.get("/subclouds/sim-00001")["description"] == "moved to rack 7", timeout=30)
    wait_until(lambda: site1.get(f"/peer-group-associations/{association['id']}")["sync-status"] == "in-sync",
               timeout=30)


def test_a_stopped_peer_becomes_unavailable_with_alarm_280_004_and_recovers(sites):
    fleet, site1, site2 = sites
    peer2 = site1.get("/system-peers")["system_peers"][0]
    [answered] = site1.get("/dashboard")["system_peers"]
    assert answered["last-heartbeat-answered"] is True
    assert answered["last-answered-heartbeat"] == answered["last-heartbeat"] is not None
    stop_site_process(site2.running)
    wait_until(lambda: peer_state(site1, peer2["peer-uuid"]) == "unavailable", timeout=40)
    # The dashboard shows the failed heartbeat and when the peer last answered (stored, so any
    # process of the site shows the same).
    [failed] = site1.get("/dashboard")["system_peers"]
    assert failed["last-heartbeat-answered"] is False
    assert failed["last-answered-heartbeat"] < failed["last-heartbeat"]
    alarms = site1.get(f"/fault-alarms?entity=peer={peer2['peer-uuid']}")["alarms"]
    assert [a["alarm_id"] for a in alarms] == ["280.004"]
    [association] = site1.get("/peer-group-associations")["peer_group_associations"]
    assert association["sync-status"] == "out-of-sync"

    site2.running = restart_site_process(site2.running)
    site2.token = token_for(site2.running)
    # The peer's endpoint moved with the restart (a new port): the operator updates it.
    site1.call("PATCH", f"/system-peers/{peer2['id']}", json={"manager_endpoint": site2.running.url + "/v3"})
    wait_until(lambda: peer_state(site1, peer2["peer-uuid"]) == "available", timeout=40)
    assert site1.get(f"/fault-alarms?entity=peer={peer2['peer-uuid']}")["alarms"] == []
    wait_until(lambda: site1.get("/peer-group-associations")["peer_group_associations"][0]["sync-status"]
               == "in-sync", timeout=30)



def test_a_copy_left_outside_the_group_by_an_interrupted_sync_is_taken_into_the_group(sites):
    """A sync that added the copy on the peer and died before putting it in the group: the
    next sync finds the copy by name and region instead of failing on the name forever."""
    fleet, site1, site2 = sites
    fleet.deployed("sim-00002")
    assert site1.call("PATCH", "/subclouds/sim-00002", json={"management-state": "managed"}).status_code == 200
    local = site1.get("/subclouds/sim-00002")
    data, files = add_form("sim-00002", fleet.bootstrap_values("sim-00002"), secondary="true",
                           region_name=local["region-name"])
    data.pop("sysadmin_password")
    left_over = httpx.post(site2.running.url + "/v1.0/subclouds", data=data, files=files, timeout=20,
                           headers={"X-Auth-Token": site2.token, "User-Agent": "dcmanager/1.0"})
    assert left_over.status_code == 200, left_over.text

    joined = site1.call("PATCH", "/subclouds/sim-00002", json={"peer_group": "pg1"})
    assert joined.status_code == 200, joined.text
    [association] = site1.get("/peer-group-associations")["peer_group_associations"]
    wait_until(lambda: site1.get(f"/peer-group-associations/{association['id']}")["sync-status"] == "in-sync",
               timeout=30)
    copies = {s["name"]: s["deploy-status"] for s in site2.get("/subcloud-peer-groups/pg1/subclouds")["subclouds"]}
    assert copies == {"sim-00001": "secondary", "sim-00002": "secondary"}
    assert [s["name"] for s in site2.get("/subclouds")["subclouds"]].count("sim-00002") == 1


def test_deleting_the_association_removes_the_copies_on_the_peer(sites):
    fleet, site1, site2 = sites
    [association] = site1.get("/peer-group-associations")["peer_group_associations"]
    deleted = site1.call("DELETE", f"/peer-group-associations/{association['id']}")
    assert deleted.status_code == 200, deleted.text
    assert site1.get("/peer-group-associations")["peer_group_associations"] == []
    assert site2.call("GET", "/subcloud-peer-groups/pg1").status_code == 404
    assert site2.get("/peer-group-associations")["peer_group_associations"] == []
    assert [s["name"] for s in site2.get("/subclouds")["subclouds"]] == []
    # The primary site keeps its group and its subclouds.
    assert site1.get("/subclouds/sim-00001")["peer_group_id"] == site1.get("/subcloud-peer-groups/pg1")["id"]
