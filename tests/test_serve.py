"""`dcman serve` as an operator runs it: settings, first start, restart, PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet

from conftest import (DCMAN, SITE_BACKENDS, _pg, _pg_available, add_form, free_port, site_database, start_site_process,
                      stop_site_process, token_for)


def serve_with(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    full = {**os.environ, "DCMAN_DATA_DIR": str(tmp_path), "DCMAN_ADMIN_PASSWORD": "admin-Secret-1", **env}
    return subprocess.run([DCMAN, "serve"], env=full, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("variable, value, words", [
    ("DCMAN_BIND", "localhost", "host:port"),
    ("DCMAN_BIND", "127.0.0.1:99999", "host:port"),
    ("DCMAN_AUDIT_INTERVAL", "-3", "positive"),
    ("DCMAN_AUDIT_INTERVAL", "often", "number"),
    ("DCMAN_SUBCLOUD_AGENT_SCHEME", "ftp", "http or https"),
    ("DCMAN_SYSTEM_CONTROLLER_SUBNET", "not-a-subnet", "CIDR"),
    ("DCMAN_SYSTEM_CONTROLLER_POOL", "10.0.0.1-10.0.0.9", ""),
    ("DCMAN_DATABASE_URL", "mysql://x", "postgresql+asyncpg"),
    ("DCMAN_ROLES", "api,dashboard", "Unknown role 'dashboard'"),
    ("DCMAN_LEASE_SECONDS", "0", "between"),
    ("DCMAN_SECRET_KEY", "not-a-key", "Fernet key"),
])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(tmp_path, variable, value, words):
    result = serve_with({variable: value}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and words in lines[0]


def test_roles_an_api_only_process_holds_no_lease_and_a_worker_only_one_serves_no_api(tmp_path):
    api_only = start_site_process(tmp_path / "api", {"DCMAN_ROLES": "api"})
    try:
        shown = httpx.get(api_only.url + "/v1.0/processes", headers={"X-Auth-Token": token_for(api_only)},
                          timeout=10).json()
        me = next(p for p in shown["processes"] if p["uuid"] == shown["this_process"])
        assert me["roles"] == ["api"] and me["leases"] == {"audit": [], "deploy": []} and me["leads"] == []
        assert shown["unheld_shards"] == {"audit": 64, "deploy": 64}
        assert shown["leaders"] == {"peer-monitor": None, "association-sync": None, "migration": None,
                                    "failover": None}
    finally:
        stop_site_process(api_only)
    worker = start_site_process(tmp_path / "worker", {"DCMAN_ROLES": "audit,deploy,peers"})
    try:
        assert httpx.get(worker.url + "/", timeout=10).status_code == 200  # the liveness probe
        assert httpx.get(worker.url + "/v1.0/subclouds", timeout=10).status_code == 404
        assert httpx.post(worker.url + "/v3/auth/tokens", json={}, timeout=10).status_code == 404
    finally:
        stop_site_process(worker)


def test_an_unreachable_database_stops_start_up_with_one_line(tmp_path):
    result = serve_with({"DCMAN_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}, tmp_path)
    assert result.returncode == 2
    assert "cannot start the site" in result.stderr and "Traceback" not in result.stderr


def one_line_naming_the_key(result: subprocess.CompletedProcess) -> str:
    """The refusal: one `dcman:` line naming the setting; besides it only the INFO lines of the
    schema check that precedes it (alembic's), no traceback, no error logged."""
    assert result.returncode != 0, result.stderr
    lines = result.stderr.strip().splitlines()
    said = [line for line in lines if line.startswith("dcman:")]
    assert len(said) == 1 and "DCMAN_SECRET_KEY" in said[0], result.stderr
    assert all(" INFO alembic." in line for line in lines if line not in said), result.stderr
    return said[0]


@pytest.mark.parametrize("backend", SITE_BACKENDS)
def test_a_process_whose_secret_key_cannot_read_the_database_refuses_to_start(tmp_path, backend):
    with site_database(backend) as database:
        env = {"DCMAN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite'}", **database,
               "DCMAN_SECRET_KEY": Fernet.generate_key().decode(), "DCMAN_SITE_NAME": "one-site"}
        first = start_site_process(tmp_path / "p1", env)
        try:
            other = {**env, "DCMAN_BIND": f"127.0.0.1:{free_port()}"}
            line = one_line_naming_the_key(
                serve_with({**other, "DCMAN_SECRET_KEY": Fernet.generate_key().decode()}, tmp_path / "p2"))
            assert "is not the key" in line
            # Without the setting, a process uses a key file of its own: refused as well.
            line = one_line_naming_the_key(serve_with({**other, "DCMAN_SECRET_KEY": ""}, tmp_path / "p3"))
            assert "secret.key" in line
            # The first process is unharmed, and one given the site's key joins it.
            assert token_for(first)
            second = start_site_process(tmp_path / "p4", env)
            stop_site_process(second)
        finally:
            stop_site_process(first)


def test_a_database_from_before_the_key_check_gets_one_from_the_first_process_whose_key_reads_it(tmp_path):
    import sqlite3

    key = Fernet.generate_key().decode()
    site = start_site_process(tmp_path, {"DCMAN_SECRET_KEY": key})
    token = token_for(site)
    data, files = add_form("keyed1")  # stores its sysadmin password encrypted with the site's key
    assert httpx.post(site.url + "/v1.0/phased-subcloud-deploy", data=data, files=files,
                      headers={"X-Auth-Token": token}).status_code == 200
    stop_site_process(site)
    database = tmp_path / "dcman.sqlite"
    with sqlite3.connect(database) as db:  # as a database written before revision 0009 is
        db.execute("UPDATE site SET secret_key_check = NULL")

    env = {"DCMAN_SECRET_KEY": Fernet.generate_key().decode(), "DCMAN_BIND": f"127.0.0.1:{free_port()}"}
    one_line_naming_the_key(serve_with(env, tmp_path))  # its key cannot read the stored password
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT secret_key_check FROM site").fetchone()[0] is None

    site = start_site_process(tmp_path, {"DCMAN_SECRET_KEY": key})
    stop_site_process(site)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT secret_key_check FROM site").fetchone()[0]
    one_line_naming_the_key(serve_with(env, tmp_path))


def test_first_start_without_admin_password_prints_a_generated_one_once(tmp_path):
    env = {"DCMAN_ADMIN_PASSWORD": ""}
    site = start_site_process(tmp_path, env)
    stop_site_process(site)
    log = site.log.read_text()
    assert log.count("created administrator 'admin' with password") == 1
    password = log.split("with password '")[1].split("'")[0]

    again = start_site_process(tmp_path, env)
    try:
        assert "created administrator" not in again.log.read_text()
        assert token_for(again, "admin", password)
    finally:
        stop_site_process(again)


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def deploy_status(site, token: str, name: str) -> str:
    return httpx.get(f"{site.url}/v1.0/subclouds/{name}", headers={"X-Auth-Token": token}).json()["deploy-status"]


# These sites have no agents to deploy to: the phased create stops at create-complete.


def test_a_restarted_site_keeps_its_subclouds_and_identity(tmp_path):
    site = start_site_process(tmp_path)
    token = token_for(site)
    data, files = add_form("kept1")
    assert httpx.post(site.url + "/v1.0/phased-subcloud-deploy", data=data, files=files,
                      headers={"X-Auth-Token": token}).status_code == 200
    wait_for(lambda: deploy_status(site, token, "kept1") == "create-complete")
    identity = httpx.get(site.url + "/v1.0/system", headers={"X-Auth-Token": token}).json()
    site.process.send_signal(signal.SIGKILL)
    site.process.wait()

    again = start_site_process(tmp_path)
    try:
        token = token_for(again)
        assert deploy_status(again, token, "kept1") == "create-complete"
        assert httpx.get(again.url + "/v1.0/system", headers={"X-Auth-Token": token}).json()["uuid"] == identity["uuid"]
    finally:
        stop_site_process(again)


def test_a_subcloud_caught_creating_by_a_crash_is_marked_create_failed(tmp_path):
    import sqlite3

    site = start_site_process(tmp_path)
    token = token_for(site)
    data, files = add_form("crashed1")
    httpx.post(site.url + "/v1.0/phased-subcloud-deploy", data=data, files=files, headers={"X-Auth-Token": token})
    wait_for(lambda: deploy_status(site, token, "crashed1") == "create-complete")
    site.process.send_signal(signal.SIGKILL)
    site.process.wait()
    # As if the process had died in the middle of the create step.
    with sqlite3.connect(tmp_path / "dcman.sqlite") as db:
        db.execute("UPDATE subclouds SET deploy_status='creating' WHERE name='crashed1'")

    again = start_site_process(tmp_path)
    try:
        token = token_for(again)
        wait_for(lambda: deploy_status(again, token, "crashed1") == "create-failed")
        shown = httpx.get(again.url + "/v1.0/subclouds/crashed1", headers={"X-Auth-Token": token}).json()
        assert "restarted" in shown["error-description"]
    finally:
        stop_site_process(again)


@pytest.mark.postgresql
def test_serve_on_postgresql(tmp_path):
    if not _pg_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432; PostgreSQL tests skipped")
    name = f"dcman_serve_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{name}"')
    try:
        site = start_site_process(tmp_path, {"DCMAN_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"})
        try:
            token = token_for(site)
            data, files = add_form("pg1")
            assert httpx.post(site.url + "/v1.0/phased-subcloud-deploy", data=data, files=files,
                              headers={"X-Auth-Token": token}).status_code == 200
            wait_for(lambda: deploy_status(site, token, "pg1") == "create-complete")
        finally:
            stop_site_process(site)
        assert not (tmp_path / "dcman.sqlite").exists()
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


