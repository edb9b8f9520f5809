"""Failover on two real sites and a simulator (geo-redundancy reference §7): site1 (priority 0)
goes down for real, site2 (priority 2) migrates the peer group, site1 comes back on the same
data directory and reconciles. After every step no subcloud is managed by two sites, and
each managed subcloud obeys the site that manages it."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from conftest import (ADMIN_PASSWORD, DCMAN, SITE_BACKENDS, restart_site_process, site_database, start_site_process,
                      stop_site_process, token_for)
from invariant import assert_one_manager
from simfleet import Fleet, running_fleet, wait_until
from test_geo import SITE2_GATEWAY, SITE2_SETTINGS, Site, peer_state, register

SYSADMIN = base64.b64encode(b"St8rlingX*").decode()
MEMBERS = ("sim-00001", "sim-00002", "sim-00003")


@pytest.fixture(scope="module", params=SITE_BACKENDS)
def sites(request, tmp_path_factory) -> Iterator[tuple[Fleet, Site, Site]]:
    """site1 leads pg1 with three managed subclouds, associated with site2 (priority 2) and in sync;
    both sites on SQLite, or both on PostgreSQL."""
    backend = request.param
    with running_fleet(tmp_path_factory.mktemp("failover"), 5, backend=backend) as fleet, \
            site_database(backend) as database2:
        site1 = Site(fleet.site, fleet.token)
        running2 = start_site_process(tmp_path_factory.mktemp("site2"),
                                      {**fleet.site_env, **database2, **SITE2_SETTINGS})
        site2 = Site(running2, token_for(running2), SITE2_GATEWAY)
        try:
            peer2 = register(site1, site2)
            peer1 = register(site2, site1)
            wait_until(lambda: peer_state(site1, peer2["peer-uuid"]) == "available", timeout=30)
            wait_until(lambda: peer_state(site2, peer1["peer-uuid"]) == "available", timeout=30)
            group = site1.call("POST", "/subcloud-peer-groups", json={"peer-group-name": "pg1"}).json()
            for name in MEMBERS:
                fleet.deployed(name)
                assert site1.call("PATCH", f"/subclouds/{name}", json={"management-state": "managed"}).status_code == 200
                joined = site1.call("PATCH", f"/subclouds/{name}", json={"peer_group": "pg1"})
                assert joined.status_code == 200, joined.text
            created = site1.call("POST", "/peer-group-associations", json={
                "peer_group_id": group["id"], "system_peer_id": peer2["id"], "peer_group_priority": 2})
            assert created.status_code == 200, created.text
            wait_until(lambda: site1.get(f"/peer-group-associations/{created.json()['id']}")["sync-status"]
                       == "in-sync", timeout=40)
            assert {s["deploy-status"] for s in site2.get("/subcloud-peer-groups/pg1/subclouds")["subclouds"]} == {
                "secondary"}
            yield fleet, site1, site2
        finally:
            stop_site_process(site2.running)


def running(*sites: Site) -> list[Site]:
    return list(sites)


def states(site: Site, group: str = "pg1") -> dict[str, tuple[str, str]]:
    return {s["name"]: (s["deploy-status"], s["management-state"])
            for s in site.get(f"/subcloud-peer-groups/{group}/subclouds")["subclouds"]}


def restart(fleet: Fleet, site1: Site, site2: Site) -> None:
    """Start site1 again on its data directory; its port changed, so site2's peer record follows."""
    site1.running = restart_site_process(site1.running)
    site1.token = token_for(site1.running)
    fleet.site, fleet.token = site1.running, site1.token
    uuid1 = site1.get("/system")["uuid"]
    patched = site2.call("PATCH", f"/system-peers/{uuid1}", json={"manager_endpoint": site1.running.url + "/v3"})
    assert patched.status_code == 200, patched.text


