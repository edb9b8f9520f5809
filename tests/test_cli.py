"""The client half of the `dcman` command: `subcloud`, `subcloud-group` and `alarm`.

Two kinds of tests:

* request-shape tests run the commands against a recorded fake site (an httpx mock
  transport), to pin down exactly what goes over the wire;
* scenario tests run the commands against a real site (the session fixture `site` from
  conftest.py), the way an operator would use them.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from dcman.cli import client as client_module
from dcman.cli.client import ClientError, SiteClient
from dcman.cli.main import cli

DCMAN_BIN = Path(sys.executable).with_name("dcman")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(env: dict[str, str | None], *args: str) -> Result:
    """Run `dcman ARGS` in-process; exceptions other than exits fail the test."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def assert_clean_error(result: Result, *fragments: str) -> None:
    """A failed command: exit code 1, one 'Error: ' line on stderr, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment.lower() in result.stderr.lower(), result.stderr


_subnets = itertools.count(random.randrange(110, 180))


def bootstrap_values(name: str) -> dict[str, Any]:
    """Valid bootstrap values for a simplex subcloud on a management subnet of its own."""
    k = next(_subnets)
    return {
        "name": name,
        "system_mode": "simplex",
        "management_subnet": f"192.168.{k}.0/24",
        "management_start_address": f"192.168.{k}.2",
        "management_end_address": f"192.168.{k}.50",
        "management_gateway_address": f"192.168.{k}.1",
        "systemcontroller_gateway_address": "127.0.5.1",
        "external_oam_subnet": "10.10.10.0/24",
        "external_oam_gateway_address": "10.10.10.1",
        "external_oam_floating_address": "10.10.10.12",
    }


def write_yaml(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------
# request-shape tests against a recorded fake site
# ---------------------------------------------------------------------------------------

FAKE_URL = "http://site.example:8119"
FAKE_API = "http://api.example:9999/v1.0"  # deliberately not FAKE_URL: taken from the catalog

SUBCLOUD = {
    "id": 7,
    "name": "sc-fake",
    "description": "Ottawa Site",
    "location": "YOW",
    "management-state": "unmanaged",
    "availability-status": "offline",
    "deploy-status": "not-deployed",
    "error-description": "No errors present",
    "group_id": 1,
    "deploy-progress": None,
    "endpoint_sync_status": [
        {"endpoint_type": "platform", "sync_status": "unknown"},
        {"endpoint_type": "identity", "sync_status": "in-sync"},
    ],
}


@dataclass
class FakeSite:
    """Answers the token request, then whatever `routes` says; records every request."""

    routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = field(
        default_factory=dict
    )
    requests: list[httpx.Request] = field(default_factory=list)
    password: str = "secret"

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.url.path == "/v3/auth/tokens" and request.method == "POST":
            auth = json.loads(request.content)["auth"]
            given = auth["identity"]["password"]["user"]["password"]
            if given != self.password:
                return httpx.Response(
                    401,
                    json={"error": {
                        "code": 401, "title": "Unauthorized",
                        "message": "The request you have made requires authentication."}},
                )
            catalog = [
                {"type": "identity", "name": "keystone",
                 "endpoints": [{"interface": "public", "url": f"{FAKE_URL}/v3"}]},
                {"type": "dcmanager", "name": "dcmanager",
                 "endpoints": [{"interface": "admin", "url": "http://wrong.example/v1.0"},
                               {"interface": "public", "url": FAKE_API}]},
            ]
            return httpx.Response(
                201, headers={"X-Subject-Token": "tok-123"}, json={"token": {"catalog": catalog}}
            )
        if request.headers.get("X-Auth-Token") != "tok-123":
            return httpx.Response(401, json={"error_message": {
                "title": "Unauthorized", "code": 401, "faultstring": "Authentication required."}})
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"error_message": {
                "title": "Not Found", "code": 404, "faultstring": "No such route."}})
        return route(request)

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if not r.url.path.startswith("/v3")]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    site = FakeSite()
    transport = httpx.MockTransport(site.handler)

    def make_client(settings: client_module.SiteSettings) -> SiteClient:
        return SiteClient(settings.url, settings.user, settings.password, transport=transport)

    monkeypatch.setattr(client_module.SiteSettings, "client", make_client)
    return site


FAKE_ENV = {"DCMAN_URL": FAKE_URL, "DCMAN_USER": "admin", "DCMAN_PASSWORD": "secret"}


def test_token_request_is_keystone_v3_password_and_api_comes_from_catalog(fake: FakeSite) -> None:
    fake.routes[("GET", "/v1.0/subclouds")] = lambda r: httpx.Response(
        200, json={"subclouds": [dict(SUBCLOUD, sync_status="unknown")]}
    )
    result = run(FAKE_ENV, "subcloud", "list")
    assert result.exit_code == 0, result.output

    token_request = fake.requests[0]
    assert str(token_request.url) == f"{FAKE_URL}/v3/auth/tokens"
    assert json.loads(token_request.content) == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "password": "secret",
                                      "domain": {"name": "Default"}}},
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    (api_call,) = fake.api_requests()
    assert str(api_call.url) == f"{FAKE_API}/subclouds"
    assert api_call.headers["X-Auth-Token"] == "tok-123"


def test_subcloud_list_shows_the_dcmanager_columns(fake: FakeSite) -> None:
    fake.routes[("GET", "/v1.0/subclouds")] = lambda r: httpx.Response(200, json={"subclouds": [
        dict(SUBCLOUD, sync_status="out-of-sync", **{"deploy-status": "bootstrapping",
                                                     "deploy-progress": 42})]})
    result = run(FAKE_ENV, "subcloud", "list")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "availability" in line)
    headings = [h.strip() for h in header.strip("┃│ ").replace("┃", "│").split("│")]
    assert headings == ["id", "name", "management", "availability", "deploy status", "progress",
                        "sync"]
    row = next(line for line in result.stdout.splitlines() if "sc-fake" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == ["7", "sc-fake", "unmanaged", "offline", "bootstrapping", "42", "out-of-sync"]


def test_show_detail_and_formats_keep_the_api_key_order(fake: FakeSite) -> None:
    fake.routes[("GET", "/v1.0/subclouds/sc-fake/detail")] = lambda r: httpx.Response(
        200, json=dict(SUBCLOUD, oam_floating_ip="10.10.10.12")
    )
    as_json = run(FAKE_ENV, "subcloud", "show", "sc-fake", "--detail", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    parsed = json.loads(as_json.stdout)
    assert list(parsed) == list(SUBCLOUD) + ["oam_floating_ip"]

    as_yaml = run(FAKE_ENV, "subcloud", "show", "sc-fake", "--detail", "--format", "yaml")
    assert as_yaml.exit_code == 0, as_yaml.output
    assert list(yaml.safe_load(as_yaml.stdout)) == list(parsed)

    table = run(FAKE_ENV, "subcloud", "show", "sc-fake", "-d")
    assert table.exit_code == 0, table.output
    assert "Field" in table.stdout and "Value" in table.stdout
    assert "platform_sync_status" in table.stdout
    assert "identity_sync_status" in table.stdout
    assert "deploy-progress" in table.stdout
    assert table.stdout.index("management-state") < table.stdout.index("oam_floating_ip")


def test_subcloud_add_sends_multipart_with_base64_passwords(fake: FakeSite, tmp_path: Path) -> None:
    def create(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=SUBCLOUD)

    fake.routes[("POST", "/v1.0/subclouds")] = create
    bootstrap = write_yaml(tmp_path / "bootstrap.yaml", bootstrap_values("sc-fake"))
    install = write_yaml(tmp_path / "install.yaml", {"bmc_address": "10.0.0.9"})
    deploy = write_yaml(tmp_path / "deploy.yaml", {"hosts": []})
    result = run(
        FAKE_ENV, "subcloud", "add",
        "--bootstrap-address", "10.10.10.12",
        "--bootstrap-values", str(bootstrap),
        "--install-values", str(install),
        "--deploy-config", str(deploy),
        "--sysadmin-password", "St8rlingX*",
        "--bmc-password", "bmc-pw",
        "--group", "GroupX",
        "--description", "Ottawa Site",
        "--location", "YOW",
        "--release", "24.09",
    )
    assert result.exit_code == 0, result.output
    assert "sc-fake" in result.stdout

    (request,) = fake.api_requests()
    assert request.headers["content-type"].startswith("multipart/form-data")
    parts = _multipart_parts(request)
    assert parts["bootstrap_values"] == bootstrap.read_bytes()
    assert parts["install_values"] == install.read_bytes()
    assert parts["deploy_config"] == deploy.read_bytes()
    assert parts["bootstrap-address"] == b"10.10.10.12"
    assert base64.b64decode(parts["sysadmin_password"]) == b"St8rlingX*"
    assert base64.b64decode(parts["bmc_password"]) == b"bmc-pw"
    assert parts["group_id"] == b"GroupX"
    assert parts["description"] == b"Ottawa Site"
    assert parts["location"] == b"YOW"
    assert parts["release"] == b"24.09"


def _multipart_parts(request: httpx.Request) -> dict[str, bytes]:
    """Field name -> content of a multipart/form-data body."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    parts: dict[str, bytes] = {}
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        assert chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n")
        head, _, body = chunk[2:-2].partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        parts[name] = body
    return parts


