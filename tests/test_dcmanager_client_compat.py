"""The `dcmanager` command-line client (starlingx/distcloud-client) against a real site and a
real simulator. The client cannot be installed here (it is not on PyPI), so each command's
request is replayed as its source builds it (method, path with its trailing slash, JSON or
multipart body, field names, keystoneauth session and headers), and every response key the
client reads (a missing one is a KeyError or TypeError in the client) or shows as a column is
asserted present.

Source files, under distributedcloud-client/dcmanagerclient/: api/httpclient.py and
api/v1/client.py (auth, headers), api/base.py (the Subcloud resource, error reading),
api/v1/*_manager.py (requests and keys read), commands/v1/*_manager.py and utils.py (fields
sent, columns shown).
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import ADMIN_PASSWORD, ADMIN_USER, add_form
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic
from simfleet import Fleet, running_fleet, wait_until

# --- what the client reads -------------------------------------------------------------------

# api/base.py: Subcloud.from_payload. These keys fill the constructor's positional parameters:
# a missing one is a TypeError in every subcloud command.
SUBCLOUD_REQUIRED = ("id", "name", "description", "location", "software-version", "management-state",
                     "availability-status", "deploy-status", "management-subnet", "management-start-ip",
                     "management-end-ip", "management-gateway-ip", "systemcontroller-gateway-ip",
                     "created-at", "updated-at", "group_id")
# utils.py subcloud_detail_format and commands/v1/subcloud_manager.py: optional in the
# payload, but shown as columns (None instead of the value when missing).
SUBCLOUD_COLUMNS = ("peer_group_id", "backup-status", "backup-datetime", "prestage-status", "prestage-versions",
                    "error-description")
# The answers of a subcloud group's and a peer group's subclouds and of migrate carry no
# endpoint_sync_status in the reference (see ROW_COLUMNS).
SUBCLOUD_IN_GROUP = SUBCLOUD_REQUIRED + SUBCLOUD_COLUMNS
SUBCLOUD = SUBCLOUD_IN_GROUP + ("endpoint_sync_status",)
SUBCLOUD_IN_LIST = SUBCLOUD + ("sync_status",)                   # basic_format / detail_list_format
SUBCLOUD_SHOWN = SUBCLOUD + ("region-name",)                     # detail_show_format
# api/v1/subcloud_manager.py reads these three with [...] from the detail answer: region_name
# (underscore) is the reference's backwards-compatible spelling, beside region-name.
SUBCLOUD_DETAIL = SUBCLOUD_SHOWN + ("oam_floating_ip", "deploy_config_sync_status", "region_name")
ENDPOINT_STATUS = ("endpoint_type", "sync_status")               # detail_format, one column each
# api/v1/subcloud_group_manager.py _json_to_resource
GROUP = ("id", "name", "description", "update_apply_type", "max_parallel_subclouds", "created-at", "updated-at")
# api/v1/alarm_manager.py alarm_summary_list
ALARM = ("region_name", "critical_alarms", "major_alarms", "minor_alarms", "warnings", "cloud_status")
# api/v1/system_peer_manager.py _json_to_resource
PEER = ("id", "peer-uuid", "peer-name", "manager-endpoint", "manager-username", "peer-controller-gateway-address",
        "administrative-state", "heartbeat-interval", "heartbeat-failure-threshold", "heartbeat-failure-policy",
        "heartbeat-maintenance-timeout", "availability-state", "created-at", "updated-at")
# api/v1/subcloud_peer_group_manager.py json_to_resource
PEER_GROUP = ("id", "peer_group_name", "group_priority", "group_state", "system_leader_id", "system_leader_name",
              "max_subcloud_rehoming", "created-at", "updated-at")
# commands/v1/subcloud_peer_group_manager.py detail_status_format
PEER_GROUP_STATUS = ("peer_group_id", "peer_group_name", "total_subclouds", "complete", "waiting_for_migrate",
                     "rehoming", "rehome_failed", "managed", "unmanaged")
# api/v1/peer_group_association_manager.py _json_to_resource (sync-message: shown by show)
ASSOCIATION = ("id", "peer-group-id", "system-peer-id", "peer-group-priority", "association-type", "sync-status",
               "sync-message", "created-at", "updated-at")


# commands/v1/*: a list command (a cliff Lister) takes its column names from its format
# function called without a row, and its values from each row. The subcloud detail formats
# (subcloud-group list-subclouds, subcloud-peer-group list-subclouds and migrate) add one column
# per entry of a row's endpoint_sync_status; a row with any then has more values than there
# are columns, and the command fails with "Row has incorrect number of values" (in table, value
# and yaml output). `subcloud list` and the other lists have fixed columns.
ROW_COLUMNS: dict[str, tuple[str, ...]] = {
    "subcloud-group list-subclouds": ("endpoint_sync_status",),
    "subcloud-peer-group list-subclouds": ("endpoint_sync_status",),
    "subcloud-peer-group migrate": ("endpoint_sync_status",),
}


def columns_added_by(command: str, row: dict[str, Any]) -> list[str]:
    """The columns a row adds to those the client derives from an empty row."""
    added: list[str] = []
    for key in ROW_COLUMNS.get(command, ()):
        added += [f"{entry.get('endpoint_type')}_sync_status" for entry in row.get(key) or []]
    return added


@dataclass(frozen=True)
class Command:
    method: str
    path: str                  # as the client formats it, {ref} filled in by the test
    body: str                  # "none", "json", "multipart" (MultipartEncoder) or "empty-json" (data={})
    answer: str | None         # None: one object; a key: a list under that key; "": no body read
    keys: tuple[str, ...]


# command -> the request it sends and the keys it reads.
COMMANDS: dict[str, Command] = {
    # api/v1/subcloud_manager.py, commands/v1/subcloud_manager.py
    "subcloud add": Command("POST", "/subclouds/", "multipart", None, SUBCLOUD),
    "subcloud list": Command("GET", "/subclouds/", "none", "subclouds", SUBCLOUD_IN_LIST),
    "subcloud show": Command("GET", "/subclouds/{ref}", "none", None, SUBCLOUD_SHOWN),
    "subcloud show --detail": Command("GET", "/subclouds/{ref}/detail", "none", None, SUBCLOUD_DETAIL),
    "subcloud errors": Command("GET", "/subclouds/{ref}", "none", None, ("error-description",)),
    "subcloud manage": Command("PATCH", "/subclouds/{ref}", "multipart", None, SUBCLOUD),
    "subcloud unmanage": Command("PATCH", "/subclouds/{ref}", "multipart", None, SUBCLOUD),
    "subcloud update": Command("PATCH", "/subclouds/{ref}", "multipart", None, SUBCLOUD),
    "subcloud redeploy": Command("PATCH", "/subclouds/{ref}/redeploy", "multipart", None, SUBCLOUD),
    "subcloud prestage": Command("PATCH", "/subclouds/{ref}/prestage", "json", None, SUBCLOUD),
    "subcloud delete": Command("DELETE", "/subclouds/{ref}", "none", "", ()),
    # api/v1/phased_subcloud_deploy_manager.py, commands/v1/phased_subcloud_deploy_manager.py
    "subcloud deploy create": Command("POST", "/phased-subcloud-deploy/", "multipart", None, SUBCLOUD),
    "subcloud deploy install": Command("PATCH", "/phased-subcloud-deploy/{ref}/install", "multipart", None, SUBCLOUD),
    "subcloud deploy bootstrap": Command("PATCH", "/phased-subcloud-deploy/{ref}/bootstrap", "multipart", None,
                                         SUBCLOUD),
    "subcloud deploy config": Command("PATCH", "/phased-subcloud-deploy/{ref}/configure", "multipart", None,
                                      SUBCLOUD),
    "subcloud deploy complete": Command("PATCH", "/phased-subcloud-deploy/{ref}/complete", "multipart", None,
                                        SUBCLOUD),
    "subcloud deploy abort": Command("PATCH", "/phased-subcloud-deploy/{ref}/abort", "multipart", None, SUBCLOUD),
    "subcloud deploy resume": Command("PATCH", "/phased-subcloud-deploy/{ref}/resume", "multipart", None, SUBCLOUD),
    # api/v1/subcloud_backup_manager.py, commands/v1/subcloud_backup_manager.py (delete: 204, or 207
    # with a JSON string the client prints)
    "subcloud-backup create": Command("POST", "/subcloud-backup/", "multipart", "subclouds", SUBCLOUD),
    "subcloud-backup delete": Command("PATCH", "/subcloud-backup/delete/{ref}", "multipart", "", ()),
    "subcloud-backup restore": Command("PATCH", "/subcloud-backup/restore", "multipart", "subclouds", SUBCLOUD),
    # api/v1/subcloud_group_manager.py, commands/v1/subcloud_group_manager.py
    "subcloud-group add": Command("POST", "/subcloud-groups/", "json", None, GROUP),
    "subcloud-group list": Command("GET", "/subcloud-groups/", "none", "subcloud_groups", GROUP),
    "subcloud-group show": Command("GET", "/subcloud-groups/{ref}", "none", None, GROUP),
    "subcloud-group update": Command("PATCH", "/subcloud-groups/{ref}", "json", None, GROUP),
    "subcloud-group list-subclouds": Command("GET", "/subcloud-groups/{ref}/subclouds", "none", "subclouds",
                                             SUBCLOUD_IN_GROUP),
    "subcloud-group delete": Command("DELETE", "/subcloud-groups/{ref}", "none", "", ()),
    # api/v1/alarm_manager.py, commands/v1/alarm_manager.py
    "alarm summary": Command("GET", "/alarms/", "none", "alarm_summary", ALARM),
    # api/v1/system_peer_manager.py, commands/v1/system_peer_manager.py
    "system-peer add": Command("POST", "/system-peers/", "json", None, PEER),
    "system-peer list": Command("GET", "/system-peers/", "none", "system_peers", PEER),
    "system-peer show": Command("GET", "/system-peers/{ref}", "none", None, PEER),
    "system-peer update": Command("PATCH", "/system-peers/{ref}", "json", None, PEER),
    "system-peer list-subcloud-peer-groups": Command("GET", "/system-peers/{ref}/subcloud-peer-groups", "none",
                                                     "subcloud_peer_groups", PEER_GROUP),
    "system-peer delete": Command("DELETE", "/system-peers/{ref}", "none", "", ()),
    # api/v1/subcloud_peer_group_manager.py, commands/v1/subcloud_peer_group_manager.py
    "subcloud-peer-group add": Command("POST", "/subcloud-peer-groups/", "json", None, PEER_GROUP),
    "subcloud-peer-group list": Command("GET", "/subcloud-peer-groups/", "none", "subcloud_peer_groups", PEER_GROUP),
    "subcloud-peer-group show": Command("GET", "/subcloud-peer-groups/{ref}", "none", None, PEER_GROUP),
    "subcloud-peer-group update": Command("PATCH", "/subcloud-peer-groups/{ref}", "json", None, PEER_GROUP),
    "subcloud-peer-group list-subclouds": Command("GET", "/subcloud-peer-groups/{ref}/subclouds", "none",
                                                  "subclouds", SUBCLOUD_IN_GROUP),
    "subcloud-peer-group status": Command("GET", "/subcloud-peer-groups/{ref}/status", "none", None,
                                          PEER_GROUP_STATUS),
    "subcloud-peer-group migrate": Command("PATCH", "/subcloud-peer-groups/{ref}/migrate", "json", "subclouds",
                                           SUBCLOUD_IN_GROUP),
    "subcloud-peer-group delete": Command("DELETE", "/subcloud-peer-groups/{ref}", "none", "", ()),
    # api/v1/peer_group_association_manager.py, commands/v1/peer_group_association_manager.py
    "peer-group-association add": Command("POST", "/peer-group-associations/", "json", None, ASSOCIATION),
    "peer-group-association list": Command("GET", "/peer-group-associations/", "none", "peer_group_associations",
                                           ASSOCIATION),
    "peer-group-association show": Command("GET", "/peer-group-associations/{ref}", "none", None, ASSOCIATION),
    "peer-group-association update": Command("PATCH", "/peer-group-associations/{ref}", "json", None, ASSOCIATION),
    "peer-group-association sync": Command("PATCH", "/peer-group-associations/{ref}/sync", "empty-json", None,
                                           ASSOCIATION),
    "peer-group-association delete": Command("DELETE", "/peer-group-associations/{ref}", "none", "", ()),
}

SYSADMIN = "St8rlingX*"
INSTALL_VALUES = ("bootstrap_interface: eno1\nbootstrap_address: 10.10.0.2\nbootstrap_address_prefix: 16\n"
                  "install_type: 0\nbmc_username: root\nbmc_address: 10.20.0.2\nsoftware_version: \"24.09\"\n")
DEPLOY_CONFIG = "deployment: {profile: edge}\n"


def b64(text: str) -> bytes:
    """The client sends multipart passwords as the bytes of base64.b64encode."""
    return base64.b64encode(text.encode())


# --- the client, replayed --------------------------------------------------------------------


class DcmanagerClient:
    """Sends what the client sends: `authenticate()` of api/v1/client.py (a keystoneauth
    generic Password plugin on the site's /v3, the dcmanager endpoint from the catalog), then
    each request through that keystoneauth session, as api/httpclient.py does."""

    def __init__(self, site_url: str, files_dir: Path) -> None:
        auth = generic.Password(auth_url=site_url + "/v3", username=ADMIN_USER, password=ADMIN_PASSWORD,
                                project_name="admin", user_domain_name="Default", project_domain_name="Default")
        self.session = ks_session.Session(auth=auth)
        self.endpoint = self.session.get_endpoint(service_type="dcmanager", interface="publicURL")
        self.headers = {"X-Project-Id": self.session.get_project_id(), "X-User-Id": self.session.get_user_id()}
        self.files_dir = files_dir

    def file(self, name: str, text: str) -> str:
        """The client uploads files by path; the part's filename is that path."""
        path = self.files_dir / name
        path.write_text(text)
        return str(path)

    def send(self, command: str, ref: str | int = "", body: dict[str, Any] | None = None,
             files: dict[str, str] | None = None) -> requests.Response:
        spec = COMMANDS[command]
        headers = dict(self.headers)
        kwargs: dict[str, Any] = {}
        with contextlib.ExitStack() as opened:
            if spec.body == "json":
                headers["content-type"] = "application/json"
                kwargs["data"] = json.dumps(body or {})
            elif spec.body == "empty-json":  # http_client.patch(url, {}): no body, the default JSON type
                headers["content-type"] = "application/json"
            elif spec.body == "multipart":
                parts: dict[str, Any] = {k: (path, opened.enter_context(open(path, "rb")))
                                         for k, path in (files or {}).items()}
                parts.update({k: (None, v) for k, v in (body or {}).items()})
                if parts:
                    kwargs["files"] = parts
                else:  # MultipartEncoder(fields={}): only the closing boundary
                    headers["content-type"] = "multipart/form-data; boundary=0c1d2e3f4a5b6c7d"
                    kwargs["data"] = b"--0c1d2e3f4a5b6c7d--\r\n"
            url = self.endpoint + spec.path.format(ref=ref)
            return self.session.request(url, spec.method, headers=headers, raise_exc=False, redirect=False,
                                        **kwargs)

    def run(self, command: str, ref: str | int = "", body: dict[str, Any] | None = None,
            files: dict[str, str] | None = None) -> Any:
        """Send the command and check its answer the way the client reads it."""
        response = self.send(command, ref, body, files)
        return read_answer(command, response)


def read_answer(command: str, response: requests.Response) -> Any:
    spec = COMMANDS[command]
    # Every manager raises unless the status is exactly 200 (201 or 204 are errors to it).
    assert response.status_code == 200, f"{command}: {response.status_code} {response.text}"
    if spec.answer == "":
        return None
    answer = response.json()
    if spec.answer is None:
        assert isinstance(answer, dict), f"{command}: {answer!r}"
        objects = [answer]
    else:
        assert isinstance(answer.get(spec.answer), list), f"{command}: no list under {spec.answer!r}"
        objects = answer[spec.answer]
    for obj in objects:
        missing = [key for key in spec.keys if key not in obj]
        assert not missing, f"{command}: keys the client reads are missing: {missing}"
        added = columns_added_by(command, obj)
        assert not added, f"{command}: a row adds columns {added} to those of an empty row (the client fails)"
        for status in obj.get("endpoint_sync_status", []) if "endpoint_sync_status" in spec.keys else []:
            assert set(ENDPOINT_STATUS) <= set(status), f"{command}: {status!r}"
    return answer


# --- a site with a simulated fleet -------------------------------------------------------------


@dataclass
class Setup:
    fleet: Fleet
    client: DcmanagerClient

    def values(self, name: str) -> str:
        """A bootstrap-values file for a simulated subcloud."""
        return self.client.file(f"{name}.yaml", yaml.safe_dump(self.fleet.bootstrap_values(name)))

    def status(self, name: str) -> str:
        return self.fleet.subcloud(name)["deploy-status"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("client-compat")
    with running_fleet(work, 10, interval=0.5) as fleet:
        yield Setup(fleet, DcmanagerClient(fleet.site.url, work))


# --- the commands ------------------------------------------------------------------------------


def test_authentication_finds_the_site_and_a_token_alone_works(setup: Setup) -> None:
    """`--os-auth-url SITE/v3` finds the dcmanager endpoint in the catalog; `--dcmanager-url
    SITE/v1.0 --os-auth-token T` sends plain `requests` calls with that token."""
    site = setup.fleet.site.url
    assert setup.client.endpoint == site + "/v1.0"
    token = generic.Token(auth_url=site + "/v3", token=setup.fleet.token, project_name="admin",
                          project_domain_name="Default")
    assert ks_session.Session(auth=token).get_endpoint(service_type="dcmanager", interface="publicURL") == \
        site + "/v1.0"
    plain = requests.get(site + "/v1.0/subclouds/", headers={"x-auth-token": setup.fleet.token},
                         allow_redirects=False, timeout=10)
    assert plain.request.headers["User-Agent"].startswith("python-requests/")
    read_answer("subcloud list", plain)


def test_no_collection_path_of_the_client_is_redirected(setup: Setup) -> None:
    """The client writes collections with a trailing slash; a redirect would make it send a
    streamed multipart body twice."""
    for command in ("subcloud list", "subcloud-group list", "alarm summary", "system-peer list",
                    "subcloud-peer-group list", "peer-group-association list"):
        response = setup.client.send(command)
        assert response.status_code == 200 and not response.history, (command, response.status_code)
        assert "keystoneauth1" in response.request.headers["User-Agent"]


def test_subcloud_commands(setup: Setup) -> None:
    c, fleet = setup.client, setup.fleet
    group = c.run("subcloud-group add", body={"name": "Ottawa", "description": "No description provided",
                                              "update_apply_type": "parallel", "max_parallel_subclouds": "4"})
    added = c.run("subcloud add", body={"bootstrap-address": "10.10.0.2", "sysadmin_password": b64(SYSADMIN),
                                        "group_id": "Ottawa"},
                  files={"bootstrap_values": setup.values("sim-00001")})
    assert (added["name"], added["group_id"]) == ("sim-00001", group["id"])
    wait_until(lambda: setup.status("sim-00001") == "complete")
    wait_until(lambda: fleet.subcloud("sim-00001")["availability-status"] == "online")

    listed = c.run("subcloud list")["subclouds"]
    assert [s["name"] for s in listed if s["name"] == "sim-00001"] == ["sim-00001"]
    assert c.run("subcloud show", "sim-00001")["region-name"] == added["region-name"]
    detail = c.run("subcloud show --detail", str(added["id"]))
    assert detail["oam_floating_ip"] == "10.10.0.2"
    assert c.run("subcloud errors", "sim-00001")["error-description"] == "No errors present"
    assert c.run("subcloud manage", "sim-00001", body={"management-state": "managed"})["management-state"] == \
        "managed"
    updated = c.run("subcloud update", "sim-00001", body={"description": "Ottawa edge", "location": "YOW",
                                                          "group_id": "1"})
    assert (updated["description"], updated["location"], updated["group_id"]) == ("Ottawa edge", "YOW", 1)
    # `subcloud update --bootstrap-address --bootstrap-values`: the rehome data a peer site would get.
    rehome = c.run("subcloud update", "sim-00001", body={"bootstrap_address": "10.10.0.9"},
                   files={"bootstrap_values": setup.values("sim-00001")})
    assert json.loads(rehome["rehome_data"])["saved_payload"]["bootstrap-address"] == "10.10.0.9"
    assert c.run("subcloud unmanage", "sim-00001", body={"management-state": "unmanaged"})["management-state"] == \
        "unmanaged"

    # Redeploy needs the subcloud offline and unmanaged; the client sends the passwords as
    # base64 bytes and the install values as a file.
    fleet.fault("sim-00001", reachable=False)
    wait_until(lambda: fleet.subcloud("sim-00001")["availability-status"] == "offline")
    fleet.fault("sim-00001", reachable=True)
    redeployed = c.run("subcloud redeploy", "sim-00001",
                       body={"sysadmin_password": b64(SYSADMIN), "bmc_password": b64("bmc-secret")},
                       files={"install_values": c.file("install.yaml", INSTALL_VALUES)})
    assert redeployed["deploy-status"] == "pre-install"

    c.run("subcloud-group update", "Ottawa", body={"description": "Ottawa sites", "max_parallel_subclouds": 3})
    assert c.run("subcloud-group show", "Ottawa")["max_parallel_subclouds"] == 3
    assert "Ottawa" in [g["name"] for g in c.run("subcloud-group list")["subcloud_groups"]]
    assert "sim-00001" in [s["name"] for s in c.run("subcloud-group list-subclouds", "Default")["subclouds"]]
    c.run("subcloud-group delete", "Ottawa")
    summary = c.run("alarm summary")["alarm_summary"]
    assert "sim-00001" in [row["region_name"] for row in summary]


def test_prestage_network_reconfiguration_and_adoption_commands(setup: Setup) -> None:
    """`subcloud prestage`, `subcloud update` with the network options, `subcloud add --migrate`."""
    c, fleet = setup.client, setup.fleet
    c.run("subcloud add", body={"bootstrap-address": "10.10.0.2", "sysadmin_password": b64(SYSADMIN)},
          files={"bootstrap_values": setup.values("sim-00007")})
    wait_until(lambda: fleet.subcloud("sim-00007")["availability-status"] == "online", timeout=30)
    c.run("subcloud manage", "sim-00007", body={"management-state": "managed"})
    # commands/v1/subcloud_manager.py PrestageSubcloud: JSON, the password as base64 text.
    prestaged = c.run("subcloud prestage", "sim-00007", body={"sysadmin_password": b64(SYSADMIN).decode(),
                                                              "release": "24.09", "for_install": "true"})
    assert prestaged["prestage-status"] == "prestaging-packages"
    wait_until(lambda: fleet.subcloud("sim-00007")["prestage-status"] == "complete", timeout=20)
    assert fleet.subcloud("sim-00007")["prestage-versions"] == "24.09"

    # UpdateSubcloud with all four management options, --bootstrap-address and the password (multipart).
    c.run("subcloud unmanage", "sim-00007", body={"management-state": "unmanaged"})
    moved = c.run("subcloud update", "sim-00007", body={
        "management_subnet": "127.200.7.0/29", "management_gateway_ip": "127.200.7.1",
        "management_start_ip": "127.200.7.2", "management_end_ip": "127.200.7.6",
        "bootstrap_address": "10.10.0.7", "sysadmin_password": b64(SYSADMIN)})
    assert moved["deploy-status"] == "reconfiguring-network"
    wait_until(lambda: setup.status("sim-00007") == "complete", timeout=20)
    assert fleet.subcloud("sim-00007")["management-start-ip"] == "127.200.7.2"

    # AddSubcloud --migrate: a subcloud another system controller deployed, rehomed here.
    agent = f"http://127.1.0.66:{fleet.site_env['DCMAN_SUBCLOUD_AGENT_PORT']}"  # sim-00009
    assert requests.post(agent + "/v1/phases/bootstrap", json={"system_controller": "other-site"},
                         auth=("sysadmin", SYSADMIN), timeout=10).status_code == 202
    wait_until(lambda: requests.get(f"{fleet.control}/sim/subclouds/sim-00009", timeout=10).json()[
        "system_controller"] == "other-site")
    adopted = c.run("subcloud add", body={"bootstrap-address": "10.10.0.9", "sysadmin_password": b64(SYSADMIN),
                                          "migrate": "true", "name": "sim-00009"},
                    files={"bootstrap_values": setup.values("sim-00009")})
    assert adopted["deploy-status"] == "pre-rehome"
    wait_until(lambda: setup.status("sim-00009") == "complete", timeout=20)


def test_phased_deploy_commands(setup: Setup) -> None:
    c, fleet = setup.client, setup.fleet
    # `subcloud deploy create` sends no sysadmin password; the phases bring it.
    created = c.run("subcloud deploy create", body={"bootstrap-address": "10.10.0.3"},
                    files={"bootstrap_values": setup.values("sim-00002")})
    assert created["deploy-status"] in ("not-deployed", "create-complete")
    wait_until(lambda: setup.status("sim-00002") == "create-complete")
    c.run("subcloud deploy bootstrap", "sim-00002", body={"bootstrap-address": "10.10.0.3",
                                                          "sysadmin_password": b64(SYSADMIN)},
          files={"bootstrap_values": setup.values("sim-00002")})
    wait_until(lambda: setup.status("sim-00002") == "bootstrap-complete")
    assert c.run("subcloud deploy complete", "sim-00002")["deploy-status"] == "complete"
    c.run("subcloud deploy config", "sim-00002", body={"sysadmin_password": b64(SYSADMIN)},
          files={"deploy_config": c.file("deploy-config.yaml", DEPLOY_CONFIG)})
    wait_until(lambda: setup.status("sim-00002") == "complete")

    # Install, abort while it runs, resume.
    c.run("subcloud deploy create", body={"bootstrap-address": "10.10.0.4"},
          files={"bootstrap_values": setup.values("sim-00003")})
    wait_until(lambda: setup.status("sim-00003") == "create-complete")
    fleet.fault("sim-00003", phase_seconds=30.0)
    c.run("subcloud deploy install", "sim-00003", body={"sysadmin_password": b64(SYSADMIN),
                                                        "bmc_password": b64("bmc-secret")},
          files={"install_values": c.file("install3.yaml", INSTALL_VALUES)})
    wait_until(lambda: setup.status("sim-00003") == "installing")
    assert c.run("subcloud deploy abort", "sim-00003")["deploy-status"] == "aborting-install"
    wait_until(lambda: setup.status("sim-00003") == "install-aborted")
    fleet.fault("sim-00003", phase_seconds=0.2)
    resumed = c.run("subcloud deploy resume", "sim-00003", body={"sysadmin_password": b64(SYSADMIN)})
    assert resumed["deploy-status"] == "pre-install"

    # A created subcloud that never ran a phase is offline and unmanaged: it can be deleted.
    c.run("subcloud deploy create", body={"bootstrap-address": "10.10.0.6"},
          files={"bootstrap_values": setup.values("sim-00005")})
    wait_until(lambda: setup.status("sim-00005") == "create-complete")
    c.run("subcloud delete", "sim-00005")
    assert setup.client.send("subcloud show", "sim-00005").status_code == 404


def test_subcloud_backup_commands(setup: Setup) -> None:
    """create (with a backup_values file), delete by release, and restore (with a restore_values
    file), each as the multipart form of "true"/"false" strings the client sends."""
    c, fleet, name = setup.client, setup.fleet, "sim-00010"
    c.run("subcloud add", body={"bootstrap-address": "10.10.0.11", "sysadmin_password": b64(SYSADMIN)},
          files={"bootstrap_values": setup.values(name)})
    wait_until(lambda: fleet.subcloud(name)["availability-status"] == "online", timeout=30)
    c.run("subcloud manage", name, body={"management-state": "managed"})
    created = c.run("subcloud-backup create", body={"subcloud": name, "local_only": "false",
                                                    "registry_images": "false", "sysadmin_password": b64(SYSADMIN)},
                    files={"backup_values": c.file("backup-values.yaml", "backup_registry_images: false\n")})
    assert [s["backup-status"] for s in created["subclouds"]] == ["initial"]
    wait_until(lambda: fleet.subcloud(name)["backup-status"] == "complete-central")

    c.run("subcloud unmanage", name, body={"management-state": "unmanaged"})
    restored = c.run("subcloud-backup restore", body={
        "subcloud": name, "with_install": "false", "local_only": "false", "registry_images": "false",
        "auto": "false", "factory": "false", "sysadmin_password": b64(SYSADMIN)},
        files={"restore_values": c.file("restore-values.yaml", f"bootstrap_address:\n  {name}: 10.10.0.11\n")})
    assert [s["deploy-status"] for s in restored["subclouds"]] == ["pre-restore"]
    wait_until(lambda: setup.status(name) == "complete")

    deleted = c.send("subcloud-backup delete", "24.09", body={"release": "24.09", "subcloud": name,
                                                              "local_only": "false"})
    assert deleted.status_code == 204, deleted.text
    again = c.send("subcloud-backup delete", "24.09", body={"release": "24.09", "subcloud": name,
                                                            "local_only": "false"})
    assert again.status_code == 422 and "subcloud error" in shown_error(again)


def test_geo_redundancy_commands(setup: Setup) -> None:
    c, fleet = setup.client, setup.fleet
    peer_uuid = str(uuid.uuid4())
    # Options given on the command line are strings (no type=int); the defaults are ints.
    peer = c.run("system-peer add", body={
        "peer_uuid": peer_uuid, "peer_name": "site2", "manager_endpoint": "http://127.0.0.1:9/v3",
        "manager_username": "admin", "manager_password": base64.b64encode(b"site2-password").decode(),
        "peer_controller_gateway_address": "127.0.0.1", "administrative_state": "enabled",
        "heartbeat_interval": "10", "heartbeat_failure_threshold": 3, "heartbeat_failure_policy": "alarm",
        "heartbeat_maintenance_timeout": 600})
    assert peer["heartbeat-interval"] == 10
    assert [p["peer-uuid"] for p in c.run("system-peer list")["system_peers"]] == [peer_uuid]
    assert c.run("system-peer show", peer_uuid)["peer-name"] == "site2"
    assert c.run("system-peer update", peer_uuid, body={"heartbeat_interval": "20"})["heartbeat-interval"] == 20

    # The current client sends no group-priority; an older one sends group-priority 0.
    group = c.run("subcloud-peer-group add", body={"peer-group-name": "pg1", "group-state": "enabled",
                                                   "max-subcloud-rehoming": 10})
    c.run("subcloud-peer-group add", body={"peer-group-name": "pg0", "group-priority": 0, "group-state": "enabled",
                                           "max-subcloud-rehoming": 10})
    assert {g["peer_group_name"] for g in c.run("subcloud-peer-group list")["subcloud_peer_groups"]} >= {"pg1", "pg0"}
    assert c.run("subcloud-peer-group show", "pg1")["id"] == group["id"]
    assert c.run("subcloud-peer-group update", "pg1", body={"max-subcloud-rehoming": 5})["max_subcloud_rehoming"] == 5
    assert c.run("subcloud-peer-group list-subclouds", "pg1")["subclouds"] == []
    assert c.run("subcloud-peer-group status", "pg1")["total_subclouds"] == 0

    # The ids come from the command line as strings.
    association = c.run("peer-group-association add", body={
        "peer_group_id": str(group["id"]), "system_peer_id": str(peer["id"]), "peer_group_priority": 2})
    assert [a["id"] for a in c.run("peer-group-association list")["peer_group_associations"]] == [association["id"]]
    assert c.run("peer-group-association show", str(association["id"]))["peer-group-priority"] == 2
    assert c.run("peer-group-association update", str(association["id"]),
                 body={"peer_group_priority": 3})["peer-group-priority"] == 3
    c.run("peer-group-association sync", str(association["id"]))
    assert [g["peer_group_name"] for g in c.run("system-peer list-subcloud-peer-groups", peer_uuid)[
        "subcloud_peer_groups"]] == ["pg1"]
    c.run("peer-group-association delete", str(association["id"]))
    c.run("subcloud-peer-group delete", "pg0")
    c.run("system-peer delete", peer_uuid)

    # Migrate: a secondary copy (made the way a peer site's sync makes it) in a peer group.
    data, files = add_form("sim-00004", fleet.bootstrap_values("sim-00004"), secondary="true",
                           region_name=uuid.uuid4().hex)
    data.pop("sysadmin_password")
    copy = requests.post(fleet.site.url + "/v1.0/subclouds", data=data, files=files, timeout=10,
                         headers={"X-Auth-Token": fleet.token, "User-Agent": "dcmanager/1.0"})
    assert copy.status_code == 200, copy.text
    joined = requests.patch(fleet.site.url + "/v1.0/subclouds/sim-00004", json={"peer_group": "pg1"}, timeout=10,
                            headers={"X-Auth-Token": fleet.token, "User-Agent": "dcmanager/1.0"})
    assert joined.status_code == 200, joined.text
    assert [s["name"] for s in c.run("subcloud-peer-group list-subclouds", "pg1")["subclouds"]] == ["sim-00004"]
    migrating = c.run("subcloud-peer-group migrate", "pg1",
                      body={"sysadmin_password": base64.b64encode(SYSADMIN.encode()).decode()})
    assert [s["name"] for s in migrating["subclouds"]] == ["sim-00004"]


class _BodyText(HTMLParser):
    """The text of an HTML body, as the client's parser (BeautifulSoup) gets it."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.found, self.text = False, False, ""

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "body":
            self.inside = self.found = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.inside = False

    def handle_data(self, data: str) -> None:
        self.text += data if self.inside else ""


def shown_error(response: requests.Response) -> str:
    """What the client prints for an error (api/base.py): the non-empty lines of the HTML body's
    text, the second as the explanation and the rest as "Details"; the raw body when there is
    no HTML body to read."""
    parser = _BodyText()
    parser.feed(response.content.decode("utf-8", errors="ignore"))
    if not parser.found:
        return response.content.decode("utf-8", errors="ignore")
    lines = [line.strip() for line in parser.text.strip().split("\n") if line.strip()]
    explanation = lines[1] if len(lines) > 1 else lines[0]
    explanation += "" if explanation.endswith(".") else "."
    return explanation + (f"\nDetails: {chr(10).join(lines[2:])}" if len(lines) > 2 else "")


def test_an_error_reaches_the_user_as_its_sentence(setup: Setup) -> None:
    """The client (python-requests, Accept */*) reads errors from an HTML page, as the
    reference's web framework answers it; a client that asks for JSON still gets the JSON body."""
    for command, ref, sentence in (("subcloud show", "no-such-subcloud", "Subcloud no-such-subcloud not found."),
                                   ("subcloud-group show", "no-such-group", "Subcloud group no-such-group not found."),
                                   ("system-peer show", "no-such-peer", "System peer no-such-peer not found.")):
        response = requests.get(setup.client.endpoint + COMMANDS[command].path.format(ref=ref), timeout=10,
                                headers={"x-auth-token": setup.fleet.token, "X-Project-Id": "admin"})
        assert response.status_code == 404
        assert shown_error(response) == f"The resource could not be found.\nDetails: {sentence}"
        as_json = requests.get(response.url, timeout=10, headers={"x-auth-token": setup.fleet.token,
                                                                  "Accept": "application/json"})
        assert as_json.json()["error_message"]["faultstring"] == sentence


def test_a_wrong_password_or_token_says_why(setup: Setup) -> None:
    """keystoneauth shows Keystone's error body's message; any other body reads "Unrecognized
    schema in response body"."""
    site = setup.fleet.site.url
    wrong = generic.Password(auth_url=site + "/v3", username=ADMIN_USER, password="not-the-password",
                             project_name="admin", user_domain_name="Default", project_domain_name="Default")
    with pytest.raises(ks_exceptions.Unauthorized) as refused:
        ks_session.Session(auth=wrong).get_endpoint(service_type="dcmanager", interface="publicURL")
    assert "Unrecognized schema" not in str(refused.value)
    assert "password" in str(refused.value).lower(), str(refused.value)
    expired = generic.Token(auth_url=site + "/v3", token="no-such-token", project_name="admin",
                            project_domain_name="Default")
    with pytest.raises(ks_exceptions.Unauthorized) as refused:
        ks_session.Session(auth=expired).get_endpoint(service_type="dcmanager", interface="publicURL")
    assert "Unrecognized schema" not in str(refused.value) and "token" in str(refused.value).lower()


# The client's commands for what dcman does not serve yet (api/v1/*_manager.py paths).
NOT_SERVED = (
    ("subcloud deploy upload", "POST", "/subcloud-deploy/", "Subcloud deploy"),
    ("subcloud deploy show", "GET", "/subcloud-deploy/", "Subcloud deploy"),
    ("sw-deploy-strategy show", "GET", "/sw-update-strategy?type=sw-deploy", "Orchestration strategies"),
    ("kube-upgrade-strategy create", "POST", "/sw-update-strategy/", "Orchestration strategies"),
    ("prestage-strategy apply", "POST", "/sw-update-strategy/actions?type=prestage", "Orchestration strategies"),
    ("fw-update-strategy delete", "DELETE", "/sw-update-strategy?type=firmware", "Orchestration strategies"),
    ("strategy-step list", "GET", "/sw-update-strategy/steps", "Orchestration strategy steps"),
    ("strategy-config list", "GET", "/sw-update-options", "Orchestration options"),
)


def test_what_dcman_does_not_serve_answers_501_naming_it(setup: Setup) -> None:
    """Not a 404: the operator's subcloud exists, the feature does not (yet)."""
    setup.fleet.online("sim-00006")
    for command, method, path, feature in NOT_SERVED:
        response = setup.client.session.request(setup.client.endpoint + path.format(ref="sim-00006"), method,
                                                headers=dict(setup.client.headers, Accept="application/json"),
                                                json={}, raise_exc=False)
        assert response.status_code == 501, (command, response.status_code, response.text)
        message = response.json()["error_message"]["faultstring"]
        assert message.startswith(feature) and message.endswith("is not implemented by dcman."), (command, message)
    unauthenticated = requests.patch(setup.client.endpoint + "/subclouds/sim-00006/prestage", timeout=10)
    assert unauthenticated.status_code == 401
