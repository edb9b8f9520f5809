"""A site SIGKILLed while it adopts a subcloud (add with migrate=true), for real on SQLite and
PostgreSQL: the restarted site shows the recovery state of lifecycle §2.3.4 (`rehoming →
rehome-failed`), and the operator runs the adoption again the way the reference allows for an
adopted subcloud (no rehome data, no peer group: no migrate, no redeploy): delete it and add it
again with migrate."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest

from conftest import SITE_BACKENDS, restart_site_process, token_for
from simfleet import Fleet, running_fleet, wait_until
from test_subcloud_ops import adopt, dcman, deployed_elsewhere, sim_item


@pytest.fixture(scope="module", params=SITE_BACKENDS)
def fleet(request, tmp_path_factory) -> Iterator[Fleet]:
    # A short lease: on PostgreSQL the restarted site takes its dead self's leases over sooner.
    with running_fleet(tmp_path_factory.mktemp("adoption-recovery"), 2, interval=0.5, backend=request.param,
                       settings={"DCMAN_LEASE_SECONDS": "3"}) as running:
        yield running


def test_a_site_killed_while_rehoming_an_adopted_subcloud_leaves_it_rehome_failed_and_it_is_adopted_again(
        fleet, tmp_path):
    name = "sim-00001"
    deployed_elsewhere(fleet, name)
    fleet.fault(name, phase_seconds=6)
    result = adopt(fleet, tmp_path, name)
    assert result.exit_code == 0, result.output
    wait_until(lambda: fleet.subcloud(name)["deploy-status"] == "rehoming"
               and sim_item(fleet, name)["phase"]["phase"] == "rehome", timeout=15)
    fleet.site.process.send_signal(signal.SIGKILL)
    fleet.site.process.wait(timeout=10)
    fleet.site = restart_site_process(fleet.site)
    fleet.token = token_for(fleet.site)
    # On SQLite the restarted site recovers at start; sharing PostgreSQL, once the dead process's lease ends.
    shown = wait_until(lambda: (s := fleet.subcloud(name))["deploy-status"] != "rehoming" and s, timeout=30)
    assert shown["deploy-status"] == "rehome-failed"
    assert shown["error-description"] == "The site restarted while the subcloud was rehoming."
    assert (shown["management-state"], shown["availability-status"]) == ("unmanaged", "offline")

    # What the reference refuses for an adopted subcloud: adding it twice, marking it for a migration.
    again = adopt(fleet, tmp_path, name)
    assert again.exit_code == 1 and again.stderr.splitlines()[-1] == (
        "Error: The range management_start_address..management_end_address (127.1.0.2-127.1.0.6) overlaps the "
        f"management address range 127.1.0.2-127.1.0.6 of subcloud {name}.")
    marked = fleet.call("PATCH", f"/subclouds/{name}", json={"migrate": "true"})
    assert (marked.status_code, marked.json()["error_message"]["faultstring"]) == (400, (
        f"Subcloud {name} can be marked rehome-pending only when its deploy status is complete "
        "(it is rehome-failed)."))

    # What it allows: delete (unmanaged, offline, no operation running) and add with migrate again.
    # The rehome the dead site started may still run on the subcloud: the new one takes it up.
    fleet.fault(name, phase_seconds=0.5)
    deleted = dcman(fleet, "subcloud", "delete", name)
    assert deleted.exit_code == 0, deleted.output
    assert fleet.call("GET", f"/subclouds/{name}").status_code == 404
    result = adopt(fleet, tmp_path, name, "--wait", "--format", "json")
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout)
    assert (final["deploy-status"], final["error-description"]) == ("complete", "No errors present")
    seen = {line.split(": ", 1)[1].split(" (")[0] for line in result.stderr.splitlines() if line.startswith(name)}
    # It rehomes (the new run may take up one nearly over: `rehoming` can be too short for the CLI to
    # show) and never deploys again.
    assert seen & {"pre-rehome", "rehoming"} and not {"installing", "bootstrapping", "configuring"} & seen
    ours = fleet.call("GET", "/system").json()["uuid"]
    assert sim_item(fleet, name)["system_controller"] == ours
    wait_until(lambda: fleet.subcloud(name)["availability-status"] == "online", timeout=20)
