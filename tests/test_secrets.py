"""Secrets never shown (issue 13 item 2): a real site and simulator get subclouds whose bootstrap
values, install values, deploy config and rehome data hide secrets at several depths. Then every
GET route of /openapi.json, the dashboard's sources and /metrics are read as a reader and as an
admin, and the site's log and database are searched: no secret appears anywhere, while a real
agent gets every secret back in its phase payloads."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import (DCMAN, READER_PASSWORD, READER_USER, add_form, free_port, start_site_process,
                      stop_site_process, token_for)
from simfleet import Fleet, running_fleet, wait_until

SYSADMIN = "St8rlingX*"  # add_form's sysadmin password, which the simulator accepts
BMC_PASSWORD = "Bmc-top-secret-1"
NESTED = {
    "admin_password": "Adm1n-top-secret-2",
    "docker_registries": {"k8s.gcr.io": {"url": "registry.local:9001", "username": "admin",
                                         "password": "Reg-nested-secret-3"}},
    "users": [{"name": "ops", "api_token": "Tok-in-a-list-secret-4"}],
    "ssh_private_key": "-----BEGIN PRIVATE KEY----- Pk-material-secret-5",
    "ssh_public_key": "ssh-ed25519 AAAA-public-not-secret",
}
INSTALL = {
    "bootstrap_interface": "enp0s3", "bootstrap_address": "10.10.10.12", "bootstrap_address_prefix": 24,
    "install_type": 3, "bmc_username": "root", "bmc_address": "128.224.64.180",
    "bmc_password": base64.b64encode(BMC_PASSWORD.encode()).decode(), "persistent_size": 30000,
    "nexthop_gateway": "10.10.10.1", "network_address": "128.224.0.0", "network_mask": 16,
    "boot_device": "/dev/disk/by-path/pci-0000:00:1f.2-ata-1.0", "software_version": "24.09",
    "extra": {"BMC_Password": "Bmc-mixed-case-secret-6"},
    "ipmi": [{"user": "ipmi", "Secret": "Ipmi-list-secret-7"}],
}
CONFIG = {
    "platform": {"ldap": {"uri": "ldap://dir", "bind_password": "Ldap-nested-secret-8"}},
    "hosts": [{"name": "controller-0", "bm_passwd": "Bm-list-secret-9"}],
    "Api_Token": "Cfg-token-secret-10",
}
UPDATED = {"registry": {"auth": {"Password": "Update-nested-secret-11"}}}
PEER_PASSWORD = "Peer-manager-secret-12"
SECRETS = [SYSADMIN, BMC_PASSWORD, PEER_PASSWORD, *re.findall(r"[A-Z][a-z0-9-]*-secret-\d+",
                                                             json.dumps([NESTED, INSTALL, CONFIG, UPDATED]))]
# As they travel: base64 for the passwords of the API, in case an encoded copy leaks.
ENCODED = [base64.b64encode(s.encode()).decode() for s in (SYSADMIN, BMC_PASSWORD, PEER_PASSWORD)]


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS + ENCODED if secret in text]


def _form(name: str, values: dict) -> tuple[dict, dict]:
    data, files = add_form(name, {**values, **NESTED}, install_values=yaml.safe_dump(INSTALL),
                           deploy_config=yaml.safe_dump(CONFIG))
    return data, files


def _start_agent(work: Path, port: int) -> subprocess.Popen:
    """A real agent at 127.3.0.2 whose phases record their payload, so the test sees what it gets."""
    commands = [arg for phase in ("install", "bootstrap", "config")
                for arg in ("--phase-command", f"{phase}=cat > {work}/{phase}.json")]
    agent = subprocess.Popen([DCMAN, "agent", "--bind", f"127.3.0.2:{port}", "--name", "edge-secrets", *commands],
                             env={**os.environ, "DCMAN_AGENT_PASSWORD": SYSADMIN},
                             stdout=(work / "agent.log").open("wb"), stderr=subprocess.STDOUT)

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.3.0.2:{port}/v1/status", timeout=1).status_code == 401
        except httpx.HTTPError:
            return False

    wait_until(answers)
    return agent


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """sim-00001 deployed through the simulator, managed and in a peer group with an association,
    with secrets hidden in every document it was given."""
    work = tmp_path_factory.mktemp("secrets-sim")
    with running_fleet(work, count=1, interval=1.0) as fleet:
        data, files = _form("sim-00001", fleet.bootstrap_values("sim-00001"))
        assert fleet.call("POST", "/subclouds", data=data, files=files).status_code == 200
        wait_until(lambda: fleet.subcloud("sim-00001")["deploy-status"] == "complete", timeout=60)
        wait_until(lambda: fleet.subcloud("sim-00001")["availability-status"] == "online", timeout=40)
        assert fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 200
        group = fleet.call("POST", "/subcloud-peer-groups", json={"peer-group-name": "pg-secrets"}).json()
        joined = fleet.call("PATCH", "/subclouds/sim-00001", json={"peer_group": str(group["id"])})
        assert joined.status_code == 200, joined.text
        updated = fleet.call("PATCH", "/subclouds/sim-00001", json={"bootstrap_values": {
            **fleet.bootstrap_values("sim-00001"), **NESTED, **UPDATED}})
        assert updated.status_code == 200, updated.text
        peer = fleet.call("POST", "/system-peers", json={
            "peer_uuid": "6f2a8cbe-0d5e-4f3e-9a57-3d4c8b1e2f10", "peer_name": "far-site",
            "manager_endpoint": f"http://127.0.0.1:{free_port()}/v3", "manager_username": "admin",
            "manager_password": base64.b64encode(PEER_PASSWORD.encode()).decode(),
            "peer_controller_gateway_address": "127.0.0.1"})
        assert peer.status_code == 200, peer.text
        associated = fleet.call("POST", "/peer-group-associations", json={
            "peer_group_id": group["id"], "system_peer_id": peer.json()["id"], "peer_group_priority": 2})
        assert associated.status_code == 200, associated.text
        assert fleet.call("PATCH", f"/peer-group-associations/{associated.json()['id']}/sync").status_code < 500
        yield fleet


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """edge-secrets, deployed by a site of its own through a real agent (the simulator holds the
    agent port of the first site on every address) whose phases record what they get."""
    work = tmp_path_factory.mktemp("secrets-agent")
    port = free_port()
    agent = _start_agent(work, port)
    try:
        site = start_site_process(work / "site", {"DCMAN_SUBCLOUD_AGENT_PORT": str(port),
                                                  "DCMAN_SUBCLOUD_AGENT_SCHEME": "http", "DCMAN_AUDIT_INTERVAL": "1"})
        try:
            fleet = Fleet(site, token_for(site), "", {})
            values = {"name": "edge-secrets", "system_mode": "simplex", "management_subnet": "127.3.0.0/29",
                      "management_gateway_address": "127.3.0.1", "management_start_address": "127.3.0.2",
                      "management_end_address": "127.3.0.6", "systemcontroller_gateway_address": "127.0.0.1",
                      "external_oam_subnet": "10.20.0.0/16", "external_oam_gateway_address": "10.20.0.1",
                      "external_oam_floating_address": "10.20.0.2"}
            data, files = _form("edge-secrets", values)
            added = fleet.call("POST", "/subclouds", data=data, files=files)
            assert added.status_code == 200, added.text
            wait_until(lambda: fleet.subcloud("edge-secrets")["deploy-status"] == "complete", timeout=60)
            fleet.work = work
            yield fleet
        finally:
            stop_site_process(site)
    finally:
        agent.terminate()
        agent.wait(timeout=10)


@pytest.fixture(scope="module", params=["simulator", "agent"])
def deployed(request):
    return request.getfixturevalue("fleet" if request.param == "simulator" else "edge")


def test_the_real_agent_gets_every_secret_back_in_place(edge):
    work = edge.work
    install = json.loads((work / "install.json").read_text())["install_values"]
    assert install["bmc_password"] == BMC_PASSWORD
    assert install["extra"] == INSTALL["extra"] and install["ipmi"] == INSTALL["ipmi"]
    bootstrap = json.loads((work / "bootstrap.json").read_text())["bootstrap_values"]
    assert {k: bootstrap[k] for k in NESTED} == NESTED
    config = yaml.safe_load(json.loads((work / "config.json").read_text())["deploy_config"])
    assert config == CONFIG


def test_the_stored_documents_show_what_is_not_secret(fleet):
    shown = fleet.subcloud("sim-00001")
    install = json.loads(shown["data_install"])  # JSON text, as the reference sends it
    assert install["ipmi"] == [{"user": "ipmi"}] and install["extra"] == {}
    assert "bmc_password" not in install
    payload = json.loads(shown["rehome_data"])["saved_payload"]
    assert payload["docker_registries"]["k8s.gcr.io"] == {"url": "registry.local:9001", "username": "admin"}
    assert payload["users"] == [{"name": "ops"}] and payload["registry"] == {"auth": {}}
    assert payload["ssh_public_key"] == NESTED["ssh_public_key"] and "admin_password" not in payload


def _first(fleet, path: str, key: str, field: str = "id") -> str | None:
    found = fleet.call("GET", path).json()[key]
    return str(found[0][field]) if found else None


def test_no_get_route_shows_a_secret_to_a_reader_or_an_admin(deployed):
    site = deployed.site
    schema = httpx.get(site.url + "/openapi.json", timeout=10).json()
    subcloud = deployed.call("GET", "/subclouds").json()["subclouds"][0]
    refs = {"subcloud_ref": [subcloud["name"], str(subcloud["id"])], "group_ref": ["1", "Default"]}
    peer_refs: dict[str, list[str]] = {}  # under /subcloud-peer-groups, group_ref names a peer group
    for name, path, key, field in [
            ("peer_group_ref", "/subcloud-peer-groups", "subcloud_peer_groups", "id"),
            ("peer_group_ref", "/subcloud-peer-groups", "subcloud_peer_groups", "peer_group_name"),
            ("peer_ref", "/system-peers", "system_peers", "id"),
            ("peer_ref", "/system-peers", "system_peers", "peer-name"),
            ("association_id", "/peer-group-associations", "peer_group_associations", "id")]:
        value = _first(deployed, path, key, field)
        if value is not None:
            peer_refs.setdefault(name, []).append(value)
    refs.update({k: v for k, v in peer_refs.items() if k != "peer_group_ref"})
    gets = [path for path, ops in schema["paths"].items() if "get" in ops]
    assert len(gets) > 20  # the walk covers the whole API, not a few routes
    queries = {"/v1.0/subclouds": [{}, {"limit": "50"}, {"name": subcloud["name"][:3]}],
               "/v1.0/fault-alarms": [{}, {"subcloud": subcloud["name"]}]}
    tokens = {"admin": deployed.token}
    if _has_reader(deployed):
        tokens["reader"] = token_for(site, READER_USER, READER_PASSWORD)
    assert len(tokens) == 2
    walked: set[str] = set()
    skipped: set[str] = set()
    for who, token in tokens.items():
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        for template in gets:
            names = re.findall(r"{(\w+)}", template)
            these = dict(refs)
            if template.startswith("/v1.0/subcloud-peer-groups/"):
                these.pop("group_ref")
                if "peer_group_ref" in peer_refs:
                    these["group_ref"] = peer_refs["peer_group_ref"]
            if any(name not in these for name in names):
                skipped.add(template)
                continue
            # Each path parameter in each of its spellings (id, name); the others at their first.
            variants = [{n: these[n][0] for n in names}]
            variants += [{**variants[0], n: v} for n in names for v in these[n][1:]]
            for chosen in variants:
                path = template
                for name, value in chosen.items():
                    path = path.replace("{" + name + "}", value)
                for params in queries.get(path, [{}]):
                    answer = httpx.get(site.url + path, params=params, headers=headers, timeout=10)
                    assert answer.status_code == 200, (who, path, answer.status_code, answer.text)
                    assert not _leaks(answer.text), (who, path, _leaks(answer.text))
                    walked.add(template)
    assert walked | skipped == set(gets)
    # Only the site without geo-redundancy objects skips a route: one naming such an object.
    peer_objects = ("/v1.0/system-peers/", "/v1.0/subcloud-peer-groups/", "/v1.0/peer-group-associations/")
    assert not skipped if deployed.control else all(t.startswith(peer_objects) for t in skipped), skipped
    # The dashboard page and its script, and the Prometheus scrape, which needs no token.
    for path in ("/ui", "/ui/app.js", "/metrics", "/v1.0/dashboard"):
        answer = httpx.get(site.url + path, headers={"X-Auth-Token": deployed.token}, timeout=10)
        assert answer.status_code == 200 and not _leaks(answer.text), path


def _has_reader(fleet) -> bool:
    """The reader account the walk reads as, created once through the command line."""
    created = subprocess.run([DCMAN, "user", "create", READER_USER, "--role", "reader", "--password",
                              READER_PASSWORD], env=fleet.site.env(), capture_output=True, text=True)
    return created.returncode == 0 or "already exists" in created.stderr + created.stdout


def test_the_site_log_and_the_deploy_logs_hold_no_secret(deployed):
    time.sleep(1.0)  # the association's sync attempt and the audit have logged by now
    logs = [deployed.site.log, *deployed.site.data_dir.rglob("*.log")]
    assert len(logs) > 1
    for log in logs:
        assert not _leaks(log.read_text(errors="replace")), log


def test_the_database_holds_no_secret_in_clear(deployed):
    with sqlite3.connect(f"file:{deployed.site.data_dir / 'dcman.sqlite'}?mode=ro", uri=True, timeout=10) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                text = " ".join(str(value) for value in row)
                assert not _leaks(text), (table, _leaks(text))