def test_subcloud_add_with_a_missing_file_fails_before_any_request(
    fake: FakeSite, tmp_path: Path
) -> None:
    result = run(
        FAKE_ENV, "subcloud", "add",
        "--bootstrap-address", "10.10.10.12",
        "--bootstrap-values", str(tmp_path / "nowhere.yaml"),
        "--sysadmin-password", "x",
    )
    assert result.exit_code == 2
    assert "nowhere.yaml" in result.stderr and "does not exist" in result.stderr
    assert fake.requests == []


def test_subcloud_add_without_sysadmin_password_is_a_usage_error(
    fake: FakeSite, tmp_path: Path
) -> None:
    bootstrap = write_yaml(tmp_path / "b.yaml", bootstrap_values("sc-x"))
    result = run(FAKE_ENV, "subcloud", "add", "--bootstrap-address", "1.2.3.4",
                 "--bootstrap-values", str(bootstrap))
    assert result.exit_code == 2
    assert "--sysadmin-password" in result.stderr
    assert fake.requests == []


def test_subcloud_update_manage_unmanage_bodies(fake: FakeSite) -> None:
    bodies: list[Any] = []

    def patch(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=SUBCLOUD)

    fake.routes[("PATCH", "/v1.0/subclouds/sc-fake")] = patch
    assert run(FAKE_ENV, "subcloud", "update", "sc-fake", "--description", "d",
               "--location", "l", "--group", "g", "--name", "new").exit_code == 0
    assert run(FAKE_ENV, "subcloud", "update", "sc-fake", "--location", "only").exit_code == 0
    assert run(FAKE_ENV, "subcloud", "manage", "sc-fake").exit_code == 0
    assert run(FAKE_ENV, "subcloud", "manage", "sc-fake", "--force").exit_code == 0
    assert run(FAKE_ENV, "subcloud", "unmanage", "sc-fake").exit_code == 0
    assert bodies == [
        {"description": "d", "location": "l", "group_id": "g", "name": "new"},
        {"location": "only"},
        {"management-state": "managed"},
        {"management-state": "managed", "force": "true"},
        {"management-state": "unmanaged"},
    ]


