"""The subcloud agent protocol as the site meets it: `dcman sim` and `dcman agent` run as real
processes on loopback, and are driven over HTTP exactly as the site's audit and deploy do."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import DCMAN, free_port

PASSWORD = "St8rlingX*"
AUTH = ("sysadmin", PASSWORD)
PHASE_SECONDS = 0.3
COUNT = 5


@dataclass
class Process:
    process: subprocess.Popen
    log: Path


def _start(args: list[str], ready_prefix: str, log: Path, env: dict[str, str] | None = None,
           timeout: float = 20.0) -> Process:
    """Start a dcman process and wait for its ready line on stdout."""
    process = subprocess.Popen([DCMAN, *args], stdout=subprocess.PIPE, stderr=log.open("wb"),
                               env={**os.environ, **(env or {})})
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline().decode()
            if line.startswith(ready_prefix):
                return Process(process, log)
        if process.poll() is not None:
            raise RuntimeError(f"dcman {args[0]} exited early:\n{log.read_text()}")
    process.kill()
    raise RuntimeError(f"dcman {args[0]} was not ready within {timeout}s:\n{log.read_text()}")


def _stop(running: Process) -> None:
    running.process.send_signal(signal.SIGTERM)
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.process.kill()


@dataclass
class Sim:
    port: int
    control: str

    def agent(self, address: str) -> str:
        return f"http://{address}:{self.port}"

    def patch(self, name: str, **faults: Any) -> dict[str, Any]:
        response = httpx.patch(f"{self.control}/sim/subclouds/{name}", json=faults, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def item(self, name: str) -> dict[str, Any]:
        response = httpx.get(f"{self.control}/sim/subclouds", params={"name": name}, timeout=5)
        assert response.status_code == 200, response.text
        (found,) = response.json()["subclouds"]
        return found


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    port, control_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    running = _start(["sim", "--count", str(COUNT), "--port", str(port), "--control", f"127.0.0.1:{control_port}",
                      "--phase-seconds", str(PHASE_SECONDS)], "sim:", log)
    yield Sim(port, f"http://127.0.0.1:{control_port}")
    _stop(running)


@pytest.fixture
def clean(sim: Sim) -> Iterator[Sim]:
    """Every subcloud back to its defaults before and after the test."""
    httpx.post(f"{sim.control}/sim/reset", timeout=5).raise_for_status()
    yield sim
    httpx.post(f"{sim.control}/sim/reset", timeout=5).raise_for_status()


def _wait_phase(url: str, until: tuple[str, ...] = ("succeeded", "failed", "aborted"),
                timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = httpx.get(f"{url}/v1/phases/current", auth=AUTH, timeout=5).json()
        if current["state"] in until or time.monotonic() > deadline:
            return current
        time.sleep(0.05)


def _healthy(status: dict[str, Any]) -> bool:
    names = {g["name"] for g in status["service_groups"]}
    active = {g["name"] for g in status["service_groups"] if g["state"] == "active"}
    return bool(names) and names == active


# --- the simulator's subclouds, as the audit sees them ----------------------------------------


def test_site_reads_status_of_first_simulated_subcloud_at_its_fixed_address(clean: Sim) -> None:
    response = httpx.get(f"{clean.agent('127.1.0.2')}/v1/status", auth=AUTH, timeout=5)
    assert response.status_code == 200
    status = response.json()
    assert status["name"] == "sim-00001"
    assert status["region_name"] == uuid.uuid5(uuid.NAMESPACE_DNS, "sim-00001").hex
    assert status["software_version"] == "24.09"
    assert status["system_controller"] is None
    assert _healthy(status)
    assert status["endpoints"]["platform"] == "in-sync"


def test_listing_gives_bootstrap_values_that_match_the_addressing(clean: Sim) -> None:
    body = httpx.get(f"{clean.control}/sim/subclouds", timeout=5).json()
    assert body["total"] == COUNT
    items = body["subclouds"]
    assert [item["name"] for item in items] == [f"sim-{i:05d}" for i in range(1, COUNT + 1)]
    last = items[-1]
    assert last["management_start_ip"] == "127.1.0.34"
    assert last["bootstrap_values"] == {
        "name": "sim-00005", "system_mode": "simplex",
        "management_subnet": "127.1.0.32/29", "management_gateway_address": "127.1.0.33",
        "management_start_address": "127.1.0.34", "management_end_address": "127.1.0.38",
        "systemcontroller_gateway_address": "127.0.0.1",
        "external_oam_subnet": "10.10.0.0/16", "external_oam_gateway_address": "10.10.0.1",
        "external_oam_floating_address": "10.10.0.2",
    }
    assert last["faults"] == {"reachable": True, "healthy": True,
                              "alarms": {"critical": 0, "major": 0, "minor": 0, "warnings": 0},
                              "fail_phase": None, "phase_seconds": PHASE_SECONDS, "status_seconds": 0.0,
                              "backup_mb": 1.0, "blocked_sites": []}
    assert (last["fencing_epoch"], last["controller_heard_s"], last["double_controller"]) == (0, None, 0)
    page = httpx.get(f"{clean.control}/sim/subclouds", params={"offset": 1, "limit": 2}, timeout=5).json()
    assert [item["name"] for item in page["subclouds"]] == ["sim-00002", "sim-00003"]
    nobody = httpx.get(f"{clean.control}/sim/subclouds", params={"name": "sim-00099"}, timeout=5)
    assert nobody.json()["subclouds"] == []


def test_caller_without_the_sysadmin_credential_is_refused(clean: Sim) -> None:
    url = f"{clean.agent('127.1.0.2')}/v1/status"
    missing = httpx.get(url, timeout=5)
    assert missing.status_code == 401
    assert "error" in missing.json()
    assert missing.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(url, auth=("sysadmin", "wrong"), timeout=5).status_code == 401
    assert httpx.get(url, auth=("admin", PASSWORD), timeout=5).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer abc"}, timeout=5).status_code == 401
    assert httpx.post(f"{clean.agent('127.1.0.2')}/v1/phases/install", json={}, timeout=5).status_code == 401


def test_connection_to_an_address_that_is_no_subcloud_is_closed(clean: Sim) -> None:
    for address in ("127.1.0.3", "127.1.0.42", "127.1.0.1"):  # between subclouds, past the last, a gateway
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{clean.agent(address)}/v1/status", auth=AUTH, timeout=5)


def test_unknown_path_and_unknown_phase_are_answered_in_json(clean: Sim) -> None:
    url = clean.agent("127.1.0.2")
    missing = httpx.get(f"{url}/v1/nothing", auth=AUTH, timeout=5)
    assert missing.status_code == 404 and "error" in missing.json()
    unknown = httpx.post(f"{url}/v1/phases/upgrade", auth=AUTH, json={}, timeout=5)
    assert unknown.status_code == 400 and "upgrade" in unknown.json()["error"]
    not_json = httpx.post(f"{url}/v1/phases/install", auth=AUTH, content=b"{", timeout=5)
    assert not_json.status_code == 400


def test_unhealthy_subcloud_reports_a_service_group_without_active_member(clean: Sim) -> None:
    url = f"{clean.agent('127.1.0.10')}/v1/status"
    assert clean.patch("sim-00002", healthy=False)["faults"]["healthy"] is False
    status = httpx.get(url, auth=AUTH, timeout=5).json()
    assert not _healthy(status)
    assert {g["state"] for g in status["service_groups"] if g["name"] == "oam-services"} == {"disabled"}
    clean.patch("sim-00002", healthy=True)
    assert _healthy(httpx.get(url, auth=AUTH, timeout=5).json())


def test_unreachable_subcloud_resets_new_and_kept_alive_connections(clean: Sim) -> None:
    url = f"{clean.agent('127.1.0.18')}/v1/status"
    with httpx.Client(auth=AUTH, timeout=5) as client:  # one kept-alive connection
        assert client.get(url).status_code == 200
        clean.patch("sim-00003", reachable=False)
        with pytest.raises(httpx.TransportError):
            client.get(url)
    with pytest.raises(httpx.TransportError):
        httpx.get(url, auth=AUTH, timeout=5)
    # a request already queued on an open connection gets no answer either
    clean.patch("sim-00003", reachable=True)
    with socket.create_connection(("127.1.0.18", clean.port), timeout=5) as raw:
        raw.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(65536).startswith(b"HTTP/1.1 401")  # reachable again: answered
        clean.patch("sim-00003", reachable=False)
        raw.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert raw.recv(65536) == b""
        except ConnectionResetError:
            pass
    clean.patch("sim-00003", reachable=True)
    assert httpx.get(url, auth=AUTH, timeout=5).status_code == 200


def test_alarm_summary_follows_the_alarm_fault(clean: Sim) -> None:
    url = f"{clean.agent('127.1.0.26')}/v1/alarms/summary"
    assert httpx.get(url, auth=AUTH, timeout=5).json() == {"critical": 0, "major": 0, "minor": 0, "warnings": 0}
    clean.patch("sim-00004", alarms={"critical": 2, "minor": 1})
    assert httpx.get(url, auth=AUTH, timeout=5).json() == {"critical": 2, "major": 0, "minor": 1, "warnings": 0}


def test_bad_faults_are_refused_and_change_nothing(clean: Sim) -> None:
    control = f"{clean.control}/sim/subclouds"
    for bad in ({"reachable": "no"}, {"alarms": {"critical": -1}}, {"alarms": {"fatal": 1}},
                {"fail_phase": "upgrade"}, {"phase_seconds": "slow"}, {"colour": "red"}):
        response = httpx.patch(f"{control}/sim-00001", json=bad, timeout=5)
        assert response.status_code == 400, bad
        assert "error" in response.json()
    assert httpx.patch(f"{control}/sim-00099", json={"healthy": False}, timeout=5).status_code == 404
    assert httpx.patch(f"{control}/nobody", json={"healthy": False}, timeout=5).status_code == 404
    assert clean.item("sim-00001")["faults"]["healthy"] is True


def test_audit_probes_are_counted_per_subcloud(clean: Sim) -> None:
    before = clean.item("sim-00005")["probes"]
    with httpx.Client(auth=AUTH, timeout=5) as client:
        for _ in range(3):
            assert client.get(f"{clean.agent('127.1.0.34')}/v1/status").status_code == 200
    httpx.get(f"{clean.agent('127.1.0.34')}/v1/status", timeout=5)  # refused: not an answered probe
    assert clean.item("sim-00005")["probes"] == before + 3


def test_slow_status_answers_count_two_probes_at_once_as_an_overlap(clean: Sim) -> None:
    import concurrent.futures

    clean.patch("sim-00004", status_seconds=0.5)
    before = clean.item("sim-00004")
    url = f"{clean.agent('127.1.0.26')}/v1/status"
    with httpx.Client(auth=AUTH, timeout=5) as client:
        assert client.get(url).status_code == 200  # alone: no overlap
    assert clean.item("sim-00004")["overlaps"] == before["overlaps"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: httpx.get(url, auth=AUTH, timeout=5).status_code, range(2)))
    assert answers == [200, 200]
    after = clean.item("sim-00004")
    assert after["probes"] == before["probes"] + 3
    assert after["overlaps"] == before["overlaps"] + 1
    assert after["faults"]["status_seconds"] == 0.5


def test_bulk_fault_change_then_reset_brings_every_subcloud_back(clean: Sim) -> None:
    names = ["sim-00002", "sim-00004", "sim-00005"]
    response = httpx.patch(f"{clean.control}/sim/subclouds",
                           json={"names": names, "reachable": False, "alarms": {"major": 3}}, timeout=5)
    assert response.status_code == 200 and response.json() == {"updated": 3}
    items = {i["name"]: i for i in httpx.get(f"{clean.control}/sim/subclouds", timeout=5).json()["subclouds"]}
    assert [n for n, i in items.items() if not i["faults"]["reachable"]] == names
    assert items["sim-00004"]["faults"]["alarms"]["major"] == 3
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{clean.agent('127.1.0.26')}/v1/status", auth=AUTH, timeout=5)

    partly_unknown = httpx.patch(f"{clean.control}/sim/subclouds",
                                 json={"names": ["sim-00001", "sim-77777"], "healthy": False}, timeout=5)
    assert partly_unknown.status_code == 404 and partly_unknown.json()["unknown"] == ["sim-77777"]
    assert clean.item("sim-00001")["faults"]["healthy"] is True  # nothing changed

    assert httpx.post(f"{clean.control}/sim/reset", timeout=5).status_code == 200
    for item in httpx.get(f"{clean.control}/sim/subclouds", timeout=5).json()["subclouds"]:
        assert item["faults"]["reachable"] and item["faults"]["healthy"]
        assert set(item["faults"]["alarms"].values()) == {0}
    assert httpx.get(f"{clean.agent('127.1.0.26')}/v1/status", auth=AUTH, timeout=5).status_code == 200


def _exchange(port: int, *chunks: bytes, address: str = "127.1.0.2") -> bytes:
    """Send raw chunks (with a pause between them) and read until the server closes."""
    with socket.create_connection((address, port), timeout=5) as raw:
        for chunk in chunks:
            raw.sendall(chunk)
            time.sleep(0.05)
        received = b""
        while data := raw.recv(65536):
            received += data
        return received


def test_pipelined_and_split_requests_are_answered_in_order(clean: Sim) -> None:
    auth = b"Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode())
    status = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n\r\n"
    alarms = b"GET /v1/alarms/summary HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
    last = b"GET /v1/phases/current HTTP/1.1\r\nAuthorization: " + auth + b"\r\nConnection: close\r\n\r\n"
    received = _exchange(clean.port, status + alarms[:20], alarms[20:] + b"\r\n" + last[:7], last[7:])
    answers = received.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200", b"200", b"200"]
    assert b'"sim-00001"' in answers[0] and b'"critical"' in answers[1] and b'"phase"' in answers[2]
    assert b"Connection: close" in answers[2]


def test_malformed_or_chunked_requests_get_a_clear_error_and_a_close(clean: Sim) -> None:
    assert _exchange(clean.port, b"HELLO\r\n\r\n").startswith(b"HTTP/1.1 400")
    chunked = b"POST /v1/phases/install HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert _exchange(clean.port, chunked).startswith(b"HTTP/1.1 501")
    assert _exchange(clean.port, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_sim_refuses_to_start_on_a_taken_port_with_one_clear_line(sim: Sim) -> None:
    result = subprocess.run([DCMAN, "sim", "--count", "2", "--port", str(sim.port), "--control",
                             f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("dcman sim: cannot listen on 0.0.0.0:")
    assert len(result.stderr.strip().splitlines()) == 1


# --- deploy and rehome phases ----------------------------------------------------------------


def test_bootstrap_runs_for_phase_seconds_and_adopts_the_calling_site(clean: Sim) -> None:
    url = clean.agent("127.1.0.10")
    clean.patch("sim-00002", phase_seconds=1.0)  # long enough to be seen running on a busy machine
    site = str(uuid.uuid4())
    started = time.monotonic()
    response = httpx.post(f"{url}/v1/phases/bootstrap", auth=AUTH, json={"system_controller": site}, timeout=5)
    assert response.status_code == 202
    assert response.json()["phase"] == "bootstrap" and response.json()["state"] == "running"
    running = httpx.get(f"{url}/v1/phases/current", auth=AUTH, timeout=5).json()
    assert running["state"] == "running" and 0 <= running["progress"] < 100
    done = _wait_phase(url)
    assert done == {"phase": "bootstrap", "state": "succeeded", "progress": 100, "message": done["message"]}
    assert time.monotonic() - started >= 1.0
    assert httpx.get(f"{url}/v1/status", auth=AUTH, timeout=5).json()["system_controller"] == site
    assert clean.item("sim-00002")["system_controller"] == site

    other_site = str(uuid.uuid4())  # rehome: another site takes the subcloud over
    assert httpx.post(f"{url}/v1/phases/rehome", auth=AUTH, json={"system_controller": other_site},
                      timeout=5).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    assert httpx.get(f"{url}/v1/status", auth=AUTH, timeout=5).json()["system_controller"] == other_site


def test_phase_set_to_fail_ends_failed_with_a_message(clean: Sim) -> None:
    url = clean.agent("127.1.0.18")
    clean.patch("sim-00003", fail_phase="config", phase_seconds=0.1)
    assert httpx.post(f"{url}/v1/phases/install", auth=AUTH, json={}, timeout=5).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"  # only config was set to fail
    assert httpx.post(f"{url}/v1/phases/config", auth=AUTH, json={}, timeout=5).status_code == 202
    failed = _wait_phase(url)
    assert failed["phase"] == "config" and failed["state"] == "failed"
    assert "config" in failed["message"] and failed["message"]


def test_second_phase_while_one_runs_conflicts_and_abort_stops_it(clean: Sim) -> None:
    url = clean.agent("127.1.0.26")
    clean.patch("sim-00004", phase_seconds=30)
    assert httpx.post(f"{url}/v1/phases/install", auth=AUTH, json={}, timeout=5).status_code == 202
    busy = httpx.post(f"{url}/v1/phases/bootstrap", auth=AUTH, json={}, timeout=5)
    assert busy.status_code == 409 and "install" in busy.json()["error"]
    aborted = httpx.post(f"{url}/v1/phases/current/abort", auth=AUTH, timeout=5)
    assert aborted.status_code == 200
    assert aborted.json()["phase"] == "install" and aborted.json()["state"] == "aborted"
    assert httpx.get(f"{url}/v1/phases/current", auth=AUTH, timeout=5).json()["state"] == "aborted"
    assert httpx.post(f"{url}/v1/phases/current/abort", auth=AUTH, timeout=5).status_code == 409
    # an aborted phase can be started again
    clean.patch("sim-00004", phase_seconds=0)
    assert httpx.post(f"{url}/v1/phases/install", auth=AUTH, json={}, timeout=5).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"


# --- the real agent of one subcloud ----------------------------------------------------------


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real agent's log, and the file its bootstrap command records its payload in."""
    return tmp_path_factory.mktemp("agent")


