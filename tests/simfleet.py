"""A real site with a real simulator beside it, for the audit and deploy tests."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from conftest import (DCMAN, RunningSite, add_form, free_port, site_database, start_site_process, stop_site_process,
                      token_for)


@dataclass
class Fleet:
    site: RunningSite
    token: str
    control: str
    site_env: dict[str, str]

    # --- the site, as an operator sees it ------------------------------------------------
    def call(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.site.url + "/v1.0" + path, headers={"X-Auth-Token": self.token},
                             timeout=10, **kw)

    def subcloud(self, name: str) -> dict:
        return self.call("GET", f"/subclouds/{name}").json()

    def alarms(self, entity: str) -> list[dict]:
        return self.call("GET", "/fault-alarms", params={"entity": entity}).json()["alarms"]

    def summary(self, name: str) -> dict:
        return [s for s in self.call("GET", "/alarms").json()["alarm_summary"] if s["region_name"] == name][0]

    def stored(self, name: str) -> tuple[str, int]:
        """(availability, audit fail count) straight from the site's database."""
        with sqlite3.connect(f"file:{self.site.data_dir / 'dcman.sqlite'}?mode=ro", uri=True, timeout=10) as db:
            row = db.execute("SELECT availability_status, audit_fail_count FROM subclouds WHERE name=?",
                             (name,)).fetchone()
        return row[0], row[1]

    # --- the simulator ---------------------------------------------------------------------
    def fault(self, name: str, **faults) -> None:
        response = httpx.patch(f"{self.control}/sim/subclouds/{name}", json=faults, timeout=10)
        assert response.status_code == 200, response.text

    def bootstrap_values(self, name: str) -> dict:
        return httpx.get(f"{self.control}/sim/subclouds", params={"name": name}, timeout=10).json()[
            "subclouds"][0]["bootstrap_values"]

    def add(self, name: str, path: str = "/subclouds", **fields) -> dict:
        data, files = add_form(name, self.bootstrap_values(name), **fields)
        added = self.call("POST", path, data=data, files=files)
        assert added.status_code == 200, added.text
        return added.json()

    def online(self, *names: str) -> None:
        """Add simulated subclouds, and wait until every one is online (deployed, unmanaged)."""
        for name in names:
            self.add(name)
        for name in names:
            wait_until(lambda name=name: self.subcloud(name)["availability-status"] == "online", timeout=40)

    def deployed(self, name: str, **fields) -> dict:
        """Add a simulated subcloud, and wait until its deploy is complete and it is online."""
        self.add(name, **fields)
        wait_until(lambda: self.subcloud(name)["deploy-status"] == "complete")
        wait_until(lambda: self.subcloud(name)["availability-status"] == "online")
        return self.subcloud(name)


def wait_until(predicate, timeout: float = 20.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


@contextmanager
def running_fleet(work: Path, count: int, interval: float = 1.0, backend: str = "sqlite",
                  settings: dict[str, str] | None = None, nofile: int | None = None,
                  sim_args: tuple[str, ...] = ()) -> Iterator[Fleet]:
    """`dcman sim --count N` and a `dcman serve` that audits it every `interval` seconds, on its
    own SQLite or PostgreSQL database (`fleet.site_env` holds only the agent settings, which a
    second site shares)."""
    agent_port, control_port = free_port(), free_port()
    sim = subprocess.Popen(
        [DCMAN, "sim", "--count", str(count), "--port", str(agent_port),
         "--control", f"127.0.0.1:{control_port}", "--phase-seconds", "0.2", *sim_args],
        stdout=(work / "sim.log").open("wb"), stderr=subprocess.STDOUT, env=os.environ.copy())
    control = f"http://127.0.0.1:{control_port}"
    wait_until(lambda: _answers(control + "/sim/subclouds?limit=1"))
    env = {"DCMAN_SUBCLOUD_AGENT_PORT": str(agent_port), "DCMAN_SUBCLOUD_AGENT_SCHEME": "http",
           "DCMAN_AUDIT_INTERVAL": str(interval)}
    try:
        with site_database(backend) as database:
            site = start_site_process(work / "site", {**env, **database, **(settings or {})}, nofile=nofile)
            fleet = Fleet(site, token_for(site), control, env)
            try:
                yield fleet
            finally:
                stop_site_process(fleet.site)
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