def test_subcloud_update_install_and_rehome_options_and_unmanage_migrate(
    fake: FakeSite, tmp_path: Path
) -> None:
    # What the dcmanager client's `subcloud update` and `subcloud unmanage --migrate` send:
    # files as multipart parts, the BMC password base64, plain fields as they are.
    requests: list[httpx.Request] = []

    def patch(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=SUBCLOUD)

    fake.routes[("PATCH", "/v1.0/subclouds/sc-fake")] = patch
    install = write_yaml(tmp_path / "install.yaml", {"bmc_address": "10.0.0.9"})
    bootstrap = write_yaml(tmp_path / "bootstrap.yaml", bootstrap_values("sc-fake"))
    result = run(FAKE_ENV, "subcloud", "update", "sc-fake", "--install-values", str(install),
                 "--bmc-password", "bmc-pw", "--bootstrap-values", str(bootstrap),
                 "--bootstrap-address", "10.10.10.30", "--description", "d")
    assert result.exit_code == 0, result.output
    assert run(FAKE_ENV, "subcloud", "update", "sc-fake", "--bootstrap-address", "10.10.10.31").exit_code == 0
    assert run(FAKE_ENV, "subcloud", "update", "sc-fake", "--bmc-password", "other").exit_code == 0
    assert run(FAKE_ENV, "subcloud", "unmanage", "sc-fake", "--migrate").exit_code == 0

    multipart, address_only, password_only, migrate = requests
    assert multipart.headers["content-type"].startswith("multipart/form-data")
    parts = _multipart_parts(multipart)
    assert parts == {"description": b"d", "bootstrap_address": b"10.10.10.30",
                     "bmc_password": base64.b64encode(b"bmc-pw"), "install_values": install.read_bytes(),
                     "bootstrap_values": bootstrap.read_bytes()}
    assert json.loads(address_only.content) == {"bootstrap_address": "10.10.10.31"}
    assert json.loads(password_only.content) == {"bmc_password": base64.b64encode(b"other").decode()}
    assert json.loads(migrate.content) == {"management-state": "unmanaged", "migrate": "true"}


def test_subcloud_update_with_install_values_and_no_bmc_password_is_a_usage_error(
    fake: FakeSite, tmp_path: Path
) -> None:
    install = write_yaml(tmp_path / "install.yaml", {"bmc_address": "10.0.0.9"})
    result = run(FAKE_ENV, "subcloud", "update", "sc-fake", "--install-values", str(install))
    assert result.exit_code == 2
    assert "--bmc-password" in result.stderr
    assert fake.requests == []


def test_subcloud_update_without_changes_is_a_usage_error(fake: FakeSite) -> None:
    result = run(FAKE_ENV, "subcloud", "update", "sc-fake")
    assert result.exit_code == 2
    assert "Nothing to update" in result.stderr
    assert fake.requests == []
    # the stand-in --deploy-status option is gone: the deploy phases set the status now
    result = run(FAKE_ENV, "subcloud", "update", "sc-fake", "--deploy-status", "complete")
    assert result.exit_code == 2
    assert "No such option" in result.stderr and "--deploy-status" in result.stderr
    assert fake.requests == []


def test_subcloud_delete_prints_nothing(fake: FakeSite) -> None:
    fake.routes[("DELETE", "/v1.0/subclouds/sc with space")] = lambda r: httpx.Response(200)
    result = run(FAKE_ENV, "subcloud", "delete", "sc with space")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert fake.api_requests()[0].url.raw_path == b"/v1.0/subclouds/sc%20with%20space"


# --- phased deploy, redeploy, errors and --wait --------------------------------------------