@pytest.fixture(scope="module")
def real_agent(agent_dir: Path) -> Iterator[str]:
    port = free_port()
    (agent_dir / "sleep").write_text(f"59.{port}")  # a command line no other process has
    record = agent_dir / "payload.json"
    running = _start(
        ["agent", "--bind", f"127.0.0.1:{port}", "--name", "edge-1", "--phase-seconds", "0.2",
         "--phase-command", f"bootstrap=sh -c 'cat > {record}; echo PROGRESS 50; sleep 1; echo done'",
         "--phase-command", "config=sh -c 'echo applying manifests; echo PROGRESS 30; echo disk full >&2; exit 3'",
         "--phase-command", f"install=sleep 59.{port}",
         "--phase-command", f"backup=sh -c 'cat > {agent_dir}/backup-payload.json; "
                            f"head -c 300000 /dev/urandom > {agent_dir}/backup.bin'",
         "--backup-file", str(agent_dir / "backup.bin")],
        "agent:", agent_dir / "agent.log", env={"DCMAN_AGENT_PASSWORD": "edge-Secret-1"})
    yield f"http://127.0.0.1:{port}"
    _stop(running)


@pytest.fixture
def agent_url(real_agent: str) -> str:
    """The real agent with no phase running (a failed test must not leave one to the next)."""
    httpx.post(f"{real_agent}/v1/phases/current/abort", auth=AGENT_AUTH, timeout=5)
    return real_agent


