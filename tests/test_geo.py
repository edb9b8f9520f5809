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

from conftest import (ADMIN_PASSWORD, ADMIN_USER, DCMAN, READER_PASSWORD, READER_USER, SITE_BACKENDS, RunningSite,
                      add_form, restart_site_process, site_database, start_site_process, stop_site_process, token_for)
from simfleet import Fleet, running_fleet, wait_until


# Two sites as a real deployment has them: each on its own system-controller subnet, and each
# peer record naming the gateway its subclouds use towards that peer's subnet.
SITE1_GATEWAY = "127.0.0.1"  # in the default DCMAN_SYSTEM_CONTROLLER_SUBNET, 127.0.0.0/16
SITE2_SUBNET = "127.50.0.0/16"
SITE2_GATEWAY = "127.50.0.1"
SITE2_SETTINGS = {"DCMAN_SYSTEM_CONTROLLER_SUBNET": SITE2_SUBNET}


@dataclass
class Site:
    running: RunningSite
    token: str
    gateway: str = SITE1_GATEWAY  # the subclouds' systemcontroller gateway towards this site

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
        "peer_controller_gateway_address": other.gateway, "heartbeat_interval": 10,
        "heartbeat_failure_threshold": 1})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module", params=SITE_BACKENDS)
def sites(request, tmp_path_factory) -> Iterator[tuple[Fleet, Site, Site]]:
    """Two sites on their own subnets, both on SQLite or both on PostgreSQL."""
    backend = request.param
    with running_fleet(tmp_path_factory.mktemp("geo"), 4, backend=backend) as fleet, \
            site_database(backend) as database2:
        site1 = Site(fleet.site, fleet.token)
        running2 = start_site_process(tmp_path_factory.mktemp("site2"),
                                      {**fleet.site_env, **database2, **SITE2_SETTINGS})
        site2 = Site(running2, token_for(running2), SITE2_GATEWAY)
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


def as_peer(site: Site, method: str, path: str, **kw) -> httpx.Response:
    """A call as a peer site makes it: the admin account and the reference's User-Agent."""
    return httpx.request(method, site.running.url + "/v1.0" + path, timeout=20,
                         headers={"X-Auth-Token": site.token, "User-Agent": "dcmanager/1.0"}, **kw)


def saved_payload(subcloud: dict) -> dict:
    rehome = subcloud["rehome_data"]
    return json.loads(rehome)["saved_payload"] if isinstance(rehome, str) else rehome["saved_payload"]


def data_install(subcloud: dict) -> dict | None:
    value = subcloud["data_install"]
    return json.loads(value) if isinstance(value, str) else value


INSTALL_VALUES = {"bootstrap_interface": "eno1", "bootstrap_address": "10.10.0.2", "bootstrap_address_prefix": 16,
                  "install_type": 0, "bmc_username": "root", "bmc_address": "10.20.0.2", "software_version": "24.09",
                  "bmc_password": base64.b64encode(b"bmc-Secret-9").decode()}


def test_the_copy_carries_the_peers_gateway_and_every_field_the_peer_rehomes_from(sites):
    """The leader's bootstrap values name its own gateway; the peer site is on another subnet,
    so its copy (and the rehome data in it) names the gateway towards the peer's subnet, and
    every later change the peer needs to take the subcloud over reaches the copy."""
    fleet, site1, site2 = sites
    local, copy = site1.get("/subclouds/sim-00001"), site2.get("/subclouds/sim-00001")
    assert local["systemcontroller-gateway-ip"] == SITE1_GATEWAY
    assert copy["systemcontroller-gateway-ip"] == SITE2_GATEWAY
    assert saved_payload(copy)["systemcontroller_gateway_address"] == SITE2_GATEWAY
    assert saved_payload(copy)["bootstrap-address"] == saved_payload(local)["bootstrap-address"]

    values = {**fleet.bootstrap_values("sim-00001"), "external_oam_floating_address": "10.10.0.9"}
    updated = site1.call("PATCH", "/subclouds/sim-00001", json={
        "bootstrap_values": values, "bootstrap_address": "10.10.0.9", "install_values": INSTALL_VALUES,
        "location": "rack 12"})
    assert updated.status_code == 200, updated.text
    [association] = site1.get("/peer-group-associations")["peer_group_associations"]
    wait_until(lambda: site1.get(f"/peer-group-associations/{association['id']}")["sync-status"] == "in-sync"
               and site2.get("/subclouds/sim-00001")["location"] == "rack 12", timeout=30)
    copy = site2.get("/subclouds/sim-00001")
    assert saved_payload(copy) == {**values, "systemcontroller_gateway_address": SITE2_GATEWAY,
                                   "bootstrap-address": "10.10.0.9"}
    assert copy["systemcontroller-gateway-ip"] == SITE2_GATEWAY
    expected_install = {k: v for k, v in INSTALL_VALUES.items() if k != "bmc_password"}
    assert data_install(copy) == data_install(site1.get("/subclouds/sim-00001")) == expected_install
    assert "bmc-Secret-9" not in json.dumps(copy)


