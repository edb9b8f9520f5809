"""Subcloud backup and restore for real: a `dcman serve` backs simulated subclouds up over the
agent protocol, streams central backups into its data directory, deletes and restores them."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import SITE_BACKENDS, restart_site_process, token_for
from simfleet import Fleet, running_fleet, wait_until

SYSADMIN = base64.b64encode(b"St8rlingX*").decode()
MIB = 1024 * 1024
DCMAN_BIN = str(Path(sys.executable).with_name("dcman"))


def backup_status(fleet: Fleet, name: str) -> str | None:
    return fleet.subcloud(name)["backup-status"]


def reaches(fleet: Fleet, name: str, status: str, field: str = "backup-status", timeout: float = 20.0) -> dict:
    wait_until(lambda: fleet.subcloud(name)[field] == status, timeout=timeout, every=0.05)
    return fleet.subcloud(name)


# Deployed, online and managed before the tests start (all at once: the module's run time is
# mostly waiting for deploys and audits); UNMANAGED ones are deployed and online but unmanaged.
MANAGED = ("sim-00001", "sim-00002", "sim-00003", "sim-00004", "sim-00005", "sim-00006", "sim-00007",
           "sim-00010", "sim-00011", "sim-00012", "sim-00013", "sim-00014")
UNMANAGED = ("sim-00008", "sim-00009")


def create(fleet: Fleet, **body):
    return fleet.call("POST", "/subcloud-backup", json={"sysadmin_password": SYSADMIN, **body})


def central_file(fleet: Fleet, subcloud: dict, release: str = "24.09") -> Path:
    return fleet.site.data_dir / "subclouds" / str(subcloud["id"]) / "backups" / release / "backup.tgz"


def refusal(response) -> str:
    return response.json()["error_message"]["faultstring"]


def assert_central_backup(fleet: Fleet, name: str, size: int) -> Path:
    """The central backup of `name` is there, whole, its recorded SHA-256 right, and it is `name`'s."""
    path = central_file(fleet, fleet.subcloud(name))
    data = path.read_bytes()
    assert len(data) == size
    recorded, filename = path.with_name("backup.tgz.sha256").read_text().split()
    assert filename == "backup.tgz" and recorded == hashlib.sha256(data).hexdigest()
    line = f"{name} 24.09 backup\n".encode()
    assert data == (line * (size // len(line) + 1))[:size]
    return path


@pytest.fixture(scope="module", params=SITE_BACKENDS)
def fleet(request, tmp_path_factory) -> Iterator[Fleet]:
    # A short lease: the site restarted after a SIGKILL takes its own dead leases over sooner.
    with running_fleet(tmp_path_factory.mktemp("backup"), 20, interval=0.5, backend=request.param,
                       settings={"DCMAN_LEASE_SECONDS": "3"}) as running:
        running.online(*MANAGED, *UNMANAGED)
        for name in MANAGED:
            managed = running.call("PATCH", f"/subclouds/{name}", json={"management-state": "managed"})
            assert managed.status_code == 200, managed.text
        running.backend = request.param  # type: ignore[attr-defined]
        yield running


def sqlite_only(fleet: Fleet) -> None:
    """The API-level rules and the CLI are the same on either database: run them once."""
    if fleet.backend != "sqlite":  # type: ignore[attr-defined]
        pytest.skip("database-independent; covered on SQLite")


def test_a_central_backup_goes_through_its_states_and_is_stored_checksummed(fleet):
    name = "sim-00001"
    fleet.fault(name, backup_mb=3, phase_seconds=1)
    seen: list[str] = []

    def track() -> bool:
        status = backup_status(fleet, name)
        if not seen or seen[-1] != status:
            seen.append(status)
        return status == "complete-central"

    accepted = create(fleet, subcloud=name)
    assert accepted.status_code == 200, accepted.text
    assert [s["name"] for s in accepted.json()["subclouds"]] == [name]
    assert accepted.json()["subclouds"][0]["backup-status"] == "initial"
    wait_until(track, timeout=20, every=0.02)
    assert "backing-up" in seen and seen[-1] == "complete-central"
    shown = fleet.subcloud(name)
    assert shown["backup-datetime"] is not None and shown["error-description"] == "No errors present"
    assert_central_backup(fleet, name, 3 * MIB)
    assert not list(central_file(fleet, shown).parent.glob("*.part"))


def test_a_group_backup_stores_every_member_and_local_only_keeps_it_on_the_subcloud(fleet):
    group = fleet.call("POST", "/subcloud-groups", json={"name": "backup-group", "description": "for backups",
                                                         "update_apply_type": "parallel", "max_parallel_subclouds": 2})
    assert group.status_code == 200, group.text
    members = ("sim-00002", "sim-00003")
    for name in members:
        assert fleet.call("PATCH", f"/subclouds/{name}", json={"group_id": str(group.json()["id"])}).status_code == 200
    fleet.fault("sim-00003", backup_mb=0.5)
    accepted = create(fleet, group="backup-group")
    assert accepted.status_code == 200, accepted.text
    assert sorted(s["name"] for s in accepted.json()["subclouds"]) == list(members)
    for name in members:
        reaches(fleet, name, "complete-central")
    assert_central_backup(fleet, "sim-00002", MIB)
    assert_central_backup(fleet, "sim-00003", MIB // 2)

    local = "sim-00004"
    assert create(fleet, subcloud=local, local_only="true").status_code == 200
    reaches(fleet, local, "complete-local")
    assert not central_file(fleet, fleet.subcloud(local)).exists()


def test_a_failed_backup_shows_failed_and_why(fleet):
    name = "sim-00005"
    fleet.fault(name, fail_phase="backup")
    assert create(fleet, subcloud=name).status_code == 200
    shown = reaches(fleet, name, "failed")
    assert "simulated failure" in shown["error-description"]
    assert not central_file(fleet, shown).exists()
    log = fleet.site.data_dir / "subclouds" / str(shown["id"]) / "backup.log"
    assert "simulated failure" in log.read_text()
    fleet.fault(name, fail_phase=None)  # a new backup after the failure runs again
    assert create(fleet, subcloud=name).status_code == 200
    reaches(fleet, name, "complete-central")


def test_a_backup_larger_than_the_free_disk_space_fails_before_a_byte_is_written(fleet):
    sqlite_only(fleet)
    name, huge_mb = "sim-00010", 100 * 1024  # the simulator's largest backup: 100 GiB
    if shutil.disk_usage(fleet.site.data_dir).free > huge_mb * MIB:
        pytest.skip("the disk here has room for the largest simulated backup")
    fleet.fault(name, backup_mb=huge_mb)
    assert create(fleet, subcloud=name).status_code == 200
    shown = reaches(fleet, name, "failed")
    assert "only" in shown["error-description"] and "may be stored" in shown["error-description"]
    assert not list(central_file(fleet, shown).parent.glob("*"))
    fleet.fault(name, backup_mb=1)


def test_delete_removes_the_central_backup(fleet):
    name = "sim-00006"
    assert create(fleet, subcloud=name).status_code == 200
    path = assert_central_backup(fleet, name, MIB) if reaches(fleet, name, "complete-central") else None
    deleted = fleet.call("PATCH", "/subcloud-backup/delete/24.09", json={"subcloud": name})
    assert deleted.status_code == 204, deleted.text
    assert path is not None and not path.exists() and not path.parent.exists()
    shown = fleet.subcloud(name)
    assert shown["backup-status"] == "unknown" and shown["backup-datetime"] is None
    again = fleet.call("PATCH", "/subcloud-backup/delete/24.09", json={"subcloud": name})
    assert again.status_code == 422 and "Failed to run subcloud-backup delete" in refusal(again)
    bad = fleet.call("PATCH", "/subcloud-backup/delete/..%2F..", json={"subcloud": name})
    assert bad.status_code in (400, 404)


def test_a_restore_runs_to_complete_and_a_missing_backup_is_restore_prep_failed(fleet):
    name = "sim-00007"
    fleet.fault(name, phase_seconds=1)
    assert create(fleet, subcloud=name).status_code == 200
    reaches(fleet, name, "complete-central")
    refused = fleet.call("PATCH", "/subcloud-backup/restore", json={"subcloud": name, "sysadmin_password": SYSADMIN})
    assert refused.status_code == 400 and "must be unmanaged" in refusal(refused)
    assert fleet.call("PATCH", f"/subclouds/{name}", json={"management-state": "unmanaged"}).status_code == 200
    seen: list[str] = []

    def track() -> bool:
        status = fleet.subcloud(name)["deploy-status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        return status == "complete" and len(seen) > 1

    accepted = fleet.call("PATCH", "/subcloud-backup/restore", json={"subcloud": name, "sysadmin_password": SYSADMIN})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["subclouds"][0]["deploy-status"] == "pre-restore"
    wait_until(track, timeout=20, every=0.02)
    assert "restoring" in seen
    # Deleting the subcloud (powered down) removes its central backups with it.
    backup = assert_central_backup(fleet, name, MIB)
    fleet.fault(name, reachable=False)
    wait_until(lambda: fleet.subcloud(name)["availability-status"] == "offline")
    assert fleet.call("DELETE", f"/subclouds/{name}").status_code == 200
    assert not backup.exists() and not backup.parent.parent.parent.exists()

    other = "sim-00008"  # never backed up: nothing to restore from
    assert fleet.call("PATCH", "/subcloud-backup/restore",
                      json={"subcloud": other, "sysadmin_password": SYSADMIN}).status_code == 200
    shown = reaches(fleet, other, "restore-prep-failed", field="deploy-status")
    assert "No central backup of release 24.09" in shown["error-description"]
    local = fleet.call("PATCH", "/subcloud-backup/restore",
                       json={"subcloud": other, "local_only": "true", "sysadmin_password": SYSADMIN})
    assert local.status_code == 200
    shown = reaches(fleet, other, "restore-prep-failed", field="deploy-status")
    assert "no local backup" in shown["error-description"]


def sim_item(fleet: Fleet, name: str) -> dict:
    return httpx.get(f"{fleet.control}/sim/subclouds/{name}", timeout=10).json()


def restore(fleet: Fleet, name: str) -> None:
    answer = fleet.call("PATCH", "/subcloud-backup/restore", json={"subcloud": name, "sysadmin_password": SYSADMIN})
    assert answer.status_code == 200, answer.text


def test_a_central_restore_uploads_the_backup_to_a_subcloud_that_lost_its_copy(fleet):
    name = "sim-00014"
    fleet.fault(name, backup_mb=2, phase_seconds=0.3)
    assert create(fleet, subcloud=name).status_code == 200
    reaches(fleet, name, "complete-central")
    central = assert_central_backup(fleet, name, 2 * MIB)
    # The subcloud loses its own copy (deleted here; a reinstall or a disk replaced would do the same).
    dropped = fleet.call("PATCH", "/subcloud-backup/delete/24.09",
                         json={"subcloud": name, "local_only": "true", "sysadmin_password": SYSADMIN})
    assert dropped.status_code == 204, dropped.text
    assert sim_item(fleet, name)["backup_release"] is None
    assert fleet.call("PATCH", f"/subclouds/{name}", json={"management-state": "unmanaged"}).status_code == 200

    fleet.fault(name, reachable=False)  # the upload cannot happen: the restore fails before its phase
    restore(fleet, name)
    shown = reaches(fleet, name, "restore-prep-failed", field="deploy-status")
    reason = shown["error-description"]
    assert reason.startswith("Copying the central backup of release 24.09 to the subcloud failed: ") \
        and "reset by peer" in reason, reason
    fleet.fault(name, reachable=True)
    restore(fleet, name)
    reaches(fleet, name, "complete", field="deploy-status")
    item = sim_item(fleet, name)
    assert (item["backup_release"], item["uploads"]) == ("24.09", 1)
    agent = f"http://{item['management_start_ip']}:{fleet.site_env['DCMAN_SUBCLOUD_AGENT_PORT']}"
    held = httpx.get(f"{agent}/v1/backups/24.09/checksum", auth=("sysadmin", "St8rlingX*"), timeout=10).json()
    assert held == {"release": "24.09", "size": 2 * MIB, "sha256": hashlib.sha256(central.read_bytes()).hexdigest()}
    log = (fleet.site.data_dir / "subclouds" / str(shown["id"]) / "restore.log").read_text()
    assert f"uploading {2 * MIB} bytes" in log

    # The next restore finds the copy on the subcloud and sends nothing.
    restore(fleet, name)  # answered at pre-restore
    reaches(fleet, name, "complete", field="deploy-status")
    assert sim_item(fleet, name)["uploads"] == 1


def test_what_a_backup_request_may_not_do(fleet):
    unmanaged = "sim-00009"
    sqlite_only(fleet)
    cases = [
        (create(fleet, subcloud=unmanaged), "must be deployed, online and managed"),
        (fleet.call("POST", "/subcloud-backup", json={"subcloud": unmanaged}), "sysadmin_password"),
        (create(fleet, subcloud=unmanaged, color="red"), "Unexpected parameter"),
        (create(fleet, subcloud=unmanaged, group="Default"), "should not be given at the same time"),
        (create(fleet), "'subcloud' or 'group' parameter is required"),
        (create(fleet, subcloud="no-such-subcloud"), "Subcloud no-such-subcloud not found"),
        (create(fleet, subcloud=unmanaged, registry_images="true"), "without local_only"),
        (create(fleet, subcloud=unmanaged, local_only="maybe"), "Invalid local_only value"),
        (fleet.call("PATCH", "/subcloud-backup/restore", json={"subcloud": unmanaged, "sysadmin_password": SYSADMIN,
                                                              "with_install": "true"}),
         "does not contain install values"),
        (fleet.call("PATCH", "/subcloud-backup/delete/24.09", json={"subcloud": unmanaged, "local_only": "true",
                                                                   "sysadmin_password": SYSADMIN}),
         "must be online and managed"),
        (fleet.call("PATCH", "/subcloud-backup/delete/not-a-release", json={"subcloud": unmanaged}),
         "is not a release"),
    ]
    for response, words in cases:
        assert response.status_code == 400, (words, response.status_code, response.text)
        message = refusal(response)
        assert words in message and "Traceback" not in message, (words, message)
    assert fleet.call("POST", "/subcloud-backup", json={"group": "no-such-group",
                                                        "sysadmin_password": SYSADMIN}).status_code == 404
    busy = "sim-00010"
    fleet.fault(busy, phase_seconds=30)
    assert create(fleet, subcloud=busy).status_code == 200
    reaches(fleet, busy, "backing-up")
    again = create(fleet, subcloud=busy)
    assert again.status_code == 400 and "backup_status is 'backing-up'" in refusal(again)


def dcman(fleet: Fleet, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DCMAN_URL": fleet.site.url, "DCMAN_USER": fleet.site.admin_user,
           "DCMAN_PASSWORD": fleet.site.admin_password}
    return subprocess.run([DCMAN_BIN, *args], env=env, capture_output=True, text=True, timeout=60)


def test_the_cli_backs_up_restores_and_deletes_and_says_why_a_backup_failed(fleet):
    sqlite_only(fleet)
    name, broken = "sim-00012", "sim-00013"
    created = dcman(fleet, "subcloud-backup", "create", "--subcloud", name, "--sysadmin-password", "St8rlingX*",
                    "--wait", "-f", "json")
    assert created.returncode == 0, created.stderr
    assert [s["backup-status"] for s in json.loads(created.stdout)] == ["complete-central"]
    assert f"{name}: complete-central" in created.stderr
    assert_central_backup(fleet, name, MIB)

    fleet.fault(broken, fail_phase="backup")
    failed = dcman(fleet, "subcloud-backup", "create", "--subcloud", broken, "--sysadmin-password", "St8rlingX*",
                   "--wait")
    assert failed.returncode == 1 and "simulated failure" in failed.stderr, failed.stderr
    refused = dcman(fleet, "subcloud-backup", "create", "--subcloud", name, "--group", "Default",
                    "--sysadmin-password", "x")
    assert refused.returncode == 2 and "exactly one of --subcloud and --group" in refused.stderr

    assert fleet.call("PATCH", f"/subclouds/{name}", json={"management-state": "unmanaged"}).status_code == 200
    restored = dcman(fleet, "subcloud-backup", "restore", "--subcloud", name, "--sysadmin-password", "St8rlingX*",
                     "--wait")
    assert restored.returncode == 0, restored.stderr
    assert f"{name}: restoring" in restored.stderr or f"{name}: pre-restore" in restored.stderr
    assert fleet.subcloud(name)["deploy-status"] == "complete"

    deleted = dcman(fleet, "subcloud-backup", "delete", "24.09", "--subcloud", name)
    assert deleted.returncode == 0 and "Deleted the backups of release 24.09" in deleted.stderr, deleted.stderr
    assert not central_file(fleet, fleet.subcloud(name)).exists()
    again = dcman(fleet, "subcloud-backup", "delete", "24.09", "--subcloud", name)
    assert again.returncode == 1 and "Failed to run subcloud-backup delete" in again.stderr, again.stderr


def test_a_site_killed_while_validating_a_backup_shows_validate_failed_and_it_runs_again(fleet):
    name = "sim-00001"  # backed up centrally by the first test
    fleet.fault(name, status_seconds=8, backup_mb=1)  # the backup's check of the subcloud waits on its status answer
    assert create(fleet, subcloud=name).status_code == 200
    reaches(fleet, name, "validating")
    fleet.site.process.send_signal(signal.SIGKILL)
    fleet.site.process.wait()
    fleet.fault(name, status_seconds=0)
    fleet.site = restart_site_process(fleet.site)
    fleet.token = token_for(fleet.site)
    shown = reaches(fleet, name, "validate-failed")
    assert shown["error-description"] == "The site restarted while the subcloud's backup was validating."
    reaches(fleet, name, "online", field="availability-status")
    assert create(fleet, subcloud=name).status_code == 200
    reaches(fleet, name, "complete-central")
    assert_central_backup(fleet, name, MIB)


def test_a_site_killed_while_backing_up_and_restoring_shows_the_failures_and_both_run_again(fleet):
    backing_up, restoring = "sim-00011", "sim-00005"  # sim-00005 holds a central backup by now
    assert fleet.call("PATCH", f"/subclouds/{restoring}", json={"management-state": "unmanaged"}).status_code == 200
    for name in (backing_up, restoring):
        fleet.fault(name, phase_seconds=6)  # each rerun adopts the phase its subcloud still runs
    assert create(fleet, subcloud=backing_up).status_code == 200
    assert fleet.call("PATCH", "/subcloud-backup/restore",
                      json={"subcloud": restoring, "sysadmin_password": SYSADMIN}).status_code == 200
    # Both at once: waiting for one then the other could let the second's phase end meanwhile.
    wait_until(lambda: fleet.subcloud(backing_up)["backup-status"] == "backing-up"
               and fleet.subcloud(restoring)["deploy-status"] == "restoring", timeout=20)
    fleet.site.process.send_signal(signal.SIGKILL)
    fleet.site.process.wait()
    fleet.site = restart_site_process(fleet.site)
    fleet.token = token_for(fleet.site)
    assert "restarted" in reaches(fleet, backing_up, "failed")["error-description"]
    assert "restarted" in reaches(fleet, restoring, "restore-failed", field="deploy-status")["error-description"]
    assert create(fleet, subcloud=backing_up).status_code == 200
    assert fleet.call("PATCH", "/subcloud-backup/restore",
                      json={"subcloud": restoring, "sysadmin_password": SYSADMIN}).status_code == 200
    reaches(fleet, backing_up, "complete-central")
    reaches(fleet, restoring, "complete", field="deploy-status")
