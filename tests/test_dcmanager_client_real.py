"""The real StarlingX `dcmanager` client against a real site and simulator: every command dcman
covers, in table, json, value and yaml output, checking exit codes and the values shown.

The client is not on PyPI and is never part of this repository: build it from the public
source of starlingx/distcloud-client into a virtual environment of your own (README, "Pointing the
dcmanager client at a site") and name its executable in DCMANAGER_CLI. Without it the test is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import ADMIN_PASSWORD, ADMIN_USER, add_form
from simfleet import Fleet, running_fleet, wait_until

CLI = os.environ.get("DCMANAGER_CLI", "")
pytestmark = pytest.mark.skipif(
    not CLI, reason="DCMANAGER_CLI does not name the dcmanager client's executable (it is not on PyPI; "
                    "README: 'Pointing the dcmanager client at a site'), so the real-client test is skipped")

FORMATS = ("table", "json", "value", "yaml")
SYSADMIN = "St8rlingX*"
INSTALL_VALUES = ("bootstrap_interface: eno1\nbootstrap_address: 10.10.0.2\nbootstrap_address_prefix: 16\n"
                  "install_type: 0\nbmc_username: root\nbmc_address: 10.20.0.2\nsoftware_version: \"24.09\"\n")
DEPLOY_CONFIG = "deployment: {profile: edge}\n"


# --- reading what the client prints ------------------------------------------------------------


def parse(stdout: str, fmt: str) -> Any:
    """json/yaml: the data; table: a {Field: Value} dict (one object) or a list of row dicts;
    value: the printed lines."""
    if fmt == "json":
        return json.loads(stdout)
    if fmt == "yaml":
        return yaml.safe_load(stdout)
    if fmt == "value":
        return [line.strip() for line in stdout.splitlines() if line.strip()]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in stdout.splitlines() if line.startswith("|")]
    header, body = rows[0], rows[1:]
    if header == ["Field", "Value"]:
        return {field: value for field, value in body}
    return [dict(zip(header, row)) for row in body]


def text(value: Any) -> str:
    return "None" if value is None else str(value)


def check_one(shown: Any, fmt: str, expected: dict[str, Any]) -> None:
    """One object shows these field values (value output: each value is one printed line)."""
    if fmt == "value":
        missing = [text(v) for v in expected.values() if text(v) not in shown]
        assert not missing, (missing, shown)
        return
    got = {k: text(shown.get(k)) for k in expected}
    assert got == {k: text(v) for k, v in expected.items()}, (fmt, shown)


def check_rows(shown: Any, fmt: str, column: str, values: set[str]) -> None:
    """A list shows these values in this column (value output: as a word of a line)."""
    if fmt == "value":
        words = {word for line in shown for word in line.split()}
        assert values <= words, (values, shown)
        return
    assert values <= {text(row.get(column)) for row in shown}, (column, values, shown)


# --- the client ----------------------------------------------------------------------------------


@dataclass
class Client:
    fleet: Fleet
    env: dict[str, str]
    files: Path

    def run(self, *args: str, fmt: str | None = None, ok: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        command = [CLI, *args, *(("-f", fmt) if fmt else ())]
        done = subprocess.run(command, env=env or self.env, capture_output=True, text=True, timeout=180)
        if ok:
            assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def shown(self, *args: str, fmt: str) -> Any:
        return parse(self.run(*args, fmt=fmt).stdout, fmt)

    def every_format(self, args: tuple[str, ...], check: Callable[[Any, str], None]) -> None:
        """A read-only command in the four formats at once."""
        with ThreadPoolExecutor(4) as pool:
            shown = dict(zip(FORMATS, pool.map(lambda fmt: self.shown(*args, fmt=fmt), FORMATS)))
        for fmt in FORMATS:
            check(shown[fmt], fmt)

    def file(self, name: str, content: str) -> str:
        path = self.files / name
        path.write_text(content)
        return str(path)

    def values(self, name: str, **extra: Any) -> str:
        return self.file(f"{name}.yaml", yaml.safe_dump({**self.fleet.bootstrap_values(name), **extra}))

    def status(self, name: str) -> str:
        return self.fleet.subcloud(name)["deploy-status"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    work = tmp_path_factory.mktemp("client-real")
    with running_fleet(work, 25, interval=0.5) as fleet:
        # An operator's openrc; no keyring cache, so no token outlives this site.
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "OS_AUTH_URL": fleet.site.url + "/v3",
               "OS_USERNAME": ADMIN_USER, "OS_PASSWORD": ADMIN_PASSWORD, "OS_PROJECT_NAME": "admin",
               "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default", "DCCLIENT_NO_CACHE": "1"}
        yield Client(fleet, env, work)


def sim(n: int) -> str:
    return f"sim-{n:05d}"


# --- subclouds, groups, alarms ---------------------------------------------------------------


def test_subcloud_and_group_commands_in_every_format(client: Client) -> None:
    c, fleet = client, client.fleet
    for i, fmt in enumerate(FORMATS, start=1):
        group = c.shown("subcloud-group add", "--name", f"G{i}", "--description", f"group {i}",
                        "--max_parallel_subclouds", "3", fmt=fmt)
        check_one(group, fmt, {"name": f"G{i}", "description": f"group {i}", "max parallel subclouds": 3})
        # description and location come in the values file: the client has no options for them.
        added = c.shown("subcloud", "add", "--bootstrap-address", f"10.10.0.{i + 1}", "--bootstrap-values",
                        c.values(sim(i), description=f"Site {i}", location=f"L{i}"),
                        "--sysadmin-password", SYSADMIN, "--group", f"G{i}", fmt=fmt)
        check_one(added, fmt, {"name": sim(i), "description": f"Site {i}", "location": f"L{i}",
                               "deploy_status": "not-deployed"})
    for i in range(1, 5):
        wait_until(lambda i=i: c.status(sim(i)) == "complete", timeout=60)
        wait_until(lambda i=i: fleet.subcloud(sim(i))["availability-status"] == "online", timeout=60)
    names = {sim(i) for i in range(1, 5)}

    c.every_format(("subcloud", "list"), lambda shown, fmt: check_rows(shown, fmt, "name", names))
    c.every_format(("subcloud", "list", "--detail"), lambda shown, fmt: check_rows(shown, fmt, "location", {"L1"}))
    region, group_id = fleet.subcloud(sim(1))["region-name"], fleet.subcloud(sim(1))["group_id"]
    c.every_format(("subcloud", "show", sim(1)), lambda shown, fmt: check_one(
        shown, fmt, {"name": sim(1), "availability": "online", "region_name": region, "group_id": group_id}))
    oam = fleet.bootstrap_values(sim(1))["external_oam_floating_address"]
    c.every_format(("subcloud", "show", sim(1), "--detail"), lambda shown, fmt: check_one(
        shown, fmt, {"name": sim(1), "oam_floating_ip": oam, "region_name": region,
                     "platform_sync_status": fleet.subcloud(sim(1))["endpoint_sync_status"][0]["sync_status"]}))
    assert c.run("subcloud", "errors", sim(1)).stdout.strip() == "No errors present"

    for fmt in FORMATS:
        check_one(c.shown("subcloud", "manage", sim(1), fmt=fmt), fmt, {"management": "managed"})
        check_one(c.shown("subcloud", "unmanage", sim(1), fmt=fmt), fmt, {"management": "unmanaged"})
        check_one(c.shown("subcloud", "update", sim(1), "--description", f"desc {fmt}", "--location", f"loc-{fmt}",
                          fmt=fmt), fmt, {"description": f"desc {fmt}", "location": f"loc-{fmt}"})

    for i, fmt in enumerate(FORMATS, start=1):
        check_one(c.shown("subcloud-group", "update", f"G{i}", "--description", f"updated {fmt}", fmt=fmt), fmt,
                  {"description": f"updated {fmt}"})
    c.every_format(("subcloud-group", "list"), lambda shown, fmt: check_rows(
        shown, fmt, "name", {"Default", "G1", "G2", "G3", "G4"}))
    c.every_format(("subcloud-group", "show", "G2"), lambda shown, fmt: check_one(
        shown, fmt, {"name": "G2", "description": "updated json"}))
    # A group with a subcloud: the client's columns are fixed, every row must fit them.
    c.every_format(("subcloud-group", "list-subclouds", "G1"), lambda shown, fmt: check_rows(
        shown, fmt, "name", {sim(1)}))
    c.every_format(("alarm", "summary"), lambda shown, fmt: check_rows(shown, fmt, "NAME", names))

    # Redeploy wants the subcloud offline and unmanaged: its status answers (the audit's probe)
    # are made too slow, while its deploy phases still answer.
    for i, fmt in enumerate(FORMATS, start=1):
        fleet.fault(sim(i), status_seconds=5.0)
    for i in range(1, 5):
        wait_until(lambda i=i: fleet.subcloud(sim(i))["availability-status"] == "offline", timeout=60)
    for i, fmt in enumerate(FORMATS, start=1):
        redeployed = c.shown("subcloud", "redeploy", sim(i), "--yes", "--sysadmin-password", SYSADMIN,
                             "--bmc-password", "bmc-secret", "--install-values",
                             c.file(f"install{i}.yaml", INSTALL_VALUES), fmt=fmt)
        check_one(redeployed, fmt, {"name": sim(i), "deploy_status": "pre-install"})
        fleet.fault(sim(i), status_seconds=0.0)
    for i in range(1, 5):
        wait_until(lambda i=i: c.status(sim(i)) == "complete", timeout=90)

    spare = c.shown("subcloud-group", "add", "--name", "Spare", fmt="json")
    c.run("subcloud-group", "delete", "--yes", str(spare["id"]))
    assert c.run("subcloud-group", "show", "Spare", ok=False).returncode == 1


def test_phased_deploy_commands_in_every_format(client: Client) -> None:
    c, fleet = client, client.fleet
    lanes = {fmt: sim(5 + i) for i, fmt in enumerate(FORMATS)}       # create, bootstrap, complete, config
    aborted = {fmt: sim(9 + i) for i, fmt in enumerate(FORMATS)}     # create, install, abort, resume
    for fmt in FORMATS:
        for name in (lanes[fmt], aborted[fmt]):
            created = c.shown("subcloud", "deploy", "create", "--bootstrap-address", "10.10.0.30",
                              "--bootstrap-values", c.values(name), fmt=fmt)
            check_one(created, fmt, {"name": name})
    for name in (*lanes.values(), *aborted.values()):
        wait_until(lambda name=name: c.status(name) == "create-complete", timeout=60)

    for fmt, name in lanes.items():
        check_one(c.shown("subcloud", "deploy", "bootstrap", name, "--bootstrap-address", "10.10.0.30",
                          "--bootstrap-values", c.values(name), "--sysadmin-password", SYSADMIN, fmt=fmt),
                  fmt, {"name": name})
    for fmt, name in lanes.items():
        wait_until(lambda name=name: c.status(name) == "bootstrap-complete", timeout=60)
        check_one(c.shown("subcloud", "deploy", "complete", name, fmt=fmt), fmt, {"deploy_status": "complete"})
        check_one(c.shown("subcloud", "deploy", "config", name, "--yes", "--sysadmin-password", SYSADMIN,
                          "--deploy-config", c.file(f"config-{fmt}.yaml", DEPLOY_CONFIG), fmt=fmt),
                  fmt, {"name": name})
    for name in lanes.values():
        wait_until(lambda name=name: c.status(name) == "complete", timeout=60)

    for fmt, name in aborted.items():
        fleet.fault(name, phase_seconds=30.0)
        c.shown("subcloud", "deploy", "install", name, "--sysadmin-password", SYSADMIN, "--bmc-password",
                "bmc-secret", "--install-values", c.file(f"install-{fmt}.yaml", INSTALL_VALUES), fmt=fmt)
        wait_until(lambda name=name: c.status(name) == "installing", timeout=30)
        check_one(c.shown("subcloud", "deploy", "abort", name, fmt=fmt), fmt, {"deploy_status": "aborting-install"})
    for fmt, name in aborted.items():
        wait_until(lambda name=name: c.status(name) == "install-aborted", timeout=60)
        fleet.fault(name, phase_seconds=0.2)
        check_one(c.shown("subcloud", "deploy", "resume", name, "--sysadmin-password", SYSADMIN, fmt=fmt),
                  fmt, {"deploy_status": "pre-install"})

    # A created subcloud that never ran a phase is offline and unmanaged: it can be deleted.
    c.run("subcloud", "deploy", "create", "--bootstrap-address", "10.10.0.31", "--bootstrap-values",
          c.values(sim(13)))
    wait_until(lambda: c.status(sim(13)) == "create-complete", timeout=60)
    c.run("subcloud", "delete", "--yes", sim(13))
    gone = c.run("subcloud", "show", sim(13), ok=False)
    assert gone.returncode == 1
    assert f"The resource could not be found.\nDetails: Subcloud {sim(13)} not found." in gone.stderr


# --- geo-redundancy ------------------------------------------------------------------------


def test_geo_redundancy_commands_in_every_format(client: Client) -> None:
    c, fleet = client, client.fleet
    peers = {fmt: str(uuid.uuid4()) for fmt in FORMATS}
    for i, fmt in enumerate(FORMATS):
        added = c.shown("system-peer", "add", "--peer-uuid", peers[fmt], "--peer-name", f"peer-{fmt}",
                        "--manager-endpoint", f"http://127.0.0.{i + 2}:9/v3", "--peer-controller-gateway-address",
                        "127.0.0.1", "--manager-username", "admin", "--manager-password", "peer-password",
                        "--heartbeat-interval", "10", fmt=fmt)
        check_one(added, fmt, {"peer name": f"peer-{fmt}", "heartbeat interval": 10})
        check_one(c.shown("system-peer", "update", peers[fmt], "--heartbeat-interval", "20", fmt=fmt), fmt,
                  {"heartbeat interval": 20})
        group = c.shown("subcloud-peer-group", "add", "--peer-group-name", f"pg-{fmt}", "--max-subcloud-rehoming",
                        "10", fmt=fmt)
        check_one(group, fmt, {"peer_group_name": f"pg-{fmt}"})
        check_one(c.shown("subcloud-peer-group", "update", f"pg-{fmt}", "--max-subcloud-rehoming", "5", fmt=fmt),
                  fmt, {"max_subcloud_rehoming": 5})
    c.every_format(("system-peer", "list"), lambda shown, fmt: check_rows(
        shown, fmt, "peer uuid", set(peers.values())))
    c.every_format(("system-peer", "show", peers["json"]), lambda shown, fmt: check_one(
        shown, fmt, {"peer uuid": peers["json"], "peer name": "peer-json"}))
    c.every_format(("subcloud-peer-group", "list"), lambda shown, fmt: check_rows(
        shown, fmt, "peer_group_name", {f"pg-{f}" for f in FORMATS}))
    c.every_format(("subcloud-peer-group", "show", "pg-yaml"), lambda shown, fmt: check_one(
        shown, fmt, {"peer_group_name": "pg-yaml", "max_subcloud_rehoming": 5}))

    pg_ids = {fmt: fleet.call("GET", f"/subcloud-peer-groups/pg-{fmt}").json()["id"] for fmt in FORMATS}
    peer_ids = {fmt: fleet.call("GET", f"/system-peers/{peers[fmt]}").json()["id"] for fmt in FORMATS}
    associations = {}
    for fmt in FORMATS:
        added = c.shown("peer-group-association", "add", "--peer-group-id", str(pg_ids[fmt]), "--system-peer-id",
                        str(peer_ids[fmt]), "--peer-group-priority", "2", fmt=fmt)
        check_one(added, fmt, {"peer_group_priority": 2})
        associations[fmt] = str(fleet.call("GET", "/peer-group-associations").json()[
            "peer_group_associations"][-1]["id"])
        check_one(c.shown("peer-group-association", "update", associations[fmt], "--peer-group-priority", "3",
                          fmt=fmt), fmt, {"peer_group_priority": 3})
        check_one(c.shown("peer-group-association", "sync", associations[fmt], fmt=fmt), fmt,
                  {"id": associations[fmt]})
    c.every_format(("peer-group-association", "list"), lambda shown, fmt: check_rows(
        shown, fmt, "id", set(associations.values())))
    c.every_format(("peer-group-association", "show", associations["table"]), lambda shown, fmt: check_one(
        shown, fmt, {"id": associations["table"], "peer_group_priority": 3}))
    c.every_format(("system-peer", "list-subcloud-peer-groups", peers["value"]), lambda shown, fmt: check_rows(
        shown, fmt, "peer_group_name", {"pg-value"}))
    for fmt in FORMATS:
        c.run("peer-group-association", "delete", "--yes", associations[fmt])
        c.run("system-peer", "delete", "--yes", peers[fmt])

    # Each group gets a secondary copy (as a peer site's sync makes it), then is migrated here.
    members = {fmt: sim(14 + i) for i, fmt in enumerate(FORMATS)}
    for fmt, name in members.items():
        data, files = add_form(name, fleet.bootstrap_values(name), secondary="true", region_name=uuid.uuid4().hex)
        data.pop("sysadmin_password")
        headers = {"X-Auth-Token": fleet.token, "User-Agent": "dcmanager/1.0"}
        url = fleet.site.url + "/v1.0/subclouds"
        assert requests.post(url, data=data, files=files, headers=headers, timeout=10).status_code == 200
        joined = requests.patch(f"{url}/{name}", json={"peer_group": f"pg-{fmt}"}, headers=headers, timeout=10)
        assert joined.status_code == 200, joined.text
    for fmt, name in members.items():
        c.every_format(("subcloud-peer-group", "list-subclouds", f"pg-{fmt}"), lambda shown, f: check_rows(
            shown, f, "name", {name}))
        c.every_format(("subcloud-peer-group", "status", f"pg-{fmt}"), lambda shown, f: check_one(
            shown, f, {"peer_group_name": f"pg-{fmt}", "total_subclouds": 1}))
    for fmt, name in members.items():
        # The migration starts and the command shows it, in every format (not a "Row has
        # incorrect number of values" after the migration began).
        migrating = c.shown("subcloud-peer-group", "migrate", f"pg-{fmt}", "--sysadmin-password", SYSADMIN,
                            fmt=fmt)
        check_rows(migrating, fmt, "name", {name})
    for name in members.values():
        wait_until(lambda name=name: c.status(name) == "complete", timeout=90)
    for fmt, name in members.items():
        c.run("subcloud", "update", name, "--peer-group", "none")
        c.run("subcloud-peer-group", "delete", "--yes", f"pg-{fmt}")
    assert c.run("subcloud-peer-group", "show", "pg-json", ok=False).returncode == 1


# --- authentication and errors ---------------------------------------------------------------


def test_the_openrc_forms_and_what_a_refusal_says(client: Client) -> None:
    c, site = client, client.fleet.site.url
    token_env = {k: v for k, v in c.env.items() if k not in ("OS_USERNAME", "OS_PASSWORD")}
    listed = c.run("--os-auth-token", c.fleet.token, "subcloud", "list", fmt="json", env=token_env)
    assert json.loads(listed.stdout) is not None
    wrong = c.run("subcloud", "list", ok=False, env={**c.env, "OS_PASSWORD": "not-the-password"})
    assert wrong.returncode == 1 and "The user name or password is wrong." in wrong.stderr, wrong.stderr
    assert "Unrecognized schema" not in wrong.stderr
    expired = c.run("--os-auth-token", "no-such-token", "subcloud", "list", ok=False, env=token_env)
    assert expired.returncode == 1 and "token" in expired.stderr and "Unrecognized" not in expired.stderr
    missing = c.run("subcloud", "show", "no-such-subcloud", ok=False)
    assert missing.returncode == 1
    assert "The resource could not be found.\nDetails: Subcloud no-such-subcloud not found." in missing.stderr
    assert site  # the URL the env names


@pytest.mark.parametrize("args, feature", [
    (("subcloud", "deploy", "show"), "Subcloud deploy"),
    (("sw-deploy-strategy", "show"), "Orchestration strategies"),
    (("kube-upgrade-strategy", "create"), "Orchestration strategies"),
    (("kube-rootca-update-strategy", "show"), "Orchestration strategies"),
    (("fw-update-strategy", "show"), "Orchestration strategies"),
    (("prestage-strategy", "show"), "Orchestration strategies"),
    (("strategy-step", "list"), "Orchestration strategy steps"),
    (("strategy-config", "list"), "Orchestration options"),
])
def test_what_dcman_does_not_serve_says_so(client: Client, args: tuple[str, ...], feature: str) -> None:
    refused = client.run(*args, ok=False)
    assert refused.returncode == 1
    assert "not implemented by dcman" in refused.stderr and feature in refused.stderr, refused.stderr


# --- backup, restore, prestage, network reconfiguration ------------------------------------------


def test_backup_restore_prestage_and_readdressing_commands_in_every_format(client: Client) -> None:
    c, fleet = client, client.fleet
    names = {fmt: sim(18 + i) for i, fmt in enumerate(FORMATS)}
    for name in names.values():
        fleet.deployed(name)
    for name in names.values():
        c.run("subcloud", "manage", name)
    for fmt, name in names.items():
        created = c.shown("subcloud-backup", "create", "--subcloud", name, "--sysadmin-password", SYSADMIN,
                          fmt=fmt)
        check_one(created, fmt, {"name": name, "backup_status": "initial"})
    for name in names.values():
        wait_until(lambda name=name: fleet.subcloud(name)["backup-status"] == "complete-central", timeout=60)
    c.every_format(("subcloud", "show", names["table"], "--detail"), lambda shown, fmt: check_one(
        shown, fmt, {"name": names["table"], "backup_status": "complete-central"}))

    # Prestage wants a managed, online subcloud; it shows the subcloud it started.
    for fmt, name in names.items():
        prestaged = c.shown("subcloud", "prestage", name, "--sysadmin-password", SYSADMIN, "--release", "24.09",
                            fmt=fmt)
        check_one(prestaged, fmt, {"name": name, "prestage_status": "prestaging-packages",
                                   "prestage_software_version": "24.09"})
    for name in names.values():
        wait_until(lambda name=name: fleet.subcloud(name)["prestage-status"] == "complete", timeout=60)

    # Restore and readdressing want it unmanaged.
    for name in names.values():
        c.run("subcloud", "unmanage", name)
    for fmt, name in names.items():
        restored = c.shown("subcloud-backup", "restore", "--subcloud", name, "--sysadmin-password", SYSADMIN,
                           fmt=fmt)
        check_one(restored, fmt, {"name": name, "deploy_status": "pre-restore"})
    for name in names.values():
        wait_until(lambda name=name: c.status(name) == "complete", timeout=60)
    for block, (fmt, name) in enumerate(names.items(), start=40):
        base = f"127.200.{block}."
        moved = c.shown("subcloud", "update", name, "--management-subnet", base + "0/29",
                        "--management-gateway-ip", base + "1", "--management-start-ip", base + "2",
                        "--management-end-ip", base + "6", "--bootstrap-address", "10.10.0.3",
                        "--sysadmin-password", SYSADMIN, "--yes", fmt=fmt)
        check_one(moved, fmt, {"name": name, "deploy_status": "reconfiguring-network"})
    for block, name in enumerate(names.values(), start=40):
        wait_until(lambda name=name: c.status(name) == "complete", timeout=60)
        assert fleet.subcloud(name)["management-start-ip"] == f"127.200.{block}.2"

    for fmt, name in names.items():
        c.run("subcloud-backup", "delete", "24.09", "--subcloud", name)
        wait_until(lambda name=name: fleet.subcloud(name)["backup-status"] in ("unknown", None), timeout=30)


# --- adoption (add --migrate) ----------------------------------------------------------------------


def sim_item(fleet: Fleet, name: str) -> dict[str, Any]:
    return requests.get(f"{fleet.control}/sim/subclouds/{name}", timeout=10).json()


def test_adoption_with_add_migrate_in_every_format(client: Client) -> None:
    """`subcloud add --migrate --name`: a subcloud another system controller deployed is
    rehomed here, shown at pre-rehome, and ends complete and online, answering to this site."""
    c, fleet = client, client.fleet
    names = {fmt: sim(22 + i) for i, fmt in enumerate(FORMATS)}
    port = fleet.site_env["DCMAN_SUBCLOUD_AGENT_PORT"]
    for name in names.values():  # deployed by another system controller, over the agent protocol
        address = sim_item(fleet, name)["management_start_ip"]
        started = requests.post(f"http://{address}:{port}/v1/phases/bootstrap", json={"system_controller": "other-site"},
                                auth=("sysadmin", SYSADMIN), timeout=10)
        assert started.status_code == 202, started.text
    for name in names.values():
        wait_until(lambda name=name: sim_item(fleet, name)["system_controller"] == "other-site", timeout=30)
    for fmt, name in names.items():
        added = c.shown("subcloud", "add", "--migrate", "--name", name, "--bootstrap-address", "10.10.0.2",
                        "--bootstrap-values", c.values(name), "--sysadmin-password", SYSADMIN, fmt=fmt)
        check_one(added, fmt, {"name": name, "deploy_status": "pre-rehome", "management": "unmanaged"})
    ours = fleet.call("GET", "/system").json()["uuid"]
    for name in names.values():
        wait_until(lambda name=name: c.status(name) == "complete", timeout=60)
        wait_until(lambda name=name: fleet.subcloud(name)["availability-status"] == "online", timeout=60)
        assert sim_item(fleet, name)["system_controller"] == ours
    c.every_format(("subcloud", "show", names["json"]), lambda shown, fmt: check_one(
        shown, fmt, {"name": names["json"], "deploy_status": "complete", "availability": "online"}))
    # The client's own refusal of --name without --migrate, and the site's of a name unlike the file's.
    alone = c.run("subcloud", "add", "--name", "other", "--bootstrap-address", "10.10.0.2", "--bootstrap-values",
                  c.values(sim(22)), "--sysadmin-password", SYSADMIN, ok=False)
    assert alone.returncode == 1 and "--name option can only be used with" in alone.stderr, alone.stderr
    unlike = c.run("subcloud", "add", "--migrate", "--name", "other", "--bootstrap-address", "10.10.0.2",
                   "--bootstrap-values", c.values(sim(22)), "--sysadmin-password", SYSADMIN, ok=False)
    assert unlike.returncode == 1 and "subcloud name does not match the name defined in bootstrap file" in \
        unlike.stderr, unlike.stderr
