"""Fencing at the agent (issue 18), against a real `dcman sim`: the witness fields of the status,
the rehome's compare-and-set claim, the refusal of stale controllers, the `blocked_sites` cut
and the simulator's double-controller count."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import DCMAN, free_port
from dcman.drivers.agent_client import AgentClient, Fenced, basic_auth
from test_agent_sim import AUTH, PASSWORD, Sim, _start, _stop, _wait_phase

COUNT = 12


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    port, control_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("fencing-sim") / "sim.log"
    running = _start(["sim", "--count", str(COUNT), "--port", str(port), "--control", f"127.0.0.1:{control_port}",
                      "--phase-seconds", "0"], "sim:", log)
    yield Sim(port, f"http://127.0.0.1:{control_port}")
    _stop(running)


def _agent(sim: Sim, name: str) -> str:
    return sim.agent(sim.item(name)["management_start_ip"])


def _site() -> str:
    return str(uuid.uuid4())


def _call(method: str, url: str, site: str | None = None, epoch: Any = None, **kw: Any) -> httpx.Response:
    headers = {}
    if site is not None:
        headers["X-Dcman-Site"] = site
    if epoch is not None:
        headers["X-Dcman-Epoch"] = str(epoch)
    return httpx.request(method, url, auth=AUTH, headers=headers, timeout=5, **kw)


def _status(url: str, site: str | None = None) -> dict[str, Any]:
    answer = _call("GET", f"{url}/v1/status", site)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _bootstrapped(url: str, site: str) -> None:
    """The subcloud adopted by `site` through a bootstrap (a subcloud without controller takes any site)."""
    started = _call("POST", f"{url}/v1/phases/bootstrap", site, 0, json={"system_controller": site})
    assert started.status_code == 202, started.text
    assert started.json()["fencing_epoch"] == 0
    assert _wait_phase(url)["state"] == "succeeded"
    assert _status(url)["system_controller"] == site


def _rehome(url: str, site: str, controller: str | None, epoch: int) -> httpx.Response:
    return _call("POST", f"{url}/v1/phases/rehome", site,
                 json={"system_controller": site, "takeover_from": {"system_controller": controller,
                                                                   "fencing_epoch": epoch}})


def test_witness_fields_count_only_the_controllers_requests(sim: Sim) -> None:
    url = _agent(sim, "sim-00001")
    first = _status(url)
    assert (first["fencing_epoch"], first["controller_heard_s"]) == (0, None)  # no controller yet
    a, b = _site(), _site()
    _bootstrapped(url, a)
    assert _status(url, a)["controller_heard_s"] == 0.0  # A's own request is heard first
    time.sleep(0.5)
    for _ in range(3):  # another site's requests do not make the controller heard
        heard = _status(url, b)["controller_heard_s"]
    assert heard >= 0.5
    assert _status(url)["controller_heard_s"] >= 0.5  # nor do unnamed callers
    assert _call("GET", f"{url}/v1/alarms/summary", a).status_code == 200  # any request of A counts
    assert _status(url, b)["controller_heard_s"] < 0.5
    item = sim.item("sim-00001")
    assert item["fencing_epoch"] == 0 and item["controller_heard_s"] < 0.5 and item["double_controller"] == 0


def test_two_sites_racing_to_rehome_from_one_claim_end_with_one_winner(sim: Sim) -> None:
    url = _agent(sim, "sim-00002")
    old, b, c = _site(), _site(), _site()
    _bootstrapped(url, old)
    sim.patch("sim-00002", phase_seconds=1.0)
    answers: dict[str, httpx.Response] = {}
    barrier = threading.Barrier(2)

    def race(site: str) -> None:
        barrier.wait()
        answers[site] = _rehome(url, site, old, 0)

    racers = [threading.Thread(target=race, args=(site,)) for site in (b, c)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    statuses = sorted(answer.status_code for answer in answers.values())
    assert statuses == [202, 409], {site: answer.text for site, answer in answers.items()}
    winner = next(site for site, answer in answers.items() if answer.status_code == 202)
    loser = c if winner == b else b
    assert answers[winner].json()["fencing_epoch"] == 1
    refused = answers[loser].json()
    assert refused["fenced"] is True and refused["system_controller"] == winner and refused["fencing_epoch"] == 1
    assert refused["error"] == (f"Subcloud sim-00002 rehome refused: the subcloud answers to {winner} at epoch 1, "
                                f"not {old} at epoch 0.")
    # The claim holds from the rehome's start: the old controller is fenced at once.
    assert _status(url)["system_controller"] == winner and _status(url)["fencing_epoch"] == 1
    stale = _call("POST", f"{url}/v1/phases/current/abort", old, 0)
    assert stale.status_code == 409 and stale.json()["fenced"] is True
    assert _wait_phase(url)["state"] == "succeeded"
    assert sim.item("sim-00002")["system_controller"] == winner
    assert sim.item("sim-00002")["double_controller"] == 0


def test_a_phase_at_an_older_epoch_or_from_another_site_is_fenced_with_a_clear_409(sim: Sim) -> None:
    url = _agent(sim, "sim-00003")
    old, new = _site(), _site()
    _bootstrapped(url, old)
    assert _rehome(url, new, old, 0).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    refused = _call("POST", f"{url}/v1/phases/config", old, 0, json={})
    assert refused.status_code == 409
    assert refused.json() == {
        "error": f"Subcloud sim-00003 is fenced: it answers to {new} at epoch 1; this request came from {old} "
                 "with epoch 0.",
        "fenced": True, "system_controller": new, "fencing_epoch": 1}
    # The new controller at an old epoch is fenced too; at its epoch it is obeyed.
    assert _call("POST", f"{url}/v1/phases/config", new, 0, json={}).status_code == 409
    assert _call("POST", f"{url}/v1/phases/config", new, 1, json={}).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    # An unnamed caller (an old client) is held to the epoch alone.
    unnamed = _call("POST", f"{url}/v1/phases/config", json={})
    assert unnamed.status_code == 409
    assert "this request came from an unnamed caller with epoch 0" in unnamed.json()["error"]
    assert _call("POST", f"{url}/v1/phases/config", None, 1, json={}).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    # A stale claim is refused too, and changes nothing.
    stale = _rehome(url, old, old, 0)
    assert stale.status_code == 409 and stale.json()["fenced"] is True
    assert (_status(url)["system_controller"], _status(url)["fencing_epoch"]) == (new, 1)


def test_a_claiming_site_rerunning_its_own_running_rehome_is_told_busy(sim: Sim) -> None:
    """What a site restarted mid-rehome meets: its own claim running, which its client adopts."""
    url = _agent(sim, "sim-00004")
    old, new, other = _site(), _site(), _site()
    _bootstrapped(url, old)
    sim.patch("sim-00004", phase_seconds=30)
    assert _rehome(url, new, old, 0).status_code == 202
    busy = _rehome(url, new, new, 1)
    assert busy.status_code == 409 and "fenced" not in busy.json() and "already running" in busy.json()["error"]
    late = _rehome(url, other, new, 1)  # a third site that read the claim still may not join it
    assert late.status_code == 409 and late.json()["fenced"] is True
    assert _call("POST", f"{url}/v1/phases/current/abort", new, 1).status_code == 200
    assert (_status(url)["system_controller"], _status(url)["fencing_epoch"]) == (new, 1)


def test_blocked_sites_reset_only_that_sites_connections(sim: Sim) -> None:
    url = _agent(sim, "sim-00005")
    cut, seen = _site(), _site()
    with httpx.Client(auth=AUTH, headers={"X-Dcman-Site": cut}, timeout=5) as kept:
        assert kept.get(f"{url}/v1/status").status_code == 200  # a kept-alive connection first
        item = sim.patch("sim-00005", blocked_sites=[cut])
        assert item["faults"]["blocked_sites"] == [cut]
        with pytest.raises(httpx.TransportError):
            kept.get(f"{url}/v1/status")
    with pytest.raises(httpx.TransportError):
        _call("POST", f"{url}/v1/phases/install", cut, json={})
    assert _status(url, seen)["name"] == "sim-00005"
    assert _status(url)["name"] == "sim-00005"
    assert httpx.post(f"{sim.control}/sim/reset", timeout=5).status_code == 200
    assert sim.item("sim-00005")["faults"]["blocked_sites"] == []
    assert _status(url, cut)["name"] == "sim-00005"


def test_double_controller_stays_zero_under_the_rules_and_counts_an_unnamed_violation(sim: Sim) -> None:
    url = _agent(sim, "sim-00006")
    a, b = _site(), _site()
    _bootstrapped(url, a)
    assert _rehome(url, b, a, 0).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    assert _call("POST", f"{url}/v1/phases/config", a, 0, json={}).status_code == 409
    assert _call("POST", f"{url}/v1/phases/config", b, 1, json={}).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    assert sim.item("sim-00006")["double_controller"] == 0

    # Old clients naming no site can still make two controllers at one epoch: the witness counts it.
    url = _agent(sim, "sim-00007")
    assert _call("POST", f"{url}/v1/phases/bootstrap", json={"system_controller": a}).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    assert _call("POST", f"{url}/v1/phases/rehome", json={"system_controller": b}).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    item = sim.item("sim-00007")
    assert (item["system_controller"], item["fencing_epoch"], item["double_controller"]) == (b, 0, 1)


@pytest.mark.parametrize("headers", [
    {"X-Dcman-Epoch": "abc"}, {"X-Dcman-Epoch": "-1"}, {"X-Dcman-Epoch": "1.5"}, {"X-Dcman-Epoch": "²".encode()},
    {"X-Dcman-Epoch": "9" * 40}, {"X-Dcman-Site": "s" * 65},
])
def test_bad_fencing_headers_are_refused_with_400(sim: Sim, headers: dict[str, Any]) -> None:
    url = _agent(sim, "sim-00008")
    answer = httpx.post(f"{url}/v1/phases/install", auth=AUTH, headers=headers, json={}, timeout=5)
    assert answer.status_code == 400
    assert "X-Dcman-" in answer.json()["error"]
    assert _status(url)["fencing_epoch"] == 0 and sim.item("sim-00008")["phase"]["state"] == "idle"


@pytest.mark.parametrize("takeover", [
    "x", {"system_controller": "a"}, {"system_controller": 5, "fencing_epoch": 0},
    {"system_controller": None, "fencing_epoch": -1}, {"system_controller": None, "fencing_epoch": True},
    {"system_controller": None, "fencing_epoch": 0, "extra": 1},
])
def test_bad_takeover_from_is_refused_with_400(sim: Sim, takeover: Any) -> None:
    url = _agent(sim, "sim-00008")
    answer = _call("POST", f"{url}/v1/phases/rehome", _site(), json={"takeover_from": takeover})
    assert answer.status_code == 400 and "takeover_from" in answer.json()["error"]


def test_a_rehome_from_a_site_without_a_claim_is_refused_with_400(sim: Sim) -> None:
    url = _agent(sim, "sim-00008")
    answer = _call("POST", f"{url}/v1/phases/rehome", _site(), json={"system_controller": _site()})
    assert answer.status_code == 400 and "needs takeover_from" in answer.json()["error"]


@pytest.mark.parametrize("value", ["site", [1], ["s" * 65], [""], [str(i) for i in range(17)], None])
def test_bad_blocked_sites_are_refused_and_change_nothing(sim: Sim, value: Any) -> None:
    answer = httpx.patch(f"{sim.control}/sim/subclouds/sim-00009", json={"blocked_sites": value}, timeout=5)
    assert answer.status_code == 400 and "blocked_sites" in answer.json()["error"]
    assert sim.item("sim-00009")["faults"]["blocked_sites"] == []


def test_the_sites_client_names_itself_returns_the_epoch_and_raises_fenced(sim: Sim) -> None:
    url = _agent(sim, "sim-00010")
    address = sim.item("sim-00010")["management_start_ip"]
    a, b = _site(), _site()
    auth = basic_auth(PASSWORD)

    async def scenario() -> tuple[int | None, int | None, Fenced]:
        site_a = AgentClient(sim.port, "http", site_uuid=a)
        site_b = AgentClient(sim.port, "http", site_uuid=b)
        bootstrap = await site_a.start_phase(address, auth, "bootstrap", {"system_controller": a})
        while (await site_a.current_phase(address, auth)).body["state"] == "running":
            await asyncio.sleep(0.02)
        rehome = await site_b.start_phase(address, auth, "rehome", {
            "system_controller": b, "takeover_from": {"system_controller": a, "fencing_epoch": 0}})
        with pytest.raises(Fenced) as refused:
            await site_a.start_phase(address, auth, "config", {}, epoch=0)
        return bootstrap, rehome, refused.value

    bootstrap, rehome, refused = asyncio.run(scenario())
    assert (bootstrap, rehome) == (0, 1)
    assert (refused.system_controller, refused.fencing_epoch) == (b, 1)
    assert "is fenced" in str(refused)
    assert _status(url)["system_controller"] == b


def _real_agent(tmp_path: Path, port: int, state: Path) -> Any:
    return _start(["agent", "--bind", f"127.0.0.1:{port}", "--name", "edge-2", "--phase-seconds", "0",
                   "--state-file", str(state)], "agent:", tmp_path / f"agent-{time.monotonic_ns()}.log",
                  env={"DCMAN_AGENT_PASSWORD": PASSWORD})


def test_a_real_agent_with_a_state_file_stays_fenced_after_a_restart(tmp_path: Path) -> None:
    port, state = free_port(), tmp_path / "agent-state.json"
    url = f"http://127.0.0.1:{port}"
    a, b = _site(), _site()
    running = _real_agent(tmp_path, port, state)
    try:
        _bootstrapped(url, a)
        assert _rehome(url, b, a, 0).status_code == 202
        assert _wait_phase(url)["state"] == "succeeded"
    finally:
        _stop(running)
    assert json.loads(state.read_text())["fencing_epoch"] == 1
    running = _real_agent(tmp_path, port, state)
    try:
        assert (_status(url)["system_controller"], _status(url)["fencing_epoch"]) == (b, 1)
        refused = _call("POST", f"{url}/v1/phases/config", a, 0, json={})
        assert refused.status_code == 409 and refused.json()["fenced"] is True
    finally:
        _stop(running)
    state.write_text('{"fencing_epoch": "one"}')
    result = subprocess.run([DCMAN, "agent", "--bind", f"127.0.0.1:{port}", "--state-file", str(state)],
                            capture_output=True, text=True, timeout=30, env={**os.environ, "DCMAN_AGENT_PASSWORD": "x"})
    assert result.returncode == 2
    assert result.stderr.strip() == f"dcman agent: the state file {state} is not an agent state " \
                                    '({"system_controller", "controller_gateway", "fencing_epoch"})'


def test_an_upload_from_a_site_the_subcloud_no_longer_answers_to_is_fenced(sim: Sim) -> None:
    url = _agent(sim, "sim-00011")
    old, new = _site(), _site()
    _bootstrapped(url, old)
    assert _rehome(url, new, old, 0).status_code == 202
    assert _wait_phase(url)["state"] == "succeeded"
    piece = f"{url}/v1/backups/24.09/upload?offset=0"
    refused = _call("PUT", piece, old, 0, content=b"old site's backup")
    assert refused.status_code == 409 and refused.json()["fenced"] is True
    commit = _call("POST", f"{url}/v1/backups/24.09/upload/commit", old, 0, json={"size": 0, "sha256": "0" * 64})
    assert commit.status_code == 409 and commit.json()["fenced"] is True
    assert _call("PUT", piece, new, 1, content=b"ours").json() == {"received": 4}
    assert sim.item("sim-00011")["uploads"] == 0
