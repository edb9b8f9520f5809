"""TLS between a site and its subclouds: the simulator and a real agent serve TLS from a private
CA made here, the site verifies each certificate names the subcloud's address, and a subcloud
whose certificate is not trusted is offline with the reason in its errors, never probed in clear."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import DCMAN, add_form, bootstrap_values, free_port, start_site_process, stop_site_process, token_for
from pki import Authority, make_authority
from simfleet import running_fleet, wait_until

AGENT_ADDRESS = "127.4.0.2"  # a real agent's address, outside the simulator's 127.1.0.0/16
PASSWORD = "Edge-agent-TLS-1"
NO_ERRORS = "No errors present"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Authority]:
    """The subclouds' CA the site trusts, and another one it does not."""
    work = tmp_path_factory.mktemp("pki")
    return make_authority(work, "subclouds"), make_authority(work, "rogue")


def _sim_tls(authority: Authority) -> tuple[str, ...]:
    return ("--tls-cert", str(authority.cert_file), "--tls-key", str(authority.key_file))


def test_simulated_subcloud_is_deployed_and_audited_over_verified_tls(pki, tmp_path: Path) -> None:
    trusted, _ = pki
    settings = {"DCMAN_SUBCLOUD_AGENT_SCHEME": "https", "DCMAN_SUBCLOUD_CA_FILE": str(trusted.cert_file)}
    with running_fleet(tmp_path, count=2, settings=settings, sim_args=_sim_tls(trusted)) as fleet:
        port = int(fleet.site_env["DCMAN_SUBCLOUD_AGENT_PORT"])
        # What an operator's openssl check would see: a certificate of the CA for this very address.
        context = ssl.create_default_context(cafile=str(trusted.cert_file))
        with socket.create_connection(("127.1.0.2", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="127.1.0.2") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        with pytest.raises(httpx.HTTPError):  # the agent port speaks nothing but TLS
            httpx.get(f"http://127.1.0.2:{port}/v1/status", timeout=5)

        subcloud = fleet.deployed("sim-00001")
        assert subcloud["deploy-status"] == "complete"
        assert subcloud["availability-status"] == "online"
        assert fleet.subcloud("sim-00001")["error-description"] == NO_ERRORS

        # A central backup streams over the same verified TLS, whole.
        assert fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 200
        fleet.fault("sim-00001", backup_mb=4)
        backup = fleet.call("POST", "/subcloud-backup", json={
            "subcloud": "sim-00001", "sysadmin_password": base64.b64encode(b"St8rlingX*").decode()})
        assert backup.status_code == 200, backup.text
        wait_until(lambda: fleet.subcloud("sim-00001")["backup-status"] in ("complete-central", "failed"))
        assert fleet.subcloud("sim-00001")["backup-status"] == "complete-central", fleet.subcloud("sim-00001")
        stored = fleet.site.data_dir / "subclouds" / str(subcloud["id"]) / "backups" / "24.09" / "backup.tgz"
        data = stored.read_bytes()
        assert len(data) == 4 * 1024 * 1024
        assert stored.with_name("backup.tgz.sha256").read_text().split()[0] == hashlib.sha256(data).hexdigest()


def test_site_that_does_not_trust_the_ca_refuses_the_subcloud_with_the_reason(pki, tmp_path: Path) -> None:
    trusted, rogue = pki
    settings = {"DCMAN_SUBCLOUD_AGENT_SCHEME": "https", "DCMAN_SUBCLOUD_CA_FILE": str(trusted.cert_file)}
    with running_fleet(tmp_path, count=1, settings=settings, sim_args=_sim_tls(rogue)) as fleet:
        fleet.add("sim-00001")
        failed = wait_until(lambda: (s := fleet.subcloud("sim-00001"))["deploy-status"].endswith("failed") and s,
                            timeout=30)
        assert "certificate" in failed["error-description"]
        assert "not issued by a trusted CA" in failed["error-description"]
        assert failed["availability-status"] == "offline"


def _agent(work: Path, port: int, cert: Path, key: Path, name: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [DCMAN, "agent", "--bind", f"{AGENT_ADDRESS}:{port}", "--name", "edge-tls", "--phase-seconds", "0.2"],
        env={**os.environ, "DCMAN_AGENT_PASSWORD": PASSWORD, "DCMAN_AGENT_TLS_CERT": str(cert),
             "DCMAN_AGENT_TLS_KEY": str(key)},
        stdout=(work / f"{name}.log").open("wb"), stderr=subprocess.STDOUT)

    def listening() -> bool:
        try:
            socket.create_connection((AGENT_ADDRESS, port), timeout=1).close()
            return True
        except OSError:
            return process.poll() is not None
    wait_until(listening)
    assert process.poll() is None, (work / f"{name}.log").read_text()
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


def test_agent_whose_certificate_is_replaced_by_an_untrusted_one_goes_offline_and_back(
        pki, tmp_path: Path) -> None:
    """The subcloud's agent restarts with a certificate of another CA, then with one of the right
    CA that names another address, then with a right one again."""
    trusted, rogue = pki
    port = free_port()
    good = trusted.issue("edge-tls", ips=(AGENT_ADDRESS,))
    untrusted = rogue.issue("edge-tls-rogue", ips=(AGENT_ADDRESS,))
    misnamed = trusted.issue("edge-tls-misnamed", ips=("127.4.0.3",), dns=("edge-tls",))
    site = start_site_process(tmp_path / "site", {
        "DCMAN_SUBCLOUD_AGENT_PORT": str(port), "DCMAN_SUBCLOUD_AGENT_SCHEME": "https",
        "DCMAN_SUBCLOUD_CA_FILE": str(trusted.cert_file), "DCMAN_AUDIT_INTERVAL": "1"})
    agent = _agent(tmp_path, port, *good, "agent-good")
    try:
        headers = {"X-Auth-Token": token_for(site)}

        def subcloud() -> dict:
            return httpx.get(f"{site.url}/v1.0/subclouds/edge-tls", headers=headers, timeout=10).json()

        values = bootstrap_values("edge-tls", management_subnet="127.4.0.0/29",
                                  management_start_address=AGENT_ADDRESS, management_end_address="127.4.0.6",
                                  management_gateway_address="127.4.0.1")
        data, files = add_form("edge-tls", values, sysadmin_password=base64.b64encode(PASSWORD.encode()).decode())
        added = httpx.post(f"{site.url}/v1.0/subclouds", headers=headers, data=data, files=files, timeout=10)
        assert added.status_code == 200, added.text
        wait_until(lambda: subcloud()["deploy-status"] == "complete", timeout=40)
        wait_until(lambda: subcloud()["availability-status"] == "online", timeout=20)

        for cert_and_key, reason in ((untrusted, "not issued by a trusted CA"),
                                     (misnamed, f"does not name {AGENT_ADDRESS}")):
            _stop(agent)
            agent = _agent(tmp_path, port, *cert_and_key, "agent-wrong")
            offline = wait_until(lambda: (s := subcloud())["availability-status"] == "offline" and s, timeout=20)
            wait_until(lambda reason=reason: reason in subcloud()["error-description"], timeout=10)
            assert subcloud()["error-description"].startswith("TLS: ")
            assert offline["deploy-status"] == "complete"

        _stop(agent)
        agent = _agent(tmp_path, port, *good, "agent-good-again")
        wait_until(lambda: subcloud()["availability-status"] == "online", timeout=20)
        wait_until(lambda: subcloud()["error-description"] == NO_ERRORS, timeout=10)
        # The agent's log shows no request that came in clear (a plain request would be a TLS error).
        assert "handler failed" not in (tmp_path / "agent-good-again.log").read_text()
    finally:
        _stop(agent)
        stop_site_process(site)


@pytest.mark.parametrize("files, message", [
    (("missing.pem", "missing.key"), "--tls-cert: cannot read"),
    (("rogue", "edge-key-of-another"), "--tls-key:"),
    (("cert-only", None), "--tls-cert and --tls-key go together"),
])
def test_agent_refuses_to_start_with_unusable_tls_files_in_one_line(pki, tmp_path: Path, files, message) -> None:
    trusted, rogue = pki
    cert, _ = trusted.issue("edge-a", ips=(AGENT_ADDRESS,))
    _, other_key = trusted.issue("edge-b", ips=(AGENT_ADDRESS,))
    paths = {"missing.pem": tmp_path / "missing.pem", "missing.key": tmp_path / "missing.key",
             "rogue": cert, "edge-key-of-another": other_key, "cert-only": cert, None: None}
    env = {**os.environ, "DCMAN_AGENT_PASSWORD": PASSWORD}
    args = [DCMAN, "agent", "--bind", f"127.0.0.1:{free_port()}", "--tls-cert", str(paths[files[0]])]
    if paths[files[1]] is not None:
        args += ["--tls-key", str(paths[files[1]])]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_simulator_needs_a_ca_to_issue_its_subclouds_certificates(pki, tmp_path: Path) -> None:
    trusted, _ = pki
    cert, key = trusted.issue("not-a-ca", ips=("127.1.0.2",))
    result = subprocess.run([DCMAN, "sim", "--count", "1", "--port", str(free_port()),
                             "--control", f"127.0.0.1:{free_port()}", "--tls-cert", str(cert), "--tls-key", str(key)],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "is not a CA certificate" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_site_refuses_to_start_with_an_unreadable_subcloud_ca_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="DCMAN_SUBCLOUD_CA_FILE: cannot read"):
        start_site_process(tmp_path / "site", {"DCMAN_SUBCLOUD_CA_FILE": str(tmp_path / "nowhere.pem")}, timeout=10)