AGENT_AUTH = ("sysadmin", "edge-Secret-1")


def test_real_agent_answers_status_only_with_its_own_password(agent_url: str) -> None:
    assert httpx.get(f"{agent_url}/v1/status", auth=AUTH, timeout=5).status_code == 401
    status = httpx.get(f"{agent_url}/v1/status", auth=AGENT_AUTH, timeout=5).json()
    assert status["name"] == "edge-1" and _healthy(status) and status["system_controller"] is None
    assert httpx.get(f"{agent_url}/v1/alarms/summary", auth=AGENT_AUTH, timeout=5).json()["critical"] == 0


def test_real_agent_runs_the_bootstrap_command_to_success(agent_url: str, agent_dir: Path) -> None:
    site = str(uuid.uuid4())
    response = httpx.post(f"{agent_url}/v1/phases/bootstrap", auth=AGENT_AUTH,
                          json={"system_controller": site, "name": "edge-1"}, timeout=5)
    assert response.status_code == 202
    seen = _wait_phase_auth(agent_url, lambda c: c["progress"] == 50 or c["state"] != "running")
    assert seen["progress"] == 50 and seen["state"] == "running"
    done = _wait_phase_auth(agent_url, lambda c: c["state"] != "running")
    assert done["state"] == "succeeded" and done["progress"] == 100
    assert json.loads((agent_dir / "payload.json").read_text()) == {"system_controller": site, "name": "edge-1"}
    assert httpx.get(f"{agent_url}/v1/status", auth=AGENT_AUTH, timeout=5).json()["system_controller"] == site