def test_a_peer_addresses_a_subcloud_by_its_region_name(sites):
    """As the reference's peers do (`dcmanager/1.0`, admin): an operator still uses names and ids."""
    fleet, site1, site2 = sites
    region = site1.get("/subclouds/sim-00001")["region-name"]
    shown = as_peer(site2, "GET", f"/subclouds/{region}/detail")
    assert shown.status_code == 200 and shown.json()["name"] == "sim-00001", shown.text
    assert as_peer(site2, "GET", "/subclouds/sim-00001").status_code == 200
    assert site2.call("GET", f"/subclouds/{region}").status_code == 404  # not a peer: names only
    created = subprocess.run([DCMAN, "user", "create", READER_USER, "--role", "reader", "--password", READER_PASSWORD],
                             env={**site2.running.env(), **site2.running.extra_env}, capture_output=True, text=True,
                             timeout=60)
    assert created.returncode == 0, created.stderr
    reader = httpx.get(site2.running.url + f"/v1.0/subclouds/{region}", timeout=20, headers={
        "X-Auth-Token": token_for(site2.running, READER_USER, READER_PASSWORD), "User-Agent": "dcmanager/1.0"})
    assert reader.status_code == 404  # the header alone makes no peer
    assert as_peer(site2, "GET", "/subclouds/" + "0" * 32).status_code == 404


def test_a_priority_change_on_the_leader_reaches_the_peers_group_and_association(sites):
    fleet, site1, site2 = sites
    [association] = site1.get("/peer-group-associations")["peer_group_associations"]
    changed = site1.call("PATCH", f"/peer-group-associations/{association['id']}", json={"peer_group_priority": 3})
    assert changed.status_code == 200, changed.text
    wait_until(lambda: site1.get(f"/peer-group-associations/{association['id']}")["sync-status"] == "in-sync"
               and site2.get("/subcloud-peer-groups/pg1")["group_priority"] == 3, timeout=30)
    [remote] = site2.get("/peer-group-associations")["peer_group_associations"]
    assert (remote["association-type"], remote["peer-group-priority"]) == ("non-primary", 3)


def test_a_subcloud_renamed_before_it_joins_is_copied_under_its_new_name(sites):
    fleet, site1, site2 = sites
    fleet.deployed("sim-00003")
    renamed = site1.call("PATCH", "/subclouds/sim-00003", json={"name": "edge-3"})
    assert renamed.status_code == 200, renamed.text
    assert site1.call("PATCH", "/subclouds/edge-3", json={"management-state": "managed"}).status_code == 200
    wait_until(lambda: site1.get("/subclouds/edge-3")["availability-status"] == "online", timeout=30)
    joined = site1.call("PATCH", "/subclouds/edge-3", json={"peer_group": "pg1"})
    assert joined.status_code == 200, joined.text
    assert saved_payload(joined.json())["name"] == "edge-3"
    wait_until(lambda: site2.call("GET", "/subclouds/edge-3").status_code == 200, timeout=30)
    copy = site2.get("/subclouds/edge-3")
    assert (copy["deploy-status"], saved_payload(copy)["name"]) == ("secondary", "edge-3")
    assert site2.call("GET", "/subclouds/sim-00003").status_code == 404


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
    values = {**fleet.bootstrap_values("sim-00002"), "systemcontroller_gateway_address": SITE2_GATEWAY}
    data, files = add_form("sim-00002", values, secondary="true", region_name=local["region-name"])
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
    assert copies == {"sim-00001": "secondary", "sim-00002": "secondary", "edge-3": "secondary"}
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


def test_deleting_a_system_peer_clears_its_heartbeat_alarm(sites):
    """A peer that is gone cannot be unreachable: 280.004 goes with it."""
    fleet, site1, site2 = sites
    peer2 = site1.get("/system-peers")["system_peers"][0]
    stop_site_process(site2.running)
    wait_until(lambda: site1.get(f"/fault-alarms?entity=peer={peer2['peer-uuid']}")["alarms"] != [], timeout=40)
    deleted = site1.call("DELETE", f"/system-peers/{peer2['id']}")
    assert deleted.status_code == 200, deleted.text
    assert site1.get(f"/fault-alarms?entity=peer={peer2['peer-uuid']}")["alarms"] == []
    assert site1.get("/fault-alarms?alarm_id=280.004")["alarms"] == []