def test_migrate_refusals(sites):
    fleet, site1, site2 = sites
    no_password = site2.call("PATCH", "/subcloud-peer-groups/pg1/migrate", json={})
    assert no_password.status_code == 400
    empty = site2.call("POST", "/subcloud-peer-groups", json={"peer-group-name": "empty"})
    assert empty.status_code == 200, empty.text
    refused = site2.call("PATCH", "/subcloud-peer-groups/empty/migrate", json={"sysadmin_password": SYSADMIN})
    assert refused.status_code == 400 and "no subclouds" in refused.text
    assert site2.call("DELETE", "/subcloud-peer-groups/empty").status_code == 200
    # site1 leads pg1 and manages its subclouds: there is nothing to migrate to it.
    nothing = site1.call("PATCH", "/subcloud-peer-groups/pg1/migrate", json={"sysadmin_password": SYSADMIN})
    assert nothing.status_code == 400 and "Nothing to migrate" in nothing.text, nothing.text
    assert site1.get("/subcloud-peer-groups/pg1")["migration_status"] in (None, "none")
    assert states(site1) == {name: ("complete", "managed") for name in MEMBERS}
    assert_one_manager(running(site1, site2), fleet.control)


def test_scenarios_1_2_3_site1_dies_site2_migrates_at_once_then_site1_returns_as_secondary(sites):
    """The operator migrates the moment site1 goes dark, before site2's heartbeat has noticed:
    site2 waits (it cannot ask site1 to let go, and site1 may still manage the subclouds),
    says why, and goes on by itself once the heartbeat declares site1 unavailable."""
    fleet, site1, site2 = sites
    uuid1, uuid2 = site1.get("/system")["uuid"], site2.get("/system")["uuid"]
    # Two missed beats, 10 s apart, before site1 is declared down: the wait is certain to be seen.
    assert site2.call("PATCH", f"/system-peers/{uuid1}", json={"heartbeat_failure_threshold": 2}).status_code == 200
    site1.running.process.kill()
    site1.running.process.wait(timeout=10)
    assert peer_state(site2, uuid1) == "available"

    migrating = subprocess.Popen([DCMAN, "subcloud-peer-group", "--url", site2.running.url, "--password",
                                  ADMIN_PASSWORD, "migrate", "pg1", "--sysadmin-password", "St8rlingX*", "--wait",
                                  "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = wait_until(lambda: site2.get("/subcloud-peer-groups/pg1/status")["migration_message"], timeout=20)
    name1 = site2.get(f"/system-peers/{uuid1}")["peer-name"]
    assert f"Waiting for system peer {name1}" in waiting and "unavailable" in waiting, waiting
    # Nothing is rehomed behind the back of a site that may still manage the subclouds.
    assert peer_state(site2, uuid1) == "available"
    assert {state for state, _ in states(site2).values()} == {"secondary"}
    assert_one_manager(running(site2), fleet.control)

    out, err = migrating.communicate(timeout=120)
    assert migrating.returncode == 0, err
    assert "Waiting for system peer" in err
    assert peer_state(site2, uuid1) == "unavailable"
    assert site2.call("PATCH", f"/system-peers/{uuid1}", json={"heartbeat_failure_threshold": 1}).status_code == 200
    assert site2.get("/subcloud-peer-groups/pg1/status")["migration_message"] is None
    group = site2.get("/subcloud-peer-groups/pg1")
    assert (group["migration_status"], group["system_leader_id"]) == ("complete", uuid2)
    assert states(site2) == {name: ("complete", "managed") for name in MEMBERS}
    assert_one_manager(running(site2), fleet.control)

    # Scenario 2: site1 is unavailable, so a subcloud may leave the group on site2.
    left = site2.call("PATCH", "/subclouds/sim-00003", json={"peer_group": "none"})
    assert left.status_code == 200, left.text
    assert_one_manager(running(site2), fleet.control)
    # Scenario 3: ...and it is then deleted on site2 too (unmanaged, powered off).
    assert site2.call("PATCH", "/subclouds/sim-00003", json={"management-state": "unmanaged"}).status_code == 200
    fleet.fault("sim-00003", reachable=False)
    wait_until(lambda: site2.get("/subclouds/sim-00003")["availability-status"] == "offline", timeout=30)
    deleted = site2.call("DELETE", "/subclouds/sim-00003")
    assert deleted.status_code == 200, deleted.text
    fleet.fault("sim-00003", reachable=True)
    assert_one_manager(running(site2), fleet.control)

    restart(fleet, site1, site2)
    wait_until(lambda: states(site1) == {n: ("secondary", "unmanaged") for n in MEMBERS[:2]}, timeout=60)
    assert site1.call("GET", "/subclouds/sim-00003").status_code == 404
    local = site1.get("/subcloud-peer-groups/pg1")
    assert local["system_leader_id"] == uuid2
    alarms = site1.get(f"/fault-alarms?entity=peer_group=pg1,peer={uuid2}")["alarms"]
    assert [a["alarm_id"] for a in alarms] == ["280.005"]
    wait_until(lambda: site2.get("/subcloud-peer-groups/pg1")["migration_status"] in (None, "none"), timeout=30)
    assert_one_manager(running(site1, site2), fleet.control)
    wait_until(lambda: peer_state(site2, uuid1) == "available", timeout=40)
    assert_one_manager(running(site1, site2), fleet.control)


def test_scenario_5_migrating_back_while_both_are_up_and_leaving_is_refused_on_the_secondary(sites):
    fleet, site1, site2 = sites
    uuid1, uuid2 = site1.get("/system")["uuid"], site2.get("/system")["uuid"]
    wait_until(lambda: peer_state(site1, uuid2) == "available", timeout=40)
    # The reference's scenario 5 as such: site2 migrated the group and leads it, site1 is up
    # again, so a subcloud may not leave the group on site2.
    assert site2.get("/subcloud-peer-groups/pg1")["system_leader_id"] == uuid2
    refused = site2.call("PATCH", "/subclouds/sim-00002", json={"peer_group": "none"})
    assert refused.status_code == 400, refused.text
    assert_one_manager(running(site1, site2), fleet.control)

    # Then back to site1. The first attempt: sim-00002's rehome fails on its agent.
    fleet.fault("sim-00002", fail_phase="rehome")
    migrated = site1.call("PATCH", "/subcloud-peer-groups/pg1/migrate", json={"sysadmin_password": SYSADMIN})
    assert migrated.status_code == 200, migrated.text
    assert migrated.json()["migration_status"] == "migrating"
    again = site1.call("PATCH", "/subcloud-peer-groups/pg1/migrate", json={"sysadmin_password": SYSADMIN})
    assert again.status_code == 400 and "already migrating" in again.text
    wait_until(lambda: site1.get("/subcloud-peer-groups/pg1")["migration_status"] == "complete", timeout=90)
    assert states(site1) == {"sim-00001": ("complete", "managed"), "sim-00002": ("rehome-failed", "unmanaged")}
    # site2 let sim-00002 go before the rehome was tried: nobody manages it now.
    wait_until(lambda: states(site2) == {"sim-00001": ("secondary", "unmanaged"),
                                         "sim-00002": ("rehome-pending", "unmanaged")}, timeout=30)
    assert_one_manager(running(site1, site2), fleet.control)

    # A rerun picks up the failed one.
    fleet.fault("sim-00002", fail_phase=None)
    rerun = site1.call("PATCH", "/subcloud-peer-groups/pg1/migrate", json={"sysadmin_password": SYSADMIN})
    assert rerun.status_code == 200, rerun.text
    wait_until(lambda: site1.get("/subcloud-peer-groups/pg1")["migration_status"] == "complete", timeout=90)
    assert states(site1) == {n: ("complete", "managed") for n in MEMBERS[:2]}
    assert site1.get("/subcloud-peer-groups/pg1")["system_leader_id"] == uuid1
    assert site1.get(f"/fault-alarms?entity=peer_group=pg1,peer={uuid2}")["alarms"] == []
    assert_one_manager(running(site1, site2), fleet.control)
    # site1 sent its copy to site2's audit: site2's copies are secondary again, site1 leads.
    wait_until(lambda: states(site2) == {n: ("secondary", "unmanaged") for n in MEMBERS[:2]}, timeout=30)
    assert site2.get("/subcloud-peer-groups/pg1")["system_leader_id"] == uuid1
    assert_one_manager(running(site1, site2), fleet.control)
    refused = site2.call("PATCH", "/subclouds/sim-00002", json={"peer_group": "none"})
    assert refused.status_code == 400, refused.text
    assert_one_manager(running(site1, site2), fleet.control)


def test_scenarios_6_to_9_membership_and_update_rules(sites):
    fleet, site1, site2 = sites
    # 7: manage and unmanage of a member are refused (dcman answers 422, a state refusal, as
    # tests/test_subclouds_api.py fixes; the reference says 400).
    assert site1.call("PATCH", "/subclouds/sim-00001", json={"management-state": "unmanaged"}).status_code == 422
    assert site2.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 422
    # 8: an update on site1 (priority 0, leader) succeeds.
    updated = site1.call("PATCH", "/subclouds/sim-00001", json={"description": "rack 9"})
    assert updated.status_code == 200, updated.text
    # 9: an update on site2 (secondary) is refused.
    assert site2.call("PATCH", "/subclouds/sim-00001", json={"description": "rack 10"}).status_code == 400
    # 6: an unmanaged subcloud cannot join the group, nor a managed one that is offline.
    fleet.deployed("sim-00004")
    refused = site1.call("PATCH", "/subclouds/sim-00004", json={"peer_group": "pg1"})
    assert refused.status_code == 400 and "unmanaged, not managed" in refused.text
    fleet.deployed("sim-00005")
    assert site1.call("PATCH", "/subclouds/sim-00005", json={"management-state": "managed"}).status_code == 200
    fleet.fault("sim-00005", reachable=False)
    wait_until(lambda: site1.get("/subclouds/sim-00005")["availability-status"] == "offline", timeout=30)
    refused = site1.call("PATCH", "/subclouds/sim-00005", json={"peer_group": "pg1"})
    assert refused.status_code == 400 and "offline, not online" in refused.text, refused.text
    fleet.fault("sim-00005", reachable=True)
    assert site1.get("/subclouds/sim-00005")["peer_group_id"] is None
    assert_one_manager(running(site1, site2), fleet.control)


def test_scenario_4_the_leader_with_priority_0_removes_a_subcloud_from_the_group(sites):
    fleet, site1, site2 = sites
    left = site1.call("PATCH", "/subclouds/sim-00002", json={"peer_group": "none"})
    assert left.status_code == 200, left.text
    assert_one_manager(running(site1, site2), fleet.control)


def test_the_audit_verb_with_the_peer_migrating_makes_the_local_copies_let_go(sites):
    """What a site restarted in the middle of its peer's migration does (§5 step 2)."""
    fleet, site1, site2 = sites
    uuid2 = site2.get("/system")["uuid"]
    remote = site2.get("/subcloud-peer-groups/pg1")
    body = {**remote, "migration_status": "migrating", "peer_uuid": uuid2}
    refused = site1.call("PATCH", "/subcloud-peer-groups/pg1/audit", json=body)
    assert refused.status_code == 403 and "peer site only" in refused.text
    audited = httpx.patch(site1.running.url + "/v1.0/subcloud-peer-groups/pg1/audit", json=body, timeout=20,
                          headers={"X-Auth-Token": site1.token, "User-Agent": "dcmanager/1.0"})
    assert audited.status_code == 200, audited.text
    assert states(site1) == {"sim-00001": ("rehome-pending", "unmanaged")}
    assert site2.get("/subcloud-peer-groups/pg1")["migration_status"] in (None, "none")  # not reset: still migrating
    assert_one_manager(running(site1, site2), fleet.control)