def test_real_agent_reports_a_failing_command_with_its_output_tail(agent_url: str) -> None:
    assert httpx.post(f"{agent_url}/v1/phases/config", auth=AGENT_AUTH, json={}, timeout=5).status_code == 202
    done = _wait_phase_auth(agent_url, lambda c: c["state"] != "running")
    assert done["state"] == "failed" and done["progress"] == 30
    assert "exit status 3" in done["message"]
    assert "applying manifests" in done["message"] and "disk full" in done["message"]


def test_real_agent_abort_kills_the_running_command(agent_url: str, agent_dir: Path) -> None:
    sleep = (agent_dir / "sleep").read_text()
    assert httpx.post(f"{agent_url}/v1/phases/install", auth=AGENT_AUTH, json={}, timeout=5).status_code == 202
    assert httpx.post(f"{agent_url}/v1/phases/config", auth=AGENT_AUTH, json={}, timeout=5).status_code == 409
    assert _wait_until(lambda: _sleepers(sleep), time.monotonic() + 5)  # the command is running
    aborted = httpx.post(f"{agent_url}/v1/phases/current/abort", auth=AGENT_AUTH, timeout=5)
    assert aborted.status_code == 200 and aborted.json()["state"] == "aborted"
    assert _wait_until(lambda: not _sleepers(sleep), time.monotonic() + 5)


def test_real_agent_without_a_command_succeeds_after_phase_seconds(agent_url: str) -> None:
    assert httpx.post(f"{agent_url}/v1/phases/rehome", auth=AGENT_AUTH, json={}, timeout=5).status_code == 202
    assert _wait_phase_auth(agent_url, lambda c: c["state"] != "running")["state"] == "succeeded"


def test_real_agent_streams_the_file_its_backup_command_wrote(agent_url: str, agent_dir: Path) -> None:
    assert httpx.post(f"{agent_url}/v1/phases/backup", auth=AGENT_AUTH, json={"name": "edge-1"},
                      timeout=5).status_code == 202
    assert _wait_phase_auth(agent_url, lambda c: c["state"] != "running")["state"] == "succeeded"
    written = agent_dir / "backup.bin"
    assert json.loads((agent_dir / "backup-payload.json").read_text())["backup_file"] == str(written)
    streamed = httpx.get(f"{agent_url}/v1/backups/24.09", auth=AGENT_AUTH, timeout=5)
    assert streamed.status_code == 200 and streamed.content == written.read_bytes()
    assert len(streamed.content) == 300000
    assert httpx.delete(f"{agent_url}/v1/backups/24.09", auth=AGENT_AUTH, timeout=5).status_code == 200
    assert not written.exists()