def record_route(fake: FakeSite, method: str, path: str,
                 answer: dict[str, Any] | None = None) -> list[httpx.Request]:
    """Answer `method path` with a subcloud (SUBCLOUD by default) and record the requests."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer or SUBCLOUD)

    fake.routes[(method, path)] = handle
    return seen


def test_deploy_create_sends_the_add_form_to_phased_subcloud_deploy(
    fake: FakeSite, tmp_path: Path
) -> None:
    seen = record_route(fake, "POST", "/v1.0/phased-subcloud-deploy",
                        dict(SUBCLOUD, **{"deploy-status": "not-deployed"}))
    bootstrap = write_yaml(tmp_path / "bootstrap.yaml", bootstrap_values("sc-fake"))
    install = write_yaml(tmp_path / "install.yaml", {"bmc_address": "10.0.0.9"})
    deploy = write_yaml(tmp_path / "deploy.yaml", {"hosts": []})
    result = run(
        FAKE_ENV, "subcloud", "deploy", "create",
        "--bootstrap-address", "10.10.10.12",
        "--bootstrap-values", str(bootstrap),
        "--install-values", str(install),
        "--deploy-config", str(deploy),
        "--sysadmin-password", "St8rlingX*",
        "--bmc-password", "bmc-pw",
        "--group", "GroupX",
        "--description", "Ottawa Site",
        "--location", "YOW",
        "--release", "24.09",
        "--format", "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "sc-fake"
    (request,) = seen
    assert [r.url.path for r in fake.api_requests()] == ["/v1.0/phased-subcloud-deploy"]
    assert request.headers["content-type"].startswith("multipart/form-data")
    parts = _multipart_parts(request)
    assert parts == {
        "bootstrap-address": b"10.10.10.12",
        "sysadmin_password": base64.b64encode(b"St8rlingX*"),
        "bmc_password": base64.b64encode(b"bmc-pw"),
        "group_id": b"GroupX",
        "description": b"Ottawa Site",
        "location": b"YOW",
        "release": b"24.09",
        "bootstrap_values": bootstrap.read_bytes(),
        "install_values": install.read_bytes(),
        "deploy_config": deploy.read_bytes(),
    }


def test_deploy_create_needs_what_add_needs(fake: FakeSite, tmp_path: Path) -> None:
    result = run(FAKE_ENV, "subcloud", "deploy", "create", "--bootstrap-address", "1.2.3.4")
    assert result.exit_code == 2 and "--bootstrap-values" in result.stderr
    bootstrap = write_yaml(tmp_path / "b.yaml", bootstrap_values("sc-x"))
    result = run(FAKE_ENV, "subcloud", "deploy", "create", "--bootstrap-address", "1.2.3.4",
                 "--bootstrap-values", str(bootstrap))
    assert result.exit_code == 2 and "--sysadmin-password" in result.stderr
    assert fake.requests == []


def test_deploy_phase_verbs_send_multipart_with_files_and_json_without(
    fake: FakeSite, tmp_path: Path
) -> None:
    base = "/v1.0/phased-subcloud-deploy/sc-fake"
    seen = {verb: record_route(fake, "PATCH", f"{base}/{verb}")
            for verb in ("install", "bootstrap", "configure", "complete", "abort", "resume")}
    install = write_yaml(tmp_path / "install.yaml", {"bmc_address": "10.0.0.9"})
    bootstrap = write_yaml(tmp_path / "bootstrap.yaml", bootstrap_values("sc-fake"))
    deploy = write_yaml(tmp_path / "deploy.yaml", {"hosts": []})
    b64 = lambda text: base64.b64encode(text.encode())  # noqa: E731

    def ok(*args: str) -> None:
        result = run(FAKE_ENV, "subcloud", "deploy", *args)
        assert result.exit_code == 0, (args, result.output)
        assert "sc-fake" in result.stdout

    ok("install", "sc-fake", "--install-values", str(install), "--bmc-password", "bmc-pw",
       "--sysadmin-password", "St8rlingX*", "--release", "24.09")
    ok("install", "sc-fake")
    ok("bootstrap", "sc-fake", "--bootstrap-values", str(bootstrap),
       "--bootstrap-address", "10.10.10.12", "--sysadmin-password", "pw")
    ok("bootstrap", "sc-fake", "--bootstrap-address", "10.10.10.13")
    ok("config", "sc-fake", "--deploy-config", str(deploy), "--sysadmin-password", "pw")
    ok("config", "sc-fake", "--sysadmin-password", "pw")
    ok("complete", "sc-fake")
    ok("abort", "sc-fake")
    ok("resume", "sc-fake", "--install-values", str(install), "--bootstrap-values", str(bootstrap),
       "--deploy-config", str(deploy), "--bootstrap-address", "10.10.10.12",
       "--bmc-password", "bmc-pw", "--sysadmin-password", "pw", "--release", "24.09")
    ok("resume", "sc-fake")

    def multipart(request: httpx.Request) -> dict[str, bytes]:
        assert request.headers["content-type"].startswith("multipart/form-data")
        return _multipart_parts(request)

    def as_json(request: httpx.Request) -> Any:
        assert request.headers["content-type"] == "application/json"
        return json.loads(request.content)

    first, second = seen["install"]
    assert multipart(first) == {"install_values": install.read_bytes(), "bmc_password": b64("bmc-pw"),
                                "sysadmin_password": b64("St8rlingX*"), "release": b"24.09"}
    assert as_json(second) == {}
    first, second = seen["bootstrap"]
    assert multipart(first) == {"bootstrap_values": bootstrap.read_bytes(),
                                "bootstrap-address": b"10.10.10.12", "sysadmin_password": b64("pw")}
    assert as_json(second) == {"bootstrap-address": "10.10.10.13"}
    first, second = seen["configure"]
    assert multipart(first) == {"deploy_config": deploy.read_bytes(), "sysadmin_password": b64("pw")}
    assert as_json(second) == {"sysadmin_password": b64("pw").decode()}
    assert [as_json(r) for r in seen["complete"]] == [{}]
    assert [as_json(r) for r in seen["abort"]] == [{}]
    first, second = seen["resume"]
    assert multipart(first) == {
        "install_values": install.read_bytes(), "bootstrap_values": bootstrap.read_bytes(),
        "deploy_config": deploy.read_bytes(), "bootstrap-address": b"10.10.10.12",
        "bmc_password": b64("bmc-pw"), "sysadmin_password": b64("pw"), "release": b"24.09"}
    assert as_json(second) == {}
    assert all(r.method == "PATCH" for r in fake.api_requests())


def test_redeploy_sends_patch_redeploy(fake: FakeSite, tmp_path: Path) -> None:
    seen = record_route(fake, "PATCH", "/v1.0/subclouds/sc x/redeploy")
    install = write_yaml(tmp_path / "install.yaml", {"bmc_address": "10.0.0.9"})
    deploy = write_yaml(tmp_path / "deploy.yaml", {"hosts": []})
    result = run(FAKE_ENV, "subcloud", "redeploy", "sc x", "--install-values", str(install),
                 "--deploy-config", str(deploy), "--bmc-password", "b", "--sysadmin-password", "s",
                 "--release", "24.09")
    assert result.exit_code == 0, result.output
    assert run(FAKE_ENV, "subcloud", "redeploy", "sc x").exit_code == 0
    first, second = seen
    assert first.url.raw_path == b"/v1.0/subclouds/sc%20x/redeploy"
    assert _multipart_parts(first) == {
        "install_values": install.read_bytes(), "deploy_config": deploy.read_bytes(),
        "bmc_password": base64.b64encode(b"b"), "sysadmin_password": base64.b64encode(b"s"),
        "release": b"24.09"}
    assert json.loads(second.content) == {}


@pytest.mark.parametrize("args, message", [
    (("subcloud", "deploy", "install", "sc", "--bmc-password", "b"), "--bmc-password"),
    (("subcloud", "deploy", "install", "sc", "--release", "24.09"), "--release"),
    (("subcloud", "deploy", "resume", "sc", "--bmc-password", "b"), "--bmc-password"),
    (("subcloud", "redeploy", "sc", "--release", "24.09"), "--release"),
    (("subcloud", "deploy", "install"), "SUBCLOUD"),
    (("subcloud", "deploy", "bootstrap", "sc", "--install-values", "x"), "No such option"),
])
def test_deploy_usage_errors_send_nothing(fake: FakeSite, args: tuple[str, ...],
                                          message: str) -> None:
    result = run(FAKE_ENV, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert fake.requests == []


def test_install_values_without_bmc_password_is_a_usage_error(
    fake: FakeSite, tmp_path: Path
) -> None:
    install = write_yaml(tmp_path / "install.yaml", {"bmc_address": "10.0.0.9"})
    result = run(FAKE_ENV, "subcloud", "deploy", "install", "sc", "--install-values", str(install))
    assert result.exit_code == 2 and "--bmc-password" in result.stderr
    assert fake.requests == []


def test_subcloud_errors_prints_the_error_description(fake: FakeSite) -> None:
    message = "bootstrap failed: simulated failure (fault fail_phase=bootstrap).\nsee the log"
    fake.routes[("GET", "/v1.0/subclouds/sc-fake")] = lambda r: httpx.Response(
        200, json=dict(SUBCLOUD, **{"deploy-status": "bootstrap-failed",
                                    "error-description": message}))
    result = run(FAKE_ENV, "subcloud", "errors", "sc-fake")
    assert result.exit_code == 0, result.output
    assert result.stdout == message + "\n"

    fake.routes[("GET", "/v1.0/subclouds/other")] = lambda r: httpx.Response(200, json=SUBCLOUD)
    assert run(FAKE_ENV, "subcloud", "errors", "other").stdout == "No errors present\n"
    assert_clean_error(run(FAKE_ENV, "subcloud", "errors", "nobody"), "No such route")


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from dcman.cli import follow

    monkeypatch.setattr(follow, "POLL_INTERVAL_S", 0.0)


def states_route(fake: FakeSite, states: list[tuple[str, int | None]],
                 **extra: Any) -> list[httpx.Request]:
    """GET /subclouds/7 answers these (deploy-status, deploy-progress) in turn, then the last."""
    polls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        polls.append(request)
        status, percent = states[min(len(polls), len(states)) - 1]
        return httpx.Response(200, json=dict(SUBCLOUD, **extra, **{
            "deploy-status": status, "deploy-progress": percent}))

    fake.routes[("GET", "/v1.0/subclouds/7")] = handle
    return polls


def test_add_wait_follows_the_deploy_until_complete(
    fake: FakeSite, tmp_path: Path, no_wait: None
) -> None:
    record_route(fake, "POST", "/v1.0/subclouds")
    polls = states_route(fake, [("creating", None), ("create-complete", None),
                                ("pre-bootstrap", 0), ("bootstrapping", 10), ("bootstrapping", 60),
                                ("complete", 100)])
    bootstrap = write_yaml(tmp_path / "b.yaml", bootstrap_values("sc-fake"))
    result = run(FAKE_ENV, "subcloud", "add", "--bootstrap-address", "10.10.10.12",
                 "--bootstrap-values", str(bootstrap), "--sysadmin-password", "pw", "--wait",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)  # only the final subcloud is printed
    assert shown["deploy-status"] == "complete" and shown["deploy-progress"] == 100
    assert len(polls) == 6
    assert all(r.url.path == "/v1.0/subclouds/7" for r in polls)  # by id, as answered
    # without a terminal, each new deploy status is one line on stderr
    assert result.stderr.splitlines() == [
        "sc-fake: not-deployed", "sc-fake: creating", "sc-fake: create-complete",
        "sc-fake: pre-bootstrap (0%)", "sc-fake: bootstrapping (10%)", "sc-fake: complete (100%)"]


def test_add_wait_exits_1_with_the_error_description_on_failure(
    fake: FakeSite, tmp_path: Path, no_wait: None
) -> None:
    record_route(fake, "POST", "/v1.0/subclouds")
    message = "bootstrap failed: simulated failure (fault fail_phase=bootstrap)."
    states_route(fake, [("bootstrapping", 30), ("bootstrap-failed", 55)],
                 **{"error-description": message})
    bootstrap = write_yaml(tmp_path / "b.yaml", bootstrap_values("sc-fake"))
    result = run(FAKE_ENV, "subcloud", "add", "--bootstrap-address", "10.10.10.12",
                 "--bootstrap-values", str(bootstrap), "--sysadmin-password", "pw", "--wait")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in result.output
    assert "bootstrap-failed" in result.stdout  # the final subcloud is still shown


@pytest.mark.parametrize("args, states, code", [
    (("create", "--bootstrap-address", "1.2.3.4", "--bootstrap-values", "{bootstrap}",
      "--sysadmin-password", "pw"), ["creating", "create-complete"], 0),
    (("install", "sc-fake"), ["installing", "install-complete"], 0),
    (("install", "sc-fake"), ["installing", "install-aborted"], 1),
    (("bootstrap", "sc-fake"), ["bootstrapping", "bootstrap-complete"], 0),
    (("bootstrap", "sc-fake"), ["pre-bootstrap-failed"], 1),
    (("config", "sc-fake"), ["configuring", "complete"], 0),
    (("config", "sc-fake"), ["configuring", "config-failed"], 1),
    (("resume", "sc-fake"), ["installing", "install-complete", "bootstrapping", "complete"], 0),
    (("abort", "sc-fake"), ["aborting-config", "config-aborted"], 0),
    (("abort", "sc-fake"), ["aborting-config", "config-failed"], 1),
])
def test_deploy_verbs_wait_for_their_final_state(
    fake: FakeSite, tmp_path: Path, no_wait: None, args: tuple[str, ...], states: list[str],
    code: int,
) -> None:
    for verb in ("install", "bootstrap", "configure", "abort", "resume"):
        record_route(fake, "PATCH", f"/v1.0/phased-subcloud-deploy/sc-fake/{verb}",
                     dict(SUBCLOUD, **{"deploy-status": "pre-x"}))
    record_route(fake, "POST", "/v1.0/phased-subcloud-deploy")
    polls = states_route(fake, [(s, None) for s in states])
    bootstrap = write_yaml(tmp_path / "b.yaml", bootstrap_values("sc-fake"))
    args = tuple(a.format(bootstrap=bootstrap) for a in args)
    result = run(FAKE_ENV, "subcloud", "deploy", *args, "--wait")
    assert result.exit_code == code, result.output
    assert len(polls) == len(states)
    assert f"sc-fake: {states[-1]}" in result.stderr
    if code:
        assert result.stderr.splitlines()[-1].startswith("Error: ")


def test_complete_wait_ends_at_once_when_the_answer_is_final(fake: FakeSite, no_wait: None) -> None:
    record_route(fake, "PATCH", "/v1.0/phased-subcloud-deploy/sc-fake/complete",
                 dict(SUBCLOUD, **{"deploy-status": "complete"}))
    polls = states_route(fake, [("complete", None)])
    result = run(FAKE_ENV, "subcloud", "deploy", "complete", "sc-fake", "--wait")
    assert result.exit_code == 0, result.output
    assert polls == []


def test_wait_signs_in_again_when_the_token_expires(fake: FakeSite, no_wait: None) -> None:
    record_route(fake, "PATCH", "/v1.0/phased-subcloud-deploy/sc-fake/resume",
                 dict(SUBCLOUD, **{"deploy-status": "pre-bootstrap"}))
    answers = iter([httpx.Response(401, json={"error_message": {"faultstring": "expired"}}),
                    httpx.Response(200, json=dict(SUBCLOUD, **{"deploy-status": "complete"}))])
    fake.routes[("GET", "/v1.0/subclouds/7")] = lambda r: next(answers)
    result = run(FAKE_ENV, "subcloud", "deploy", "resume", "sc-fake", "--wait")
    assert result.exit_code == 0, result.output
    assert [r.url.path for r in fake.requests].count("/v3/auth/tokens") == 2


def test_wait_failure_without_description_names_the_state(fake: FakeSite, no_wait: None) -> None:
    record_route(fake, "PATCH", "/v1.0/subclouds/sc-fake/redeploy",
                 dict(SUBCLOUD, **{"deploy-status": "pre-install"}))
    states_route(fake, [("install-failed", None)])
    result = run(FAKE_ENV, "subcloud", "redeploy", "sc-fake", "--wait")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: the deploy of subcloud sc-fake ended in install-failed")


def test_group_add_defaults_and_update_body(fake: FakeSite) -> None:
    bodies: list[tuple[str, Any]] = []

    def record(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append((request.method, body))
        return httpx.Response(200, json={"id": 2, **body})

    fake.routes[("POST", "/v1.0/subcloud-groups")] = record
    fake.routes[("PATCH", "/v1.0/subcloud-groups/GroupX")] = record
    assert run(FAKE_ENV, "subcloud-group", "add", "--name", "GroupX").exit_code == 0
    result = run(FAKE_ENV, "subcloud-group", "update", "GroupX", "--update-apply-type",
                 "serial", "--max-parallel-subclouds", "5")
    assert result.exit_code == 0, result.output
    assert bodies == [
        ("POST", {"name": "GroupX", "description": "No description provided",
                  "update_apply_type": "parallel", "max_parallel_subclouds": 2}),
        ("PATCH", {"update_apply_type": "serial", "max_parallel_subclouds": 5}),
    ]
    assert run(FAKE_ENV, "subcloud-group", "update", "GroupX").exit_code == 2


def test_alarm_summary_columns(fake: FakeSite) -> None:
    fake.routes[("GET", "/v1.0/alarms")] = lambda r: httpx.Response(200, json={"alarm_summary": [
        {"region_name": "sc-fake", "uuid": "u", "critical_alarms": -1, "major_alarms": -1,
         "minor_alarms": -1, "warnings": -1, "cloud_status": "disabled"}]})
    result = run(FAKE_ENV, "alarm", "summary")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "critical_alarms" in line)
    headings = [h.strip() for h in header.strip("┃│ ").replace("┃", "│").split("│")]
    assert headings == ["name", "critical_alarms", "major_alarms", "minor_alarms",
                        "warnings", "cloud_status"]
    assert "sc-fake" in result.stdout and "disabled" in result.stdout


@pytest.mark.parametrize(
    "response, message",
    [
        (httpx.Response(422, json={"error_message": {
            "title": "Unprocessable", "code": 422,
            "faultstring": "Subcloud is already unmanaged."}}), "Subcloud is already unmanaged."),
        # dcmanager itself sends the error object JSON-encoded in a string
        (httpx.Response(400, json={"error_message": json.dumps(
            {"faultcode": "Client", "faultstring": "Invalid group."})}), "Invalid group."),
        (httpx.Response(502, text="Bad gateway from the proxy"), "Bad gateway from the proxy"),
    ],
)
def test_api_errors_print_the_faultstring(fake: FakeSite, response: httpx.Response,
                                          message: str) -> None:
    fake.routes[("GET", "/v1.0/subcloud-groups")] = lambda r: response
    result = run(FAKE_ENV, "subcloud-group", "list")
    assert_clean_error(result)
    assert result.stderr.strip() == f"Error: {message}"


def test_an_unexpected_answer_is_a_clean_error(fake: FakeSite) -> None:
    fake.routes[("GET", "/v1.0/subclouds")] = lambda r: httpx.Response(200, json=["not", "it"])
    fake.routes[("GET", "/v1.0/subclouds/x")] = lambda r: httpx.Response(200, text="<html>")
    assert_clean_error(run(FAKE_ENV, "subcloud", "list"), "without a list of 'subclouds'")
    assert_clean_error(run(FAKE_ENV, "subcloud", "show", "x"), "not JSON")


def test_a_bad_url_is_a_clean_error() -> None:
    result = run(dict(FAKE_ENV, DCMAN_URL="ftp://site.example"), "subcloud", "list")
    assert_clean_error(result, "invalid dcman site URL")
    result = run(dict(FAKE_ENV, DCMAN_URL="http://site.example:notaport"), "subcloud", "list")
    assert_clean_error(result)


def test_wrong_password_is_a_clean_error(fake: FakeSite) -> None:
    result = run(dict(FAKE_ENV, DCMAN_PASSWORD="wrong"), "alarm", "summary")
    assert_clean_error(result, "authentication", "admin")


def test_options_override_the_environment(fake: FakeSite) -> None:
    fake.routes[("GET", "/v1.0/alarms")] = lambda r: httpx.Response(200, json={"alarm_summary": []})
    env = {"DCMAN_URL": "http://elsewhere.example", "DCMAN_USER": "bob", "DCMAN_PASSWORD": "bad"}
    result = run(env, "alarm", "--url", FAKE_URL, "--user", "carol", "--password", "secret",
                 "summary")
    assert result.exit_code == 0, result.output
    token_request = fake.requests[0]
    assert str(token_request.url) == f"{FAKE_URL}/v3/auth/tokens"
    identity = json.loads(token_request.content)["auth"]["identity"]
    assert identity["password"]["user"]["name"] == "carol"


def test_unreachable_site_is_a_clean_error_from_the_installed_command() -> None:
    env = dict(os.environ, DCMAN_URL="http://127.0.0.1:9", DCMAN_PASSWORD="x")
    proc = subprocess.run([str(DCMAN_BIN), "subcloud", "list"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: cannot reach the dcman site at http://127.0.0.1:9")
    assert "Traceback" not in proc.stderr


def test_client_error_carries_status_and_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v3/auth/tokens":
            return httpx.Response(201, headers={"X-Subject-Token": "t"}, json={"token": {}})
        return httpx.Response(404, json={"error_message": {
            "title": "Not Found", "code": 404, "faultstring": "Subcloud not found."}})

    with SiteClient("http://h:1/v3", "admin", "pw", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ClientError) as info:
            c.get("/subclouds/nope")
        assert c.api_base == "http://h:1/v1.0"  # no dcmanager service: the site's /v1.0
    assert info.value.status_code == 404
    assert info.value.message == "Subcloud not found."


# ---------------------------------------------------------------------------------------
# scenario tests against a real site
# ---------------------------------------------------------------------------------------

DEPLOYING = {
    "creating", "pre-install", "installing", "pre-bootstrap", "bootstrapping",
    "pre-config", "configuring", "pre-deploy", "pre-rehome", "rehoming", "pre-restore",
    "restoring", "deploying",
}


class Operator:
    """Runs `dcman` commands against the test site, as an operator would."""

    def __init__(self, site: Any, tmp_path: Path) -> None:
        self.site = site
        self.tmp_path = tmp_path
        self.env: dict[str, str | None] = {
            "DCMAN_URL": site.url,
            "DCMAN_USER": site.admin_user,
            "DCMAN_PASSWORD": site.admin_password,
        }

    def __call__(self, *args: str) -> Result:
        return run(self.env, *args)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--format", "json").stdout)

    def add_group(self, name: str, *options: str) -> dict[str, Any]:
        return self.json("subcloud-group", "add", "--name", name, *options)

    def add_subcloud(self, name: str, *options: str) -> dict[str, Any]:
        bootstrap = write_yaml(self.tmp_path / f"{name}-bootstrap.yaml", bootstrap_values(name))
        return self.json(
            "subcloud", "add",
            "--bootstrap-address", "10.10.10.12",
            "--bootstrap-values", str(bootstrap),
            "--sysadmin-password", "St8rlingX*",
            *options,
        )

    def wait_until_settled(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the subcloud's deploy is no longer running (no agent answers here)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.json("subcloud", "show", name)
            if shown["deploy-status"] not in DEPLOYING or time.monotonic() > deadline:
                return shown
            time.sleep(0.5)

    def delete_subcloud(self, name: str) -> None:
        self.wait_until_settled(name)
        result = self.ok("subcloud", "delete", name)
        assert result.stdout == ""


@pytest.fixture
def dcman(site: Any, tmp_path: Path) -> Operator:
    return Operator(site, tmp_path)


def test_subcloud_lifecycle_through_the_cli(dcman: Operator) -> None:
    group = unique("grp")
    name = unique("sc")

    # add a group, then a subcloud in it from a bootstrap-values file
    created_group = dcman.add_group(group, "--description", "Ottawa sites")
    assert created_group["name"] == group
    assert created_group["description"] == "Ottawa sites"
    assert created_group["update_apply_type"] == "parallel"
    assert int(created_group["max_parallel_subclouds"]) == 2

    added = dcman.add_subcloud(name, "--group", group, "--description", "first site",
                               "--location", "YOW")
    assert added["name"] == name
    assert added["group_id"] == created_group["id"]
    assert added["management-state"] == "unmanaged"

    # the list shows it (table and JSON), and so does its group
    table = dcman.ok("subcloud", "list").stdout
    row = next(line for line in table.splitlines() if name in line)
    assert "unmanaged" in row
    listed = dcman.json("subcloud", "list")
    assert isinstance(listed, list)
    (mine,) = [s for s in listed if s["name"] == name]
    assert mine["group_id"] == created_group["id"]
    assert [s["name"] for s in dcman.json("subcloud-group", "list-subclouds", group)] == [name]
    assert name in dcman.ok("subcloud-group", "list-subclouds", group).stdout

    # show, by name and by id, also as YAML and in detail
    shown = dcman.json("subcloud", "show", name)
    assert shown["id"] == added["id"]
    assert shown["description"] == "first site" and shown["location"] == "YOW"
    assert dcman.json("subcloud", "show", str(added["id"]))["name"] == name
    as_yaml = yaml.safe_load(dcman.ok("subcloud", "show", name, "--format", "yaml").stdout)
    assert as_yaml["name"] == name
    detail = dcman.json("subcloud", "show", name, "--detail")
    assert "oam_floating_ip" in detail
    assert "management-state" in dcman.ok("subcloud", "show", name).stdout

    # update the description and location
    updated = dcman.json("subcloud", "update", name, "--description", "moved",
                         "--location", "YUL")
    assert updated["description"] == "moved" and updated["location"] == "YUL"

    # unmanage of an unmanaged subcloud: the server's error, exit code 1
    result = dcman("subcloud", "unmanage", name)
    assert_clean_error(result, "already unmanaged")

    # the alarm summary lists the subcloud
    summary = dcman.json("alarm", "summary")
    assert name in [entry["region_name"] for entry in summary]
    assert name in dcman.ok("alarm", "summary").stdout

    # delete: gone from the list; its group can then be deleted too
    dcman.delete_subcloud(name)
    assert name not in [s["name"] for s in dcman.json("subcloud", "list")]
    assert_clean_error(dcman("subcloud", "show", name))
    dcman.ok("subcloud-group", "delete", group)
    assert group not in [g["name"] for g in dcman.json("subcloud-group", "list")]


def mark_deployed(site: Any, name: str) -> None:
    """Finish a subcloud's deploy in the site's database, as the deploy would with an agent."""
    from sqlalchemy import create_engine, update

    from dcman.db.tables import subclouds

    engine = create_engine(f"sqlite:///{site.data_dir / 'dcman.sqlite'}")
    try:
        with engine.begin() as conn:
            changed = conn.execute(
                update(subclouds).where(subclouds.c.name == name).values(deploy_status="complete")
            ).rowcount
    finally:
        engine.dispose()
    assert changed == 1


def test_subcloud_move_to_another_group_and_rename(dcman: Operator) -> None:
    first, second = unique("grp"), unique("grp")
    name, new_name = unique("sc"), unique("sc-renamed")
    dcman.add_group(first)
    moved_to = dcman.add_group(second)
    dcman.add_subcloud(name, "--group", first)

    # move it to the second group
    moved = dcman.json("subcloud", "update", name, "--group", second)
    assert moved["group_id"] == moved_to["id"]
    assert dcman.json("subcloud-group", "list-subclouds", first) == []

    # a subcloud whose deploy has not completed cannot be renamed
    dcman.wait_until_settled(name)
    assert_clean_error(dcman("subcloud", "update", name, "--name", new_name), "complete")

    # once deployed, it can
    mark_deployed(dcman.site, name)
    renamed = dcman.json("subcloud", "update", name, "--name", new_name)
    assert renamed["name"] == new_name
    assert dcman.json("subcloud", "show", new_name)["id"] == moved["id"]
    assert_clean_error(dcman("subcloud", "show", name), "not found")
    listed = dcman.json("subcloud-group", "list-subclouds", second)
    assert [s["name"] for s in listed] == [new_name]

    dcman.delete_subcloud(new_name)
    dcman.ok("subcloud-group", "delete", first)
    dcman.ok("subcloud-group", "delete", second)


def test_subcloud_rehome_data_install_values_and_migrate_mark_through_the_cli(dcman: Operator) -> None:
    name = unique("sc")
    dcman.add_subcloud(name)
    dcman.wait_until_settled(name)
    mark_deployed(dcman.site, name)

    # the bootstrap address needs rehome data first; the values bring it
    assert_clean_error(dcman("subcloud", "update", name, "--bootstrap-address", "10.10.10.40"), "rehome data")
    values = dict(bootstrap_values(name), admin_password="Adm1n-secret")
    bootstrap = write_yaml(dcman.tmp_path / "rehome.yaml", values)
    updated = dcman.json("subcloud", "update", name, "--bootstrap-values", str(bootstrap),
                         "--bootstrap-address", "10.10.10.40")
    saved = json.loads(updated["rehome_data"])["saved_payload"]
    assert saved == {**{k: v for k, v in values.items() if k != "admin_password"}, "bootstrap-address": "10.10.10.40"}

    # install values: stored and shown without the BMC password; bad ones are refused
    install = write_yaml(dcman.tmp_path / "install.yaml", {
        "bootstrap_interface": "eno1", "bootstrap_address": "10.10.10.12", "bootstrap_address_prefix": 24,
        "install_type": 3, "bmc_username": "root", "bmc_address": "10.10.10.20"})
    shown = dcman.json("subcloud", "update", name, "--install-values", str(install), "--bmc-password", "Bmc-pw-1")
    assert shown["data_install"]["bmc_address"] == "10.10.10.20"
    assert "bmc_password" not in shown["data_install"] and "Bmc-pw-1" not in json.dumps(shown)
    bad = write_yaml(dcman.tmp_path / "bad-install.yaml", {"install_type": 9})
    assert_clean_error(dcman("subcloud", "update", name, "--install-values", str(bad), "--bmc-password", "x"),
                       "install value")

    # unmanage --migrate marks it rehome-pending; managing it again completes it
    dcman.ok("subcloud", "manage", name, "--force")
    marked = dcman.json("subcloud", "unmanage", name, "--migrate")
    assert (marked["management-state"], marked["deploy-status"]) == ("unmanaged", "rehome-pending")
    assert dcman.json("subcloud", "manage", name, "--force")["deploy-status"] == "complete"
    dcman.ok("subcloud", "unmanage", name)
    dcman.delete_subcloud(name)


def test_subcloud_manage_of_an_offline_subcloud_is_refused(dcman: Operator) -> None:
    name = unique("sc")
    dcman.add_subcloud(name)
    assert_clean_error(dcman("subcloud", "manage", name))
    assert dcman.json("subcloud", "show", name)["management-state"] == "unmanaged"
    dcman.delete_subcloud(name)


def test_subcloud_group_commands(dcman: Operator) -> None:
    name, new_name = unique("grp"), unique("grp-new")
    created = dcman.add_group(name, "--update-apply-type", "serial",
                              "--max-parallel-subclouds", "5")
    assert created["update_apply_type"] == "serial"
    assert int(created["max_parallel_subclouds"]) == 5
    assert created["description"] == "No description provided"

    table = dcman.ok("subcloud-group", "list").stdout
    assert name in table and "Default" in table
    assert dcman.json("subcloud-group", "show", name)["id"] == created["id"]
    assert "update_apply_type" in dcman.ok("subcloud-group", "show", name).stdout

    updated = dcman.json("subcloud-group", "update", name, "--name", new_name,
                         "--description", "renamed", "--update-apply-type", "parallel",
                         "--max-parallel-subclouds", "3")
    assert updated["name"] == new_name and updated["description"] == "renamed"
    assert updated["update_apply_type"] == "parallel"
    assert int(updated["max_parallel_subclouds"]) == 3
    assert dcman.json("subcloud-group", "list-subclouds", new_name) == []

    # a taken name is refused by the server, shown as one error line
    assert_clean_error(dcman("subcloud-group", "add", "--name", new_name))
    # the Default group cannot be deleted
    assert_clean_error(dcman("subcloud-group", "delete", "Default"))

    assert dcman.ok("subcloud-group", "delete", new_name).stdout == ""
    assert_clean_error(dcman("subcloud-group", "show", new_name))


def test_unknown_subcloud_is_a_clean_error(dcman: Operator) -> None:
    result = dcman("subcloud", "show", unique("nobody"))
    assert_clean_error(result)
    assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_bootstrap_values_are_refused_by_the_server(dcman: Operator) -> None:
    name = unique("sc")
    values = bootstrap_values(name)
    values["systemcontroller_gateway_address"] = "172.31.0.1"  # not in 127.0.0.0/16
    bootstrap = write_yaml(dcman.tmp_path / "bad.yaml", values)
    result = dcman("subcloud", "add", "--bootstrap-address", "10.10.10.12",
                   "--bootstrap-values", str(bootstrap), "--sysadmin-password", "St8rlingX*")
    assert_clean_error(result)
    assert name not in [s["name"] for s in dcman.json("subcloud", "list")]


def test_missing_password_is_a_clear_error(dcman: Operator) -> None:
    dcman.env["DCMAN_PASSWORD"] = None
    result = dcman("subcloud", "list")
    assert_clean_error(result, "DCMAN_PASSWORD")


def test_wrong_password_against_the_site(dcman: Operator) -> None:
    dcman.env["DCMAN_PASSWORD"] = "not-the-password"
    assert_clean_error(dcman("subcloud-group", "list"), "authentication")


def test_installed_command_against_the_site(site: Any) -> None:
    env = dict(os.environ, DCMAN_URL=site.url, DCMAN_USER=site.admin_user,
               DCMAN_PASSWORD=site.admin_password)
    proc = subprocess.run([str(DCMAN_BIN), "subcloud-group", "list", "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Default" in [g["name"] for g in json.loads(proc.stdout)]

    proc = subprocess.run([str(DCMAN_BIN), "subcloud", "show", unique("nobody")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr
