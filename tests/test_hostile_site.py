"""A real `dcman serve` probed as an attacker would, on loopback: crafted region names from a
"peer", huge and endless bodies, idle and half-sent connections, parser bombs, odd names,
scrape floods, password guessing and token copies. Each test checks the answer a client sees,
that the site kept serving others (and auditing a simulated subcloud), and that nothing stored
changed. The site runs with 1,400 open files at most, as a small host would give it."""

from __future__ import annotations

import asyncio
import base64
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import ADMIN_PASSWORD, ADMIN_USER, add_form, bootstrap_values
from simfleet import Fleet, running_fleet, wait_until

NOFILE = 1400  # the site then admits 376 client connections (dcman/api/connections.py)
PEER = "dcmanager/1.0"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("hostile"), 2, interval=1.0, nofile=NOFILE) as running:
        running.online("sim-00001")
        yield running


def fault(response: httpx.Response) -> str:
    """The one sentence of an error: Keystone's body on /v3, the reference's on /v1.0."""
    body = response.json()
    return body["error"]["message"] if "error" in body else body["error_message"]["faultstring"]


def stored(fleet: Fleet) -> tuple[list, list]:
    """What a hostile request must not change: the subclouds and groups as the API shows them
    (without the audit's moving figures), and the names of the files in the data directory."""
    subclouds = sorted((s["name"], s["region-name"], s["deploy-status"], s["management-state"])
                       for s in fleet.call("GET", "/subclouds").json()["subclouds"])
    groups = sorted(g["name"] for g in fleet.call("GET", "/subcloud-groups").json()["subcloud_groups"])
    files = sorted(str(p.relative_to(fleet.site.data_dir)) for p in fleet.site.data_dir.rglob("*")
                   if not p.name.endswith(("-wal", "-shm", "-journal")) and p.name != "serve.log")
    return [subclouds, groups], files


def serves_others(fleet: Fleet) -> None:
    """An authenticated call answers, and the audit still sees the simulated subcloud online."""
    started = time.monotonic()
    response = fleet.call("GET", "/subclouds/sim-00001")
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 5
    assert response.json()["availability-status"] == "online"
    assert fleet.stored("sim-00001") == ("online", 0)


def peer_headers(fleet: Fleet) -> dict[str, str]:
    return {"X-Auth-Token": fleet.token, "User-Agent": PEER}


def secondary_add(fleet: Fleet, name: str, region: str) -> httpx.Response:
    data, files = add_form(name, bootstrap_values(name), secondary="true", region_name=region)
    return httpx.post(fleet.site.url + "/v1.0/subclouds", data=data, files=files, headers=peer_headers(fleet),
                      timeout=10)


# --- 1. no path from input to the file system ---------------------------------------------


@pytest.mark.parametrize("region", ["../../victim", "..", ".", "a/b", "/etc", "a\\b", "..\\..\\victim",
                                    "x\x00y", "x\ny", "x\ry", "x y", "RegionOne"])
def test_a_crafted_region_name_from_a_peer_is_refused(fleet, region):
    before = stored(fleet)
    response = secondary_add(fleet, "crafted", region)
    assert response.status_code == 400, response.text
    assert "region" in fault(response).lower() or "NUL" in fault(response)
    assert stored(fleet) == before
    serves_others(fleet)