def test_real_agent_will_not_start_without_a_password() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DCMAN_AGENT_PASSWORD"}
    result = subprocess.run([DCMAN, "agent", "--bind", f"127.0.0.1:{free_port()}"], capture_output=True,
                            text=True, timeout=30, env=env)
    assert result.returncode == 2 and "DCMAN_AGENT_PASSWORD" in result.stderr


def _wait_phase_auth(url: str, done: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = httpx.get(f"{url}/v1/phases/current", auth=AGENT_AUTH, timeout=5).json()
        if done(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.02)


def _wait_until(condition: Any, deadline: float) -> bool:
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _sleepers(duration: str) -> list[str]:
    """`sleep <duration>` processes still alive (the install command of the agent under test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", duration.encode()]:
                    found.append(entry.name)
            except OSError:
                pass
    return found


def test_a_backup_phase_leaves_a_backup_streamed_whole_and_deleted_on_request(clean: Sim) -> None:
    url = clean.agent("127.1.0.34")  # sim-00005
    assert httpx.get(f"{url}/v1/backups/24.09", auth=AUTH, timeout=5).status_code == 404
    assert httpx.post(f"{url}/v1/phases/restore", auth=AUTH, json={"local_only": True}, timeout=5).status_code == 409
    refused = httpx.patch(f"{clean.control}/sim/subclouds/sim-00005", json={"backup_mb": -1}, timeout=5)
    assert refused.status_code == 400 and "backup_mb" in refused.json()["error"]
    clean.patch("sim-00005", backup_mb=2.5, phase_seconds=0.1)
    assert httpx.post(f"{url}/v1/phases/backup", auth=AUTH, json={}, timeout=5).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    with httpx.stream("GET", f"{url}/v1/backups/24.09", auth=AUTH, timeout=5) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/octet-stream"
        data = b"".join(answer.iter_bytes())
    line = b"sim-00005 24.09 backup\n"
    assert len(data) == int(2.5 * 1024 * 1024) and data == (line * (len(data) // len(line) + 1))[:len(data)]
    # The connection serves the next request once the stream is over.
    with httpx.Client(auth=AUTH, timeout=5) as client:
        assert client.get(f"{url}/v1/backups/24.09").status_code == 200
        assert client.get(f"{url}/v1/status").status_code == 200
        assert client.delete(f"{url}/v1/backups/24.09").json() == {"deleted": "24.09"}
        assert client.get(f"{url}/v1/backups/24.09").status_code == 404


def test_a_backup_phase_leaves_a_backup_whose_checksum_is_that_of_its_bytes(clean: Sim) -> None:
    url = clean.agent("127.1.0.34")  # sim-00005
    assert httpx.get(f"{url}/v1/backups/24.09/checksum", auth=AUTH, timeout=5).status_code == 404
    clean.patch("sim-00005", backup_mb=0.5, phase_seconds=0.1)
    assert httpx.post(f"{url}/v1/phases/backup", auth=AUTH, json={}, timeout=5).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    data = httpx.get(f"{url}/v1/backups/24.09", auth=AUTH, timeout=5).content
    assert httpx.get(f"{url}/v1/backups/24.09/checksum", auth=AUTH, timeout=5).json() == {
        "release": "24.09", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _upload(url: str, release: str, *pieces: bytes, start: int = 0) -> list[httpx.Response]:
    answers, offset = [], start
    for piece in pieces:
        answers.append(httpx.put(f"{url}/v1/backups/{release}/upload", params={"offset": offset}, content=piece,
                                 auth=AUTH, timeout=5))
        offset += len(piece)
    return answers


def _commit(url: str, release: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/backups/{release}/upload/commit", json=body, auth=AUTH, timeout=5)


def test_an_upload_becomes_the_subclouds_backup_only_at_the_announced_size_and_checksum(clean: Sim) -> None:
    url = clean.agent("127.1.0.26")  # sim-00004
    # A central restore needs the backup on the subcloud.
    refused = httpx.post(f"{url}/v1/phases/restore", auth=AUTH, json={"release": "24.09"}, timeout=5)
    assert refused.status_code == 409 and "uploads its central backup first" in refused.json()["error"]
    assert [a.json() for a in _upload(url, "24.09", b"abc", b"def")] == [{"received": 3}, {"received": 6}]
    out_of_order = _upload(url, "24.09", b"x", start=9)[0]
    assert out_of_order.status_code == 409 and "at byte 6" in out_of_order.json()["error"]
    wrong = _commit(url, "24.09", {"size": 6, "sha256": hashlib.sha256(b"abcdeX").hexdigest()})
    assert wrong.status_code == 409 and "it was discarded" in wrong.json()["error"]
    assert _commit(url, "24.09", {"size": 6, "sha256": hashlib.sha256(b"abcdef").hexdigest()}).status_code == 409
    assert httpx.get(f"{url}/v1/backups/24.09/checksum", auth=AUTH, timeout=5).status_code == 404

    _upload(url, "24.09", b"abc", b"def")
    right = {"size": 6, "sha256": hashlib.sha256(b"abcdef").hexdigest()}
    assert _commit(url, "24.09", right).json() == {"release": "24.09", **right}
    assert httpx.get(f"{url}/v1/backups/24.09/checksum", auth=AUTH, timeout=5).json() == {"release": "24.09", **right}
    assert (clean.item("sim-00004")["backup_release"], clean.item("sim-00004")["uploads"]) == ("24.09", 1)
    assert httpx.post(f"{url}/v1/phases/restore", auth=AUTH, json={"release": "24.09"}, timeout=5).status_code == 202


@pytest.mark.parametrize(("method", "path", "kw", "status"), [
    ("PUT", "/v1/backups/24.09/upload", {"params": {"offset": "one"}, "content": b"a"}, 400),
    ("PUT", "/v1/backups/24.09/upload", {"content": b"a"}, 400),
    ("PUT", "/v1/backups/24.09/upload", {"params": {"offset": "0"}, "content": b"a" * (4 * 1024 * 1024 + 1)}, 413),
    ("GET", "/v1/backups/24.09/upload", {}, 405),
    ("POST", "/v1/backups/24.09/upload/commit", {"json": {"size": True, "sha256": "0" * 64}}, 400),
    ("POST", "/v1/backups/24.09/upload/commit", {"json": {"size": 1, "sha256": "not hex"}}, 400),
    ("POST", "/v1/backups/24.09/upload/commit", {"content": b"{not json"}, 400),
    ("POST", "/v1/backups/24.09/upload/commit", {"json": [1, 2]}, 400),
    ("GET", "/v1/backups/24.09/bogus", {}, 404),
    ("GET", "/v1/backups/..%2F..%2Fetc/checksum", {}, 404),
], ids=["offset-word", "offset-missing", "piece-too-large", "get-upload", "size-bool", "sha-not-hex", "commit-not-json",
        "commit-list", "unknown-action", "release-path"])
def test_hostile_upload_requests_get_one_sentence_and_change_nothing(clean: Sim, method, path, kw, status) -> None:
    url = clean.agent("127.1.0.18")  # sim-00003
    answer = httpx.request(method, url + path, auth=AUTH, timeout=5, **kw)
    assert answer.status_code == status and answer.json()["error"].endswith(".")
    assert clean.item("sim-00003")["uploads"] == 0 and clean.item("sim-00003")["backup_release"] is None


def test_real_agent_stores_an_upload_as_its_backup_file(agent_url: str, agent_dir: Path) -> None:
    data = os.urandom(300_000)
    right = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert [a.status_code for a in _upload_to(agent_url, data[:200_000], data[200_000:])] == [200, 200]
    assert httpx.post(f"{agent_url}/v1/backups/24.09/upload/commit", json=right, auth=AGENT_AUTH,
                      timeout=5).json() == {"release": "24.09", **right}
    assert (agent_dir / "backup.bin").read_bytes() == data and not (agent_dir / "backup.bin.upload").exists()
    assert httpx.get(f"{agent_url}/v1/backups/24.09", auth=AGENT_AUTH, timeout=5).content == data
    assert httpx.post(f"{agent_url}/v1/phases/restore", auth=AGENT_AUTH, json={"release": "24.09"},
                      timeout=5).status_code == 202
    assert _wait_phase_auth(agent_url, lambda c: c["state"] != "running")["state"] == "succeeded"


def _upload_to(url: str, *pieces: bytes) -> list[httpx.Response]:
    answers, offset = [], 0
    for piece in pieces:
        answers.append(httpx.put(f"{url}/v1/backups/24.09/upload", params={"offset": offset}, content=piece,
                                 auth=AGENT_AUTH, timeout=5))
        offset += len(piece)
    return answers
