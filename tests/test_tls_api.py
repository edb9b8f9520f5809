"""TLS on the site's API and between sites (issue 14): real `dcman serve` processes with
certificates from a private CA made in the test, the CLI and a Keystone client over HTTPS, and
a second site peered over HTTPS."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic

from dcman.cli.client import ClientError, SiteClient
from dcman.drivers.peer_site import PeerError, PeerSite
from dcman.tls import server_context

from conftest import (ADMIN_PASSWORD, ADMIN_USER, DCMAN, RunningSite, start_site_process, stop_site_process,
                      token_for)
from pki import Authority, make_authority
from simfleet import wait_until

SITE2_HOST = "127.50.0.1"  # the second site on its own loopback address and subnet, as in test_geo
SITE2_SETTINGS = {"DCMAN_SYSTEM_CONTROLLER_SUBNET": "127.50.0.0/16"}


@dataclass
class Pki:
    ca: Authority
    other: Authority  # a CA that issued none of the sites' certificates
    site1: tuple[Path, Path]
    site2: tuple[Path, Path]

    def tls(self, holder: tuple[Path, Path]) -> tuple[Path, Path, Path]:
        return (*holder, self.ca.cert_file)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_authority(directory, "fleet")
    return Pki(ca, make_authority(directory, "other"), ca.issue("site1", ips=("127.0.0.1",)),
               ca.issue("site2", ips=(SITE2_HOST,)))


@pytest.fixture(scope="module")
def site(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSite]:
    running = start_site_process(tmp_path_factory.mktemp("tls-site"), {"DCMAN_PEER_CA_FILE": str(pki.ca.cert_file)},
                                 tls=pki.tls(pki.site1))
    yield running
    stop_site_process(running)


def dcman(site: RunningSite, *args: str, ca_file: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """The CLI as an operator runs it; DCMAN_CA_FILE only when given (the site's env() sets it)."""
    full = {k: v for k, v in site.env().items() if k not in ("DCMAN_CA_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    if ca_file is not None:
        full["DCMAN_CA_FILE"] = ca_file
    return subprocess.run([DCMAN, *args], env={**full, **env}, capture_output=True, text=True, timeout=60)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# --- the API over HTTPS -----------------------------------------------------------------------


def test_the_site_serves_https_only_and_its_links_say_https(site: RunningSite) -> None:
    assert site.url.startswith("https://127.0.0.1:")
    assert f"serving on {site.url} " in site.log.read_text()
    versions = httpx.get(site.url + "/", verify=site.verify, timeout=10).json()
    assert versions["versions"][0]["links"][0]["href"] == site.url + "/v1.0/"
    with pytest.raises(httpx.HTTPError):  # nothing is answered in clear
        httpx.get(site.url.replace("https://", "http://") + "/", timeout=5)
    # A client that speaks TLS 1.2 at most still gets in: 1.2 is the floor, not 1.3.
    tls12 = ssl.create_default_context(cafile=str(site.tls[2]))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert httpx.get(site.url + "/", verify=tls12, timeout=5).status_code == 200


def test_the_server_context_refuses_anything_older_than_tls_1_2(pki: Pki) -> None:
    # The system's OpenSSL policy may refuse TLS 1.1 anyway; this floor holds where it does not.
    assert server_context(*map(str, pki.site1)).minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_site_reached_over_https_that_gives_an_http_api_is_refused() -> None:
    """The token would go in clear to the catalog's URL: the CLI and the peer client refuse."""
    catalog = {"token": {"expires_at": "2999-01-01T00:00:00.000000Z", "catalog": [{"type": "dcmanager", "endpoints": [
        {"interface": "public", "url": "http://127.0.0.1:9/v1.0"}]}]}}
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(201, json=catalog, headers={"X-Subject-Token": "t"})

    client = SiteClient("https://site.test", "admin", "pw", transport=httpx.MockTransport(answer))
    with pytest.raises(ClientError, match="not https; refusing to send the token in clear"):
        client.get("/subclouds")
    peer = PeerSite("https://site.test/v3", "admin", "pw", retries=0)
    peer._http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    with pytest.raises(PeerError, match="not https; refusing to call it in clear"):
        asyncio.run(peer.peer_groups())
    assert sent == ["https://site.test/v3/auth/tokens"] * 2  # nothing was sent to the http URL


def test_the_cli_verifies_the_site_with_ca_file_or_dcman_ca_file(site: RunningSite, pki: Pki) -> None:
    with_option = dcman(site, "subcloud", "--ca-file", str(pki.ca.cert_file), "list", "--format", "json")
    assert with_option.returncode == 0, with_option.stderr
    assert json.loads(with_option.stdout) == []
    with_env = dcman(site, "subcloud-group", "list", "--format", "json", ca_file=str(pki.ca.cert_file))
    assert with_env.returncode == 0, with_env.stderr
    assert [g["name"] for g in json.loads(with_env.stdout)] == ["Default"]


@pytest.mark.parametrize("which", ["wrong CA", "no CA"])
def test_the_cli_refuses_a_site_whose_certificate_does_not_verify_with_one_line(site: RunningSite, pki: Pki,
                                                                                which: str) -> None:
    ca_file = str(pki.other.cert_file) if which == "wrong CA" else None
    result = dcman(site, "subcloud", "list", ca_file=ca_file)
    assert result.returncode == 1 and result.stdout == ""
    line = one_line(result)
    assert f"cannot verify the TLS certificate of {site.url}" in line
    assert "unable to get local issuer certificate" in line and "--ca-file" in line and "DCMAN_CA_FILE" in line


def test_the_cli_names_a_ca_file_it_cannot_read(site: RunningSite, tmp_path: Path) -> None:
    result = dcman(site, "subcloud", "--ca-file", str(tmp_path / "missing.pem"), "list")
    assert result.returncode == 1
    assert one_line(result) == (f"Error: DCMAN_CA_FILE (--ca-file): cannot read {tmp_path / 'missing.pem'}: "
                                "No such file or directory")


def test_a_keystone_session_authenticates_over_https_and_its_catalog_says_https(site: RunningSite,
                                                                                pki: Pki) -> None:
    def password() -> generic.Password:
        return generic.Password(auth_url=site.url + "/v3", username=ADMIN_USER, password=ADMIN_PASSWORD,
                                project_name="admin", user_domain_name="Default", project_domain_name="Default")

    session = ks_session.Session(auth=password(), verify=str(pki.ca.cert_file))
    endpoint = session.get_endpoint(service_type="dcmanager", interface="publicURL")
    assert endpoint == site.url + "/v1.0"
    answer = session.get(endpoint + "/subclouds", raise_exc=False)
    assert answer.status_code == 200 and answer.json() == {"subclouds": []}
    with pytest.raises(ks_exceptions.SSLError):
        ks_session.Session(auth=password(), verify=str(pki.other.cert_file)).get_endpoint(
            service_type="dcmanager", interface="publicURL")


# --- start-up refusals ------------------------------------------------------------------------


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "DCMAN_DATA_DIR": str(tmp_path / "data"), "DCMAN_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DCMAN_BIND": "127.0.0.1:1", **env}
    return subprocess.run([DCMAN, "serve"], env=full, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case, expected", [
    ("missing certificate", "DCMAN_TLS_CERT_FILE: cannot read {missing}: No such file or directory"),
    ("key as certificate", "DCMAN_TLS_CERT_FILE: {key} holds no PEM certificate"),
    ("key of another certificate", "DCMAN_TLS_KEY_FILE: {other_key} is not the key of the certificate in {cert}"),
    ("certificate only", "DCMAN_TLS_KEY_FILE: must be set with DCMAN_TLS_CERT_FILE"),
    ("key only", "DCMAN_TLS_CERT_FILE: must be set with DCMAN_TLS_KEY_FILE"),
    ("unreadable peer CA", "DCMAN_PEER_CA_FILE: cannot read {missing}: No such file or directory"),
])
def test_serve_refuses_a_bad_certificate_or_key_with_one_line(tmp_path: Path, pki: Pki, case: str,
                                                              expected: str) -> None:
    cert, key = pki.site1
    other_key = pki.site2[1]
    missing = tmp_path / "missing.pem"
    env = {
        "missing certificate": {"DCMAN_TLS_CERT_FILE": str(missing), "DCMAN_TLS_KEY_FILE": str(key)},
        "key as certificate": {"DCMAN_TLS_CERT_FILE": str(key), "DCMAN_TLS_KEY_FILE": str(key)},
        "key of another certificate": {"DCMAN_TLS_CERT_FILE": str(cert), "DCMAN_TLS_KEY_FILE": str(other_key)},
        "certificate only": {"DCMAN_TLS_CERT_FILE": str(cert)},
        "key only": {"DCMAN_TLS_KEY_FILE": str(key)},
        "unreadable peer CA": {"DCMAN_TLS_CERT_FILE": str(cert), "DCMAN_TLS_KEY_FILE": str(key),
                               "DCMAN_PEER_CA_FILE": str(missing)},
    }[case]
    result = _serve(tmp_path, **env)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("dcman: " + expected.format(missing=missing, key=key, cert=cert, other_key=other_key))
    assert not (tmp_path / "data").exists()  # refused before the site touched anything


# --- two sites peered over HTTPS --------------------------------------------------------------


def _call(site: RunningSite, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, site.url + "/v1.0" + path, headers={"X-Auth-Token": token_for(site)},
                         verify=site.verify, timeout=20, **kw)


def _register(on: RunningSite, other: RunningSite, gateway: str) -> dict:
    identity = _call(other, "GET", "/system").json()
    response = _call(on, "POST", "/system-peers", json={
        "peer_uuid": identity["uuid"], "peer_name": identity["name"], "manager_endpoint": other.url + "/v3",
        "manager_username": ADMIN_USER, "manager_password": base64.b64encode(ADMIN_PASSWORD.encode()).decode(),
        "peer_controller_gateway_address": gateway, "heartbeat_interval": 10, "heartbeat_failure_threshold": 1})
    assert response.status_code == 200, response.text
    return response.json()


def _state(site: RunningSite, peer: dict) -> str:
    return _call(site, "GET", f"/system-peers/{peer['peer-uuid']}").json()["availability-state"]


def test_two_sites_peered_over_https_are_available_and_a_wrong_ca_is_shown(site: RunningSite, pki: Pki,
                                                                           tmp_path: Path) -> None:
    env2 = {**SITE2_SETTINGS, "DCMAN_PEER_CA_FILE": str(pki.ca.cert_file)}
    site2 = start_site_process(tmp_path / "site2", env2, tls=pki.tls(pki.site2), host=SITE2_HOST)
    peer_of_1 = None
    try:
        assert site2.url.startswith(f"https://{SITE2_HOST}:")
        peer2 = _register(site, site2, SITE2_HOST)
        peer1 = _register(site2, site, "127.0.0.1")
        assert peer2["manager-endpoint"].startswith("https://")
        wait_until(lambda: _state(site, peer2) == "available", timeout=20, every=0.3)
        wait_until(lambda: _state(site2, peer1) == "available", timeout=20, every=0.3)
        peer_of_1 = peer2

        # Site 2 again, now trusting only a CA that did not issue site 1's certificate.
        stop_site_process(site2)
        site2 = start_site_process(tmp_path / "site2", {**env2, "DCMAN_PEER_CA_FILE": str(pki.other.cert_file)},
                                   tls=pki.tls(pki.site2), host=SITE2_HOST)
        wait_until(lambda: _state(site2, peer1) == "unavailable", timeout=20, every=0.3)
        shown = dcman(site2, "alarm", "list", "--alarm-id", "280.004", "--format", "json",
                      ca_file=str(pki.ca.cert_file))
        assert shown.returncode == 0, shown.stderr
        [alarm] = json.loads(shown.stdout)
        assert alarm["reason_text"].endswith(f"heartbeat failed (cannot verify the TLS certificate of the peer at "
                                             f"{site.url}/v3 against DCMAN_PEER_CA_FILE: "
                                             "unable to get local issuer certificate)")
        assert f"cannot verify the TLS certificate of the peer at {site.url}/v3" in site2.log.read_text()
    finally:
        stop_site_process(site2)
        if peer_of_1 is not None:  # site 1 is shared by this module: leave it without the peer
            assert _call(site, "DELETE", f"/system-peers/{peer_of_1['id']}").status_code == 200