def test_a_stored_region_that_names_a_path_reaches_nothing_outside_the_data_directory(fleet):
    """A region an older release accepted ('../../victim') is never used as a path: deleting
    its subcloud removes DATA_DIR/subclouds/<id> and nothing else."""
    victim = fleet.site.data_dir.parent / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("not dcman's")
    response = secondary_add(fleet, "oldregion", "old-region-1")
    assert response.status_code == 200, response.text
    subcloud_id = response.json()["id"]
    with sqlite3.connect(fleet.site.data_dir / "dcman.sqlite", timeout=10) as db:
        db.execute("UPDATE subclouds SET region_name='../../victim' WHERE id=?", (subcloud_id,))
    folder = fleet.site.data_dir / "subclouds" / str(subcloud_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bootstrap.log").write_text("a phase log")

    deleted = httpx.delete(f"{fleet.site.url}/v1.0/subclouds/oldregion", headers=peer_headers(fleet), timeout=10)
    assert deleted.status_code == 200, deleted.text
    assert (victim / "keep.txt").read_text() == "not dcman's"
    assert not folder.exists()
    serves_others(fleet)


# --- 3. hostile bodies and slow clients -----------------------------------------------------


def _rss_kb(fleet: Fleet) -> int:
    status = Path(f"/proc/{fleet.site.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def test_a_300_mb_chunked_body_is_refused_after_the_limit_without_being_held(fleet):
    before, rss = stored(fleet), _rss_kb(fleet)
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        chunk = b" " * (1 << 20)
        for _ in range(300):
            sent += len(chunk)
            yield chunk

    try:
        response = httpx.post(fleet.site.url + "/v1.0/subcloud-groups", content=body(), timeout=30,
                              headers={"X-Auth-Token": fleet.token, "Content-Type": "application/json"})
        assert response.status_code == 413, response.text
        assert "larger than" in fault(response)
    except httpx.TransportError:  # the site closed the connection while the body still streamed
        pass
    assert sent < 300 << 20  # the site stopped reading long before the end
    assert _rss_kb(fleet) - rss < 64 * 1024
    assert stored(fleet) == before
    serves_others(fleet)


def test_a_declared_300_mb_body_is_refused_before_it_is_read(fleet):
    before = stored(fleet)
    with socket.create_connection(("127.0.0.1", int(fleet.site.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(b"POST /v1.0/subclouds HTTP/1.1\r\nHost: site\r\nContent-Type: multipart/form-data; "
                     b"boundary=x\r\nContent-Length: 314572800\r\nX-Auth-Token: " + fleet.token.encode() + b"\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()
    assert stored(fleet) == before
    serves_others(fleet)


def test_a_request_head_that_never_ends_is_refused(fleet):
    with socket.create_connection(("127.0.0.1", int(fleet.site.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(b"GET /v1.0/subclouds HTTP/1.1\r\nHost: site\r\n")
        answer = b""
        try:
            for _ in range(64):  # 1 MiB of headers, unless the site answers first
                sock.sendall(b"X-Filler: " + b"f" * 16_000 + b"\r\n")
        except OSError:  # the site closed the connection: what was answered is in the socket
            pass
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    serves_others(fleet)


def test_hundreds_of_idle_and_half_sent_connections_neither_stop_the_site_nor_the_audit(fleet):
    port = int(fleet.site.url.rsplit(":", 1)[1])
    socks = []
    try:
        for i in range(1500):  # more than the site may open files, let alone admits connections
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                sock.sendall(b"GET /v1.0/subclouds HTTP/1.1\r\nHost: si")  # half a request head
            socks.append(sock)
        for _ in range(3):  # over three audit intervals
            serves_others(fleet)
            time.sleep(1)
        # Every one of them is closed by the site within the 10 s allowed for a request head.
        deadline = time.monotonic() + 15
        for sock in socks:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                assert sock.recv(1024) == b""
            except ConnectionResetError:
                pass
    finally:
        for sock in socks:
            sock.close()
    serves_others(fleet)


def _while_others_are_served(fleet: Fleet, hostile) -> tuple[httpx.Response, float, float]:  # type: ignore[no-untyped-def]
    """Run `hostile()` while another client keeps calling; (its answer, its time, the others' worst time)."""
    worst, done = 0.0, threading.Event()

    def others() -> None:
        nonlocal worst
        with httpx.Client(headers={"X-Auth-Token": fleet.token}, timeout=10) as client:
            while not done.is_set():
                started = time.monotonic()
                assert client.get(fleet.site.url + "/v1.0/subclouds").status_code == 200
                worst = max(worst, time.monotonic() - started)

    thread = threading.Thread(target=others)
    thread.start()
    try:
        started = time.monotonic()
        response = hostile()
        took = time.monotonic() - started
    finally:
        done.set()
        thread.join()
    return response, took, worst


def test_a_20_kb_nested_yaml_upload_answers_400_quickly(fleet):
    before = stored(fleet)
    bomb = ("name: bomb\nsystem_mode: " + "[" * 10_000 + "]" * 10_000 + "\n").encode()
    files = {"bootstrap_values": ("bootstrap.yaml", bomb, "application/x-yaml")}
    data = add_form("bomb")[0]
    response, took, worst = _while_others_are_served(fleet, lambda: httpx.post(
        fleet.site.url + "/v1.0/subclouds", data=data, files=files, headers={"X-Auth-Token": fleet.token},
        timeout=30))
    assert response.status_code == 400, response.text
    assert "bootstrap_values" in fault(response)
    assert took < 2 and worst < 2
    assert stored(fleet) == before
    serves_others(fleet)


def test_yaml_nested_by_indentation_answers_400(fleet):
    before = stored(fleet)
    deep = "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "x: 1\n"
    data, files = add_form("deep")
    files["install_values"] = ("install.yaml", deep.encode(), "application/x-yaml")
    response = fleet.call("POST", "/subclouds", data=data, files=files)
    assert response.status_code == 400 and "deeper than 32" in fault(response), response.text
    assert stored(fleet) == before


@pytest.mark.parametrize("depth", [40, 6000])
def test_deeply_nested_json_answers_400_quickly(fleet, depth):
    before = stored(fleet)
    bomb = '{"name": "g", "description": ' + "[" * depth + "]" * depth + "}"
    response, took, worst = _while_others_are_served(fleet, lambda: httpx.post(
        fleet.site.url + "/v1.0/subcloud-groups", content=bomb, timeout=30,
        headers={"X-Auth-Token": fleet.token, "Content-Type": "application/json"}))
    assert response.status_code == 400, response.text
    assert "nests deeper than 32" in fault(response)
    assert took < 2 and worst < 2
    assert stored(fleet) == before


GROUP = {"description": "d", "update_apply_type": "serial", "max_parallel_subclouds": 1}


@pytest.mark.parametrize("path, body, words", [
    ("/subcloud-groups", '{"name": "a\\ud800b", "description": "d", "update_apply_type": "serial", '
                         '"max_parallel_subclouds": 1}', "surrogate"),
    ("/subcloud-groups", {"name": "a\nb", **GROUP}, "control characters"),
    ("/subcloud-groups", {"name": "ab\n", **GROUP}, "control characters"),
    ("/subcloud-groups", {"name": "a\x00b", **GROUP}, "NUL"),
    ("/subcloud-peer-groups", {"peer-group-name": "pg\n"}, "control characters"),
    ("/subcloud-peer-groups", '{"peer-group-name": "\\udfff"}', "surrogate"),
    ("/system-peers", {"peer_uuid": "1b0d9e8c-6b1f-4f6e-9d3c-2f1c6f0f1a11", "peer_name": "p\r\neer",
                       "manager_endpoint": "http://127.0.0.1:1/v3", "manager_username": "admin",
                       "manager_password": base64.b64encode(b"secret-password").decode(),
                       "peer_controller_gateway_address": "127.0.0.1"}, "control characters"),
])
def test_odd_characters_in_names_answer_400(fleet, path, body, words):
    before = stored(fleet)
    kw = {"content": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, str) else {"json": body}
    headers = {"X-Auth-Token": fleet.token, **kw.pop("headers", {})}
    response = httpx.post(fleet.site.url + "/v1.0" + path, headers=headers, timeout=10, **kw)
    assert response.status_code == 400, response.text
    assert words in fault(response)
    assert stored(fleet) == before


@pytest.mark.parametrize("name", ["edge\n", "edge\x00", "ed\u2028ge"])
def test_odd_characters_in_a_subcloud_name_answer_400(fleet, name):
    before = stored(fleet)
    data, files = add_form("x", bootstrap_values(name))
    response = fleet.call("POST", "/subclouds", data=data, files=files)
    assert response.status_code == 400, response.text
    assert stored(fleet) == before


def test_a_rename_is_matched_whole(fleet):
    """`re.match` with `$` lets a trailing newline through; names are matched whole."""
    response = fleet.call("PATCH", "/subclouds/sim-00001", json={"name": "edge-1\n"})
    assert response.status_code == 400 and "RFC 1123" in fault(response), response.text
    assert fleet.subcloud("sim-00001")["name"] == "sim-00001"


def test_300_concurrent_scrapes_leave_authenticated_calls_answering(fleet):
    async def flood(started: threading.Event) -> list[int]:
        async with httpx.AsyncClient(base_url=fleet.site.url, limits=httpx.Limits(max_connections=300),
                                     timeout=60) as scraper:
            scrapes = [asyncio.create_task(scraper.get("/metrics")) for _ in range(300)]
            await asyncio.sleep(0.05)
            started.set()
            return [r.status_code for r in await asyncio.gather(*scrapes)]

    started, statuses = threading.Event(), []
    thread = threading.Thread(target=lambda: statuses.extend(asyncio.run(flood(started))))
    thread.start()
    try:
        started.wait(timeout=30)
        serves_others(fleet)  # from this thread: its own client, as another operator would be
    finally:
        thread.join()
    assert len(statuses) == 300 and set(statuses) <= {200, 503}
    serves_others(fleet)


# --- 4. accounts ------------------------------------------------------------------------------


def _login(fleet: Fleet, password: str, user: str = ADMIN_USER, source: str = "127.0.0.1") -> httpx.Response:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"name": "Default"}}}}}}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as client:
        return client.post(fleet.site.url + "/v3/auth/tokens", json=body)


def test_repeated_wrong_passwords_are_throttled_with_a_growing_wait_reset_by_success(fleet):
    source = "127.0.0.7"
    for _ in range(4):  # three free tries, and the fourth starts a 1 s wait
        assert _login(fleet, "wrong-password", source=source).status_code == 401
    first = _login(fleet, ADMIN_PASSWORD, source=source)  # even the right password waits
    assert first.status_code == 429 and first.headers["Retry-After"] == "1", first.text
    assert "Too many wrong passwords" in fault(first)
    # Another client, or another account from this client, is not held up.
    assert _login(fleet, ADMIN_PASSWORD, source="127.0.0.8").status_code == 201
    assert _login(fleet, "wrong-password", user="nobody", source=source).status_code == 401
    serves_others(fleet)

    time.sleep(1.1)
    assert _login(fleet, "wrong-password", source=source).status_code == 401
    second = _login(fleet, "wrong-password", source=source)
    assert second.status_code == 429 and second.headers["Retry-After"] == "2", second.text

    time.sleep(2.1)
    assert _login(fleet, ADMIN_PASSWORD, source=source).status_code == 201  # success resets
    for _ in range(3):
        assert _login(fleet, "wrong-password", source=source).status_code == 401


@pytest.mark.parametrize("length", [73, 5000, 100_000])
def test_a_password_longer_than_bcrypt_reads_is_refused_cleanly(fleet, length):
    response = _login(fleet, "p" * length, source="127.0.0.9")
    assert response.status_code == 401, response.text
    assert fault(response) == "The user name or password is wrong."
    serves_others(fleet)


def test_an_account_with_a_long_password_counts_every_byte(fleet, tmp_path):
    import subprocess

    password = "x" * 80 + "-tail"
    created = subprocess.run(
        [str(Path(fleet.site.process.args[0])), "user", "create", "longpw", "--role", "reader", "--password", password],
        env={**fleet.site.env(), **fleet.site.extra_env}, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    assert _login(fleet, password, user="longpw", source="127.0.0.10").status_code == 201
    # Same first 72 bytes, another end: bcrypt alone would let it in.
    assert _login(fleet, "x" * 80 + "-TAIL", user="longpw", source="127.0.0.10").status_code == 401
    too_long = subprocess.run(
        [str(Path(fleet.site.process.args[0])), "user", "create", "huge", "--role", "reader", "--password",
         "y" * 2000], env={**fleet.site.env(), **fleet.site.extra_env}, capture_output=True, text=True, timeout=60)
    assert too_long.returncode != 0 and "at most 1024 characters" in too_long.stderr
    assert "Traceback" not in too_long.stderr


def test_a_token_made_from_another_dies_when_that_one_is_revoked(fleet):
    parent = _login(fleet, ADMIN_PASSWORD).headers["X-Subject-Token"]

    def child_of(token: str) -> str:
        body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}
        made = httpx.post(fleet.site.url + "/v3/auth/tokens", json=body, timeout=10)
        assert made.status_code == 201, made.text
        return made.headers["X-Subject-Token"]

    child = child_of(parent)
    grandchild = child_of(child)
    for token in (parent, child, grandchild):
        assert httpx.get(fleet.site.url + "/v1.0/subclouds", headers={"X-Auth-Token": token}).status_code == 200
    revoked = httpx.delete(fleet.site.url + "/v3/auth/tokens", timeout=10,
                           headers={"X-Auth-Token": parent, "X-Subject-Token": parent})
    assert revoked.status_code == 204
    for token in (parent, child, grandchild):
        shown = httpx.get(fleet.site.url + "/v1.0/subclouds", headers={"X-Auth-Token": token})
        assert shown.status_code == 401 and "revoked" in fault(shown)
    serves_others(fleet)  # the fleet's own token was not made from it


# --- 5. private data --------------------------------------------------------------------------


def test_the_data_directory_is_private(fleet):
    data_dir = fleet.site.data_dir
    wait_until(lambda: (data_dir / "subclouds").is_dir())  # sim-00001's phase logs
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    found = [p for p in data_dir.rglob("*") if p.name != "serve.log"]  # the test's own file, made before
    assert any(p.name == "secret.key" for p in found) and any(p.suffix == ".log" for p in found)
    for path in found:
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


# --- 7. crash leftovers -----------------------------------------------------------------------


def test_a_subcloud_left_in_create_failed_by_a_restart_can_be_resumed_or_redeployed(tmp_path):
    from conftest import restart_site_process, stop_site_process, token_for

    with running_fleet(tmp_path, 3) as fleet:
        fleet.add("sim-00001")
        fleet.add("sim-00002", install_values=yaml.safe_dump({
            "bootstrap_interface": "eno1", "bootstrap_address": "10.10.0.2", "bootstrap_address_prefix": 16,
            "install_type": 0, "bmc_username": "root", "bmc_address": "10.20.0.2",
            "bmc_password": "Ym1jLXNlY3JldA=="}))
        for name in ("sim-00001", "sim-00002"):
            wait_until(lambda name=name: fleet.subcloud(name)["deploy-status"] == "complete", timeout=40)
        first = fleet.subcloud("sim-00001")
        stop_site_process(fleet.site)
        # A restart that caught both in the middle of their create step:
        with sqlite3.connect(fleet.site.data_dir / "dcman.sqlite", timeout=10) as db:
            db.execute("UPDATE subclouds SET deploy_status='creating', availability_status='offline'")
        # ... over a data directory an older release left: logs by region, a readable key.
        old = fleet.site.data_dir / "logs" / first["region-name"]
        old.mkdir(parents=True)
        (old / "install.log").write_text("an old install log")
        (old / "install.log").chmod(0o644)
        (fleet.site.data_dir / "secret.key").chmod(0o644)
        fleet.site = restart_site_process(fleet.site)
        fleet.token = token_for(fleet.site)
        moved = fleet.site.data_dir / "subclouds" / str(first["id"]) / "install.log"
        assert moved.read_text() == "an old install log" and not (fleet.site.data_dir / "logs").exists()
        assert stat.S_IMODE(moved.stat().st_mode) == 0o600
        assert stat.S_IMODE((fleet.site.data_dir / "secret.key").stat().st_mode) == 0o600
        for name in ("sim-00001", "sim-00002"):
            shown = fleet.subcloud(name)
            assert shown["deploy-status"] == "create-failed" and "restarted" in shown["error-description"]

        resumed = fleet.call("PATCH", "/phased-subcloud-deploy/sim-00001/resume", json={})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["deploy-status"] == "creating"
        redeployed = fleet.call("PATCH", "/subclouds/sim-00002/redeploy", json={})
        assert redeployed.status_code == 200, redeployed.text
        assert redeployed.json()["deploy-status"] == "pre-install"
        for name in ("sim-00001", "sim-00002"):
            wait_until(lambda name=name: fleet.subcloud(name)["deploy-status"] == "complete", timeout=40)
            wait_until(lambda name=name: fleet.subcloud(name)["availability-status"] == "online", timeout=40)
