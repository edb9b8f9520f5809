"""`dcman site` and `dcman system-peer` against a real site (the session fixture `site`)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
from click.testing import CliRunner, Result

from conftest import token_for
from dcman.cli.main import cli


class Operator:
    def __init__(self, site: Any) -> None:
        self.site = site
        self.env = {"DCMAN_URL": site.url, "DCMAN_USER": site.admin_user, "DCMAN_PASSWORD": site.admin_password}

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--format", "json").stdout)


def assert_clean_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment.lower() in result.stderr.lower(), result.stderr


def test_site_show(site) -> None:
    dcman = Operator(site)
    shown = dcman.json("site", "show")
    identity = httpx.get(site.url + "/v1.0/system", headers={"X-Auth-Token": token_for(site)}, timeout=10).json()
    assert shown == identity and uuid.UUID(shown["uuid"]) and shown["name"]
    table = dcman.ok("site", "show").stdout
    assert shown["uuid"] in table and shown["name"] in table


def test_system_peer_add_list_show_update_delete(site) -> None:
    dcman = Operator(site)
    peer_uuid, name = str(uuid.uuid4()), f"peer-{uuid.uuid4().hex[:8]}"
    added = dcman.json(
        "system-peer", "add", "--peer-uuid", peer_uuid, "--peer-name", name,
        "--manager-endpoint", "http://10.10.10.2:5000/v3", "--manager-username", "admin",
        "--manager-password", "S3cret!", "--peer-controller-gateway-address", "10.10.10.1",
        "--heartbeat-interval", "20",
    )
    assert (added["peer-uuid"], added["peer-name"], added["heartbeat-interval"], added["heartbeat-failure-policy"],
            added["availability-state"]) == (peer_uuid, name, 20, "alarm", "created")
    assert "S3cret!" not in json.dumps(added)
    assert name in dcman.ok("system-peer", "list").stdout
    assert [p["id"] for p in dcman.json("system-peer", "list") if p["peer-uuid"] == peer_uuid] == [added["id"]]
    for ref in (name, peer_uuid, str(added["id"])):
        assert dcman.json("system-peer", "show", ref)["peer-name"] == name
    assert "manager-endpoint" in dcman.ok("system-peer", "show", name).stdout

    updated = dcman.json("system-peer", "update", name, "--administrative-state", "disabled",
                         "--heartbeat-failure-policy", "rehome")
    assert (updated["administrative-state"], updated["heartbeat-failure-policy"]) == ("disabled", "rehome")
    assert dcman("system-peer", "update", name).exit_code == 2
    assert dcman.json("system-peer", "list-subcloud-peer-groups", name) == []

    # the site's own identity cannot be a peer; a duplicate is a conflict
    own = dcman.json("site", "show")["uuid"]
    base = ["--manager-endpoint", "http://10.10.10.2:5000/v3", "--manager-username", "admin",
            "--manager-password", "x", "--peer-controller-gateway-address", "10.10.10.1"]
    assert_clean_error(dcman("system-peer", "add", "--peer-uuid", own, "--peer-name", f"{name}-me", *base), "own")
    assert_clean_error(dcman("system-peer", "add", "--peer-uuid", peer_uuid, "--peer-name", f"{name}-2", *base),
                       "already exists")
    assert_clean_error(dcman("system-peer", "add", "--peer-uuid", str(uuid.uuid4()), "--peer-name", f"{name}-3",
                             *base, "--heartbeat-interval", "5"), "10 to 600")

    result = dcman.ok("system-peer", "delete", name)
    assert result.stdout == ""
    assert_clean_error(dcman("system-peer", "show", name), "not found")


def test_the_password_goes_over_the_wire_base64_encoded(site, monkeypatch) -> None:
    sent: list[dict] = []
    original = httpx.Client.request

    def record(self, method, url, **kwargs):
        if method == "POST" and str(url).endswith("/system-peers"):
            sent.append(kwargs["json"])
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(httpx.Client, "request", record)
    dcman = Operator(site)
    name = f"peer-{uuid.uuid4().hex[:8]}"
    dcman.ok("system-peer", "add", "--peer-uuid", str(uuid.uuid4()), "--peer-name", name,
             "--manager-endpoint", "https://peer.example/v3", "--manager-username", "admin",
             "--manager-password", "pässword", "--peer-controller-gateway-address", "fd00::1")
    assert base64.b64decode(sent[0]["manager_password"]).decode() == "pässword"
    assert set(sent[0]) == {"peer_uuid", "peer_name", "manager_endpoint", "manager_username", "manager_password",
                            "peer_controller_gateway_address"}
    dcman.ok("system-peer", "delete", name)
