"""The availability audit against a real simulator: a real `dcman serve` (audit interval 1 s)
probes simulated subclouds over HTTP, and faults are injected through the simulator's control API."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from conftest import DCMAN, SITE_BACKENDS
from simfleet import Fleet, running_fleet, wait_until

SIM_COUNT = 9
INTERVAL = 1.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("audit"), SIM_COUNT, INTERVAL) as running:
        yield running


def test_a_deployed_subcloud_goes_online_and_can_be_managed(fleet):
    shown = fleet.deployed("sim-00001")
    assert shown["availability-status"] == "online"
    assert fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 200
    # Managed and online: the audit now collects the alarm summary and the endpoint statuses.
    wait_until(lambda: fleet.summary("sim-00001")["cloud_status"] == "OK")
    wait_until(lambda: all(e["sync_status"] == "in-sync" for e in fleet.subcloud("sim-00001")["endpoint_sync_status"]))


def test_a_created_subcloud_is_not_audited_until_complete(fleet):
    fleet.add("sim-00002", path="/phased-subcloud-deploy")
    wait_until(lambda: fleet.subcloud("sim-00002")["deploy-status"] == "create-complete")
    time.sleep(3 * INTERVAL)
    assert fleet.subcloud("sim-00002")["availability-status"] == "offline"


def test_alarm_counts_roll_up_into_cloud_status(fleet):
    fleet.deployed("sim-00003")
    fleet.call("PATCH", "/subclouds/sim-00003", json={"management-state": "managed"})
    fleet.fault("sim-00003", alarms={"critical": 0, "major": 2, "minor": 0, "warnings": 5})
    wait_until(lambda: fleet.summary("sim-00003")["cloud_status"] == "degraded")
    assert fleet.summary("sim-00003")["major_alarms"] == 2 and fleet.summary("sim-00003")["warnings"] == 5
    fleet.fault("sim-00003", alarms={"critical": 1, "major": 0, "minor": 0, "warnings": 0})
    wait_until(lambda: fleet.summary("sim-00003")["cloud_status"] == "critical")
    fleet.fault("sim-00003", alarms={"critical": 0, "major": 0, "minor": 0, "warnings": 3})
    wait_until(lambda: fleet.summary("sim-00003")["cloud_status"] == "OK")


def test_unreachable_subcloud_goes_offline_only_at_the_second_failed_audit(fleet):
    fleet.deployed("sim-00004")
    fleet.call("PATCH", "/subclouds/sim-00004", json={"management-state": "managed"})
    wait_until(lambda: fleet.summary("sim-00004")["cloud_status"] == "OK")
    fleet.fault("sim-00004", reachable=False)
    seen: list[tuple[str, int]] = []

    def offline() -> bool:
        state = fleet.stored("sim-00004")
        if not seen or seen[-1] != state:
            seen.append(state)
        return state[0] == "offline"

    wait_until(offline, every=0.02)
    assert ("online", 1) in seen, seen  # the first failure is tolerated
    assert seen[-1] == ("offline", 2), seen
    # Going offline raises 280.001, resets endpoint statuses and the alarm summary.
    [alarm] = fleet.alarms("subcloud=sim-00004")
    assert (alarm["alarm_id"], alarm["severity"], alarm["reason_text"]) == ("280.001", "critical", "sim-00004 is offline")
    shown = fleet.subcloud("sim-00004")
    assert {e["sync_status"] for e in shown["endpoint_sync_status"]} == {"unknown"}
    assert fleet.summary("sim-00004")["cloud_status"] == "disabled"
    # The fail count keeps growing while it stays offline.
    wait_until(lambda: fleet.stored("sim-00004")[1] >= 4)

    fleet.fault("sim-00004", reachable=True)
    wait_until(lambda: fleet.subcloud("sim-00004")["availability-status"] == "online")
    assert fleet.stored("sim-00004") == ("online", 0)
    assert fleet.alarms("subcloud=sim-00004") == []
    wait_until(lambda: fleet.summary("sim-00004")["cloud_status"] == "OK")


def test_an_unhealthy_service_group_makes_a_subcloud_offline(fleet):
    fleet.deployed("sim-00005")
    fleet.fault("sim-00005", healthy=False)
    wait_until(lambda: fleet.subcloud("sim-00005")["availability-status"] == "offline")
    assert [a["alarm_id"] for a in fleet.alarms("subcloud=sim-00005")] == ["280.001"]
    fleet.fault("sim-00005", healthy=True)
    wait_until(lambda: fleet.subcloud("sim-00005")["availability-status"] == "online")


def test_a_flapping_subcloud_never_raises_an_alarm(fleet):
    """One failed probe followed by a good one, over and over: below the threshold of 2."""
    fleet.deployed("sim-00006")
    for _ in range(4):
        fleet.fault("sim-00006", reachable=False)
        wait_until(lambda: fleet.stored("sim-00006")[1] == 1, every=0.01)
        fleet.fault("sim-00006", reachable=True)
        wait_until(lambda: fleet.stored("sim-00006")[1] == 0, every=0.01)
        assert fleet.stored("sim-00006")[0] == "online"
        assert fleet.alarms("subcloud=sim-00006") == []


def test_deleting_or_renaming_an_offline_subcloud_carries_its_alarm(fleet):
    fleet.deployed("sim-00007")
    fleet.fault("sim-00007", reachable=False)
    wait_until(lambda: fleet.subcloud("sim-00007")["availability-status"] == "offline")
    renamed = fleet.call("PATCH", "/subclouds/sim-00007", json={"name": "sim-renamed"})
    assert renamed.status_code == 200, renamed.text
    assert fleet.alarms("subcloud=sim-00007") == []
    assert [a["reason_text"] for a in fleet.alarms("subcloud=sim-renamed")] == ["sim-renamed is offline"]
    assert fleet.call("DELETE", "/subclouds/sim-renamed").status_code == 200
    assert fleet.alarms("subcloud=sim-renamed") == []


def test_the_alarm_list_command_shows_the_offline_alarm(fleet):
    fleet.deployed("sim-00008")
    fleet.fault("sim-00008", reachable=False)
    wait_until(lambda: fleet.alarms("subcloud=sim-00008"))
    env = {**os.environ, "DCMAN_URL": fleet.site.url, "DCMAN_USER": fleet.site.admin_user,
           "DCMAN_PASSWORD": fleet.site.admin_password}
    result = subprocess.run([DCMAN, "alarm", "list", "--alarm-id", "280.001", "--format", "json"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "subcloud=sim-00008" in result.stdout


# --- the audit converges to the agent's report, whatever else wrote meanwhile -----------------

SLOW_INTERVAL = 2.0


@pytest.fixture(scope="module", params=SITE_BACKENDS)
def slow_fleet(request, tmp_path_factory) -> Iterator[Fleet]:
    """A fleet audited every 2 s, on SQLite and PostgreSQL."""
    with running_fleet(tmp_path_factory.mktemp("audit-slow"), 2, SLOW_INTERVAL, request.param) as running:
        yield running


def sync_statuses(fleet: Fleet, name: str) -> dict[str, str]:
    return {e["endpoint_type"]: e["sync_status"] for e in fleet.subcloud(name)["endpoint_sync_status"]}


def test_unmanage_then_manage_brings_the_endpoint_statuses_back_in_sync_within_two_intervals(slow_fleet):
    fleet = slow_fleet
    fleet.deployed("sim-00001")
    assert fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 200
    wait_until(lambda: set(sync_statuses(fleet, "sim-00001").values()) == {"in-sync"})

    assert fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "unmanaged"}).status_code == 200
    reset = sync_statuses(fleet, "sim-00001")
    assert reset.pop("dc-cert") == "in-sync" and set(reset.values()) == {"unknown"}
    time.sleep(2 * SLOW_INTERVAL)  # the audit probes it unmanaged: in-sync reports are not stored then
    reset = sync_statuses(fleet, "sim-00001")
    assert reset.pop("dc-cert") == "in-sync" and set(reset.values()) == {"unknown"}

    assert fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 200
    managed_at = time.monotonic()
    wait_until(lambda: set(sync_statuses(fleet, "sim-00001").values()) == {"in-sync"}, timeout=4 * SLOW_INTERVAL)
    assert time.monotonic() - managed_at < 2 * SLOW_INTERVAL


def test_statuses_whose_write_failed_are_written_once_the_database_takes_them(fleet):
    """The audit's memory of what it stored follows only committed writes: a failed commit is retried."""
    import sqlite3

    fleet.deployed("sim-00009")
    database = fleet.site.data_dir / "dcman.sqlite"
    # The database refuses every in-sync status of this subcloud until the trigger is dropped.
    with sqlite3.connect(database, timeout=10) as db:
        db.execute("CREATE TRIGGER refuse_in_sync BEFORE UPDATE OF sync_status ON subcloud_status "
                   "WHEN NEW.sync_status = 'in-sync' AND NEW.endpoint_type != 'dc-cert' "
                   "AND NEW.subcloud_id = (SELECT id FROM subclouds WHERE name = 'sim-00009') "
                   "BEGIN SELECT RAISE(ABORT, 'in-sync refused by the test'); END")
    try:
        assert fleet.call("PATCH", "/subclouds/sim-00009", json={"management-state": "managed"}).status_code == 200
        wait_until(lambda: fleet.site.log.read_text().count("in-sync refused by the test") >= 2)
        statuses = sync_statuses(fleet, "sim-00009")
        assert statuses.pop("dc-cert") == "in-sync" and set(statuses.values()) == {"unknown"}
    finally:
        with sqlite3.connect(database, timeout=10) as db:
            db.execute("DROP TRIGGER refuse_in_sync")
    wait_until(lambda: set(sync_statuses(fleet, "sim-00009").values()) == {"in-sync"}, timeout=5 * INTERVAL)
