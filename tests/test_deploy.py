"""Deploying subclouds for real: a `dcman serve` drives simulated subclouds through install,
bootstrap and config over the agent protocol; faults come from the simulator's control API."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from conftest import restart_site_process, token_for
from simfleet import Fleet, running_fleet, wait_until

INSTALL_VALUES = """\
bootstrap_interface: eno1
bootstrap_address: 10.10.0.2
bootstrap_address_prefix: 16
install_type: 0
bmc_username: root
bmc_address: 10.20.0.2
bmc_password: {bmc}
software_version: "24.09"
"""
DEPLOY_CONFIG = "deployment: {profile: edge}\n"
BMC = "Ym1jLXNlY3JldA=="  # base64 of bmc-secret


def full(fleet: Fleet, name: str, **fields) -> dict:
    """Add with install values and a deploy config: all three phases run."""
    return fleet.add(name, install_values=INSTALL_VALUES.format(bmc=BMC), deploy_config=DEPLOY_CONFIG, **fields)


def status(fleet: Fleet, name: str) -> str:
    return fleet.subcloud(name)["deploy-status"]


def reaches(fleet: Fleet, name: str, state: str, timeout: float = 30.0) -> dict:
    wait_until(lambda: status(fleet, name) == state, timeout=timeout, every=0.05)
    return fleet.subcloud(name)


def patch(fleet: Fleet, name: str, verb: str, **body):
    return fleet.call("PATCH", f"/phased-subcloud-deploy/{name}/{verb}", json=body)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("deploy"), 40) as running:
        yield running


def test_a_full_add_installs_bootstraps_configures_goes_online_and_can_be_managed(fleet):
    seen: list[str] = []

    def track() -> bool:
        state = status(fleet, "sim-00001")
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "complete"

    full(fleet, "sim-00001")
    wait_until(track, timeout=30, every=0.02)
    assert [s for s in seen if s in ("installing", "bootstrapping", "configuring")] == [
        "installing", "bootstrapping", "configuring"]
    wait_until(lambda: fleet.subcloud("sim-00001")["availability-status"] == "online")
    assert fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 200
    shown = fleet.subcloud("sim-00001")
    assert shown["error-description"] == "No errors present" and shown["deploy-progress"] == 100
    assert "bmc_password" not in str(shown["data_install"])
    log = fleet.site.data_dir / "subclouds" / str(shown["id"]) / "bootstrap.log"
    assert "bootstrap succeeded" in log.read_text()


def test_without_install_values_or_deploy_config_only_bootstrap_runs(fleet):
    fleet.add("sim-00002")
    reaches(fleet, "sim-00002", "complete")
    folder = fleet.site.data_dir / "subclouds" / str(fleet.subcloud("sim-00002")["id"])
    assert sorted(p.name for p in folder.iterdir()) == ["bootstrap.log"]


@pytest.mark.parametrize("phase, failed, index", [
    ("install", "install-failed", 3), ("bootstrap", "bootstrap-failed", 4), ("config", "config-failed", 5)])
def test_a_failing_phase_stops_in_its_failed_state_with_the_message_and_resume_finishes(fleet, phase, failed, index):
    name = f"sim-{index:05d}"
    fleet.fault(name, fail_phase=phase)
    full(fleet, name)
    shown = reaches(fleet, name, failed)
    assert phase in shown["error-description"].lower() or "fail" in shown["error-description"].lower()
    assert shown["error-description"] != "No errors present"

    fleet.fault(name, fail_phase=None)
    resumed = patch(fleet, name, "resume")
    assert resumed.status_code == 200, resumed.text
    reaches(fleet, name, "complete")
    assert fleet.subcloud(name)["error-description"] == "No errors present"


@pytest.mark.parametrize("verb, phase, running, aborted, index", [
    ("install", "install", "installing", "install-aborted", 6),
    ("bootstrap", "bootstrap", "bootstrapping", "bootstrap-aborted", 7),
    ("configure", "config", "configuring", "config-aborted", 8)])
def test_abort_during_a_phase_gives_the_aborted_state_and_resume_finishes(fleet, verb, phase, running, aborted,
                                                                        index):
    name = f"sim-{index:05d}"
    fleet.add(name, path="/phased-subcloud-deploy")
    reaches(fleet, name, "create-complete")
    if verb == "configure":
        assert patch(fleet, name, "bootstrap").status_code == 200
        reaches(fleet, name, "bootstrap-complete")
    fleet.fault(name, phase_seconds=30)
    fields = {"install": {"install_values": INSTALL_VALUES.format(bmc=BMC)}, "bootstrap": {},
              "configure": {"deploy_config": DEPLOY_CONFIG}}[verb]
    assert patch(fleet, name, verb, **fields).status_code == 200
    reaches(fleet, name, running)
    answer = patch(fleet, name, "abort")
    assert answer.status_code == 200, answer.text
    assert answer.json()["deploy-status"] == f"aborting-{phase}"
    reaches(fleet, name, aborted, timeout=15)

    fleet.fault(name, phase_seconds=0.2)
    assert patch(fleet, name, "resume").status_code == 200
    reaches(fleet, name, "complete")


def test_abort_is_refused_when_no_phase_runs(fleet):
    fleet.deployed("sim-00009")
    answer = patch(fleet, "sim-00009", "abort")
    assert answer.status_code == 422 and "only while" in answer.json()["error_message"]["faultstring"]


def test_the_phased_deploy_runs_one_verb_at_a_time(fleet):
    name = "sim-00010"
    fleet.add(name, path="/phased-subcloud-deploy")
    reaches(fleet, name, "create-complete")
    refused = patch(fleet, name, "configure")
    assert refused.status_code == 422 and "cannot start config" in refused.json()["error_message"]["faultstring"]

    assert patch(fleet, name, "install", install_values=INSTALL_VALUES.format(bmc=BMC)).status_code == 200
    reaches(fleet, name, "install-complete")
    assert patch(fleet, name, "bootstrap").status_code == 200
    reaches(fleet, name, "bootstrap-complete")
    assert patch(fleet, name, "configure", deploy_config=DEPLOY_CONFIG).status_code == 200
    reaches(fleet, name, "complete")


def test_complete_ends_a_deploy_without_config(fleet):
    name = "sim-00011"
    fleet.add(name, path="/phased-subcloud-deploy")
    reaches(fleet, name, "create-complete")
    assert patch(fleet, name, "bootstrap").status_code == 200
    reaches(fleet, name, "bootstrap-complete")
    done = patch(fleet, name, "complete")
    assert done.status_code == 200 and done.json()["deploy-status"] == "complete"


def test_redeploy_only_when_offline_and_unmanaged(fleet):
    name = "sim-00012"
    full(fleet, name)
    reaches(fleet, name, "complete")
    wait_until(lambda: fleet.subcloud(name)["availability-status"] == "online")
    refused = fleet.call("PATCH", f"/subclouds/{name}/redeploy", json={})
    assert refused.status_code == 422 and "offline and unmanaged" in refused.json()["error_message"]["faultstring"]

    fleet.fault(name, reachable=False)
    wait_until(lambda: fleet.subcloud(name)["availability-status"] == "offline")
    fleet.fault(name, reachable=True)  # the node is back for reinstallation
    accepted = fleet.call("PATCH", f"/subclouds/{name}/redeploy", json={})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["deploy-status"] == "pre-install"
    reaches(fleet, name, "complete")


def test_a_site_killed_during_a_phase_shows_the_failure_and_resume_finishes(fleet):
    name = "sim-00013"
    fleet.fault(name, phase_seconds=4)
    fleet.add(name)
    reaches(fleet, name, "bootstrapping")
    fleet.site.process.send_signal(signal.SIGKILL)
    fleet.site.process.wait()

    fleet.site = restart_site_process(fleet.site)
    fleet.token = token_for(fleet.site)
    shown = reaches(fleet, name, "bootstrap-failed")
    assert "restarted" in shown["error-description"]
    assert patch(fleet, name, "resume").status_code == 200
    reaches(fleet, name, "complete")
