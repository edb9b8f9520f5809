"""A site that dies while rehoming: the subcloud is `rehome-failed` when the site is back, and
running migrate again adopts the rehome still running on the agent (geo-redundancy §4.6,
lifecycle §2.3.4). One real site and a simulator; the secondary copy is made the way a peer
site's sync makes it."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from conftest import SITE_BACKENDS, add_form, restart_site_process, stop_site_process, token_for
from simfleet import running_fleet, wait_until
from test_geo import SITE2_GATEWAY, SITE2_SETTINGS

SYSADMIN = base64.b64encode(b"St8rlingX*").decode()


def copy_values(fleet, name: str) -> dict:
    """The bootstrap values of a copy as the primary site sends them to this site, which is on a
    system-controller subnet of its own: the gateway is the one towards this site."""
    return {**fleet.bootstrap_values(name), "systemcontroller_gateway_address": SITE2_GATEWAY}


def as_peer(fleet, method: str, path: str, **kw) -> httpx.Response:
    """A call as a peer site's sync makes it: the admin account with the reference's User-Agent."""
    return httpx.request(method, fleet.site.url + "/v1.0" + path, timeout=10,
                         headers={"X-Auth-Token": fleet.token, "User-Agent": "dcmanager/1.0"}, **kw)


@pytest.mark.parametrize("backend", SITE_BACKENDS)
def test_a_restart_during_rehoming_leaves_rehome_failed_and_a_rerun_finishes_it(tmp_path, backend):
    with running_fleet(tmp_path, 2, backend=backend, settings=SITE2_SETTINGS) as fleet:
        data, files = add_form("sim-00001", copy_values(fleet, "sim-00001"), secondary="true",
                               region_name=uuid.uuid4().hex)
        data.pop("sysadmin_password")
        added = as_peer(fleet, "POST", "/subclouds", data=data, files=files)
        assert added.status_code == 200, added.text
        assert added.json()["deploy-status"] == "secondary"
        group = fleet.call("POST", "/subcloud-peer-groups", json={"peer-group-name": "pg1", "group-priority": 1,
                                                                   "max-subcloud-rehoming": 1})
        assert group.status_code == 200, group.text
        joined = as_peer(fleet, "PATCH", "/subclouds/sim-00001", json={"peer_group": "pg1"})
        assert joined.status_code == 200, joined.text

        fleet.fault("sim-00001", phase_seconds=8.0)
        migrated = fleet.call("PATCH", "/subcloud-peer-groups/pg1/migrate", json={"sysadmin_password": SYSADMIN})
        assert migrated.status_code == 200, migrated.text
        wait_until(lambda: fleet.subcloud("sim-00001")["deploy-status"] == "rehoming", timeout=20)
        # A peer that asks this site to let go of the subcloud now is refused: this site is
        # taking it over, and letting go would leave it managed by nobody.
        region = fleet.subcloud("sim-00001")["region-name"]
        release = as_peer(fleet, "PATCH", f"/subclouds/{region}", json={"migrate": "true"})
        assert release.status_code == 422 and "being rehomed" in release.text, release.text
        assert fleet.subcloud("sim-00001")["deploy-status"] == "rehoming"

        stop_site_process(fleet.site)
        fleet.site = restart_site_process(fleet.site)
        fleet.token = token_for(fleet.site)
        shown = fleet.subcloud("sim-00001")
        assert (shown["deploy-status"], shown["management-state"]) == ("rehome-failed", "unmanaged")
        assert "restarted" in shown["error-description"]
        # The crashed migration ends by itself, with nothing left to rehome.
        wait_until(lambda: fleet.call("GET", "/subcloud-peer-groups/pg1").json()["migration_status"] == "complete",
                   timeout=20)

        rerun = fleet.call("PATCH", "/subcloud-peer-groups/pg1/migrate", json={"sysadmin_password": SYSADMIN})
        assert rerun.status_code == 200, rerun.text
        wait_until(lambda: fleet.subcloud("sim-00001")["management-state"] == "managed", timeout=40)
        assert fleet.subcloud("sim-00001")["deploy-status"] == "complete"
        uuid_here = fleet.call("GET", "/system").json()["uuid"]
        simulated = httpx.get(f"{fleet.control}/sim/subclouds/sim-00001", timeout=10).json()
        assert simulated["system_controller"] == uuid_here
        assert simulated["systemcontroller_gateway"] == SITE2_GATEWAY  # rehomed with this site's gateway


def test_a_rehomed_subcloud_that_comes_online_after_the_wait_is_managed_when_it_does(tmp_path):
    with running_fleet(tmp_path, 1, settings={"DCMAN_REHOME_ONLINE_TIMEOUT": "3", **SITE2_SETTINGS}) as fleet:
        data, files = add_form("sim-00001", copy_values(fleet, "sim-00001"), secondary="true",
                               region_name=uuid.uuid4().hex)
        data.pop("sysadmin_password")
        assert as_peer(fleet, "POST", "/subclouds", data=data, files=files).status_code == 200
        assert fleet.call("POST", "/subcloud-peer-groups", json={"peer-group-name": "pg1",
                                                                 "group-priority": 1}).status_code == 200
        assert as_peer(fleet, "PATCH", "/subclouds/sim-00001", json={"peer_group": "pg1"}).status_code == 200
        fleet.fault("sim-00001", healthy=False)  # the rehome succeeds, the subcloud never reports healthy

        migrated = fleet.call("PATCH", "/subcloud-peer-groups/pg1/migrate", json={"sysadmin_password": SYSADMIN})
        assert migrated.status_code == 200, migrated.text
        wait_until(lambda: fleet.subcloud("sim-00001")["deploy-status"] == "complete", timeout=20)
        wait_until(lambda: fleet.call("GET", "/subcloud-peer-groups/pg1").json()["migration_status"] == "complete",
                   timeout=20)
        shown = fleet.subcloud("sim-00001")
        assert (shown["deploy-status"], shown["management-state"], shown["availability-status"]) == (
            "complete", "unmanaged", "offline")
        # Once it is healthy, the site manages it after all (an operator may not: it is a member).
        fleet.fault("sim-00001", healthy=True)
        wait_until(lambda: fleet.subcloud("sim-00001")["management-state"] == "managed", timeout=30)
        assert fleet.subcloud("sim-00001")["availability-status"] == "online"
