"""Scale-out: three real `dcman serve` processes share one fresh PostgreSQL database and audit a
real simulator. Each subcloud is audited by one process per interval and never by two at once
(counted at the simulator); SIGKILL of a process hands its shards, its interrupted deploy and
rehome, and its singletons to the others; the survivors' work can be resumed."""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DCMAN,
    RunningSite,
    _pg,
    _pg_available,
    add_form,
    free_port,
    start_site_process,
    stop_site_process,
    token_for,
)
from simfleet import wait_until

pytestmark = pytest.mark.postgresql

COUNT = 30  # deployed subclouds sim-00001..30; sim-00031 comes as a secondary copy to migrate
LEASE_SECONDS = 4.0
INTERVAL = 1.0
STATUS_SECONDS = 0.3  # each status answer takes this long, so two probes at once would overlap
SYSADMIN = base64.b64encode(b"St8rlingX*").decode()
DEPLOY_CONFIG = "deployment: {profile: edge}\n"
SINGLETONS = {"peer-monitor", "association-sync", "migration", "failover"}


@dataclass
class Cluster:
    processes: list[RunningSite]
    control: str
    token: str
    killed: list[RunningSite] = field(default_factory=list)

    @property
    def alive(self) -> list[RunningSite]:
        return [p for p in self.processes if p not in self.killed]

    def call(self, method: str, path: str, via: RunningSite | None = None, **kw) -> httpx.Response:
        site = via or self.alive[0]
        headers = {"X-Auth-Token": self.token, **kw.pop("headers", {})}
        return httpx.request(method, site.url + "/v1.0" + path, headers=headers, timeout=10, **kw)

    def subcloud(self, name: str) -> dict:
        return self.call("GET", f"/subclouds/{name}").json()

    def status(self, via: RunningSite | None = None) -> dict:
        answer = self.call("GET", "/processes", via=via)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def sim(self) -> dict[str, dict]:
        items = httpx.get(f"{self.control}/sim/subclouds", timeout=10).json()["subclouds"]
        return {item["name"]: item for item in items}

    def fault(self, name: str, **faults) -> None:
        assert httpx.patch(f"{self.control}/sim/subclouds/{name}", json=faults, timeout=10).status_code == 200

    def holder(self, kind: str, subcloud_id: int) -> dict:
        """The live process holding the lease of this subcloud's shard."""
        for process in self.status()["processes"]:
            if process["alive"] and subcloud_id % 64 in process["leases"][kind]:
                return process
        raise AssertionError(f"no live process holds the {kind} shard of subcloud {subcloud_id}")

    def site_of(self, process: dict) -> RunningSite:
        return next(p for p in self.processes if p.url.endswith(process["bind"]))

    def kill(self, site: RunningSite) -> None:
        site.process.kill()  # SIGKILL: no clean stop, the leases and locks must move by themselves
        site.process.wait(timeout=10)
        self.killed.append(site)


def balanced(cluster: Cluster, processes: int) -> bool:
    """`processes` live processes, every shard of each kind held, each within its fair share."""
    try:
        status = cluster.status()
    except (httpx.HTTPError, AssertionError):
        return False
    live = [p for p in status["processes"] if p["alive"]]
    share = -(-64 // processes)
    leaders = {name for name, uuid_ in status["leaders"].items() if uuid_}
    return (len(live) == processes and status["unheld_shards"] == {"audit": 0, "deploy": 0}
            and all(share - 2 <= len(p["leases"][kind]) <= share for p in live for kind in ("audit", "deploy"))
            and leaders == SINGLETONS)


def audited(cluster: Cluster, names: list[str], seconds: float) -> dict[str, int]:
    """How many status probes each subcloud answered during `seconds`."""
    before = cluster.sim()
    time.sleep(seconds)
    after = cluster.sim()
    return {name: after[name]["probes"] - before[name]["probes"] for name in names}


def overlaps(cluster: Cluster) -> int:
    return sum(item["overlaps"] for item in cluster.sim().values())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not _pg_available():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432; PostgreSQL tests skipped")
    work: Path = tmp_path_factory.mktemp("scale-out")
    database = f"dcman_scale_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{database}"')
    agent_port, control_port = free_port(), free_port()
    sim = subprocess.Popen(
        [DCMAN, "sim", "--count", str(COUNT + 1), "--port", str(agent_port), "--control",
         f"127.0.0.1:{control_port}", "--phase-seconds", "0.2"],
        stdout=(work / "sim.log").open("wb"), stderr=subprocess.STDOUT, env=os.environ.copy())
    control = f"http://127.0.0.1:{control_port}"
    processes: list[RunningSite] = []
    try:
        wait_until(lambda: _answers(control + "/sim"))
        names = [f"sim-{i:05d}" for i in range(1, COUNT + 2)]
        slow = httpx.patch(f"{control}/sim/subclouds", json={"names": names, "status_seconds": STATUS_SECONDS},
                           timeout=10)
        assert slow.status_code == 200, slow.text
        env = {"DCMAN_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
               "DCMAN_LEASE_SECONDS": str(LEASE_SECONDS), "DCMAN_AUDIT_INTERVAL": str(INTERVAL),
               "DCMAN_SUBCLOUD_AGENT_PORT": str(agent_port), "DCMAN_SUBCLOUD_AGENT_SCHEME": "http",
               "DCMAN_SITE_NAME": "scale-site",
               "DCMAN_SECRET_KEY": base64.urlsafe_b64encode(b"s" * 32).decode()}
        processes.append(start_site_process(work / "p1", env))
        cluster = Cluster(processes, control, token_for(processes[0]))
        for name in names[:COUNT]:  # deployed while one process runs, audited by three
            data, files = add_form(name, cluster.sim()[name]["bootstrap_values"])
            added = cluster.call("POST", "/subclouds", data=data, files=files)
            assert added.status_code == 200, added.text
        for n in (2, 3):
            processes.append(start_site_process(work / f"p{n}", env))
        wait_until(lambda: all(s["deploy-status"] == "complete" and s["availability-status"] == "online"
                               for s in cluster.call("GET", "/subclouds").json()["subclouds"]), timeout=60)
        wait_until(lambda: balanced(cluster, 3), timeout=30)
        yield cluster
    finally:
        for site in processes:
            if site.process.poll() is None:
                stop_site_process(site)
        sim.terminate()
        sim.wait(timeout=10)
        _pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_three_processes_divide_the_shards_and_one_leads_each_singleton(cluster: Cluster) -> None:
    views = [cluster.status(via=site) for site in cluster.processes]
    uuids = {p["uuid"] for p in views[0]["processes"] if p["alive"]}
    assert len(uuids) == 3
    assert all({p["uuid"] for p in v["processes"] if p["alive"]} == uuids for v in views)
    assert len({v["this_process"] for v in views}) == 3  # each answered for itself, on one database
    for kind in ("audit", "deploy"):
        held = [shard for p in views[0]["processes"] for shard in p["leases"][kind]]
        assert sorted(held) == list(range(64))  # every shard held exactly once
    leaders = views[0]["leaders"]
    assert set(leaders) == SINGLETONS and set(leaders.values()) <= uuids
    assert all(p["roles"] == ["api", "audit", "deploy", "peers"] for p in views[0]["processes"])

    shown = subprocess.run([DCMAN, "status", "--url", cluster.processes[1].url, "--user", ADMIN_USER,
                            "--password", ADMIN_PASSWORD], capture_output=True, text=True, timeout=30, check=False)
    assert shown.returncode == 0, shown.stderr
    assert all(u[:8] in shown.stdout for u in uuids)
    assert "leaders: peer-monitor:" in shown.stdout and "unheld: audit 0, deploy 0" in shown.stdout


def test_each_subcloud_is_audited_once_per_interval_and_never_twice_at_once(cluster: Cluster) -> None:
    names = [f"sim-{i:05d}" for i in range(1, COUNT + 1)]
    window = 6 * INTERVAL
    probes = audited(cluster, names, window)
    # One auditor per subcloud probes it once per interval (±1 at the window's edges); two
    # processes auditing it would double that.
    assert all(3 <= count <= window / INTERVAL + 2 for count in probes.values()), probes
    assert overlaps(cluster) == 0


def test_sigkill_hands_over_shards_interrupted_work_and_singletons(cluster: Cluster) -> None:
    # A migration: sim-00031 comes as a secondary copy (as a peer's sync makes it) and is rehomed.
    name = f"sim-{COUNT + 1:05d}"
    data, files = add_form(name, cluster.sim()[name]["bootstrap_values"], secondary="true",
                           region_name=uuid.uuid4().hex)
    data.pop("sysadmin_password")
    peer = {"User-Agent": "dcmanager/1.0"}
    assert cluster.call("POST", "/subclouds", data=data, files=files, headers=peer).status_code == 200
    assert cluster.call("POST", "/subcloud-peer-groups", json={
        "peer-group-name": "pg1", "group-priority": 1, "max-subcloud-rehoming": 1}).status_code == 200
    assert cluster.call("PATCH", f"/subclouds/{name}", json={"peer_group": "pg1"}, headers=peer).status_code == 200
    cluster.fault(name, phase_seconds=12.0)
    assert cluster.call("PATCH", "/subcloud-peer-groups/pg1/migrate",
                        json={"sysadmin_password": SYSADMIN}).status_code == 200
    wait_until(lambda: cluster.subcloud(name)["deploy-status"] == "rehoming", timeout=20)

    # A deploy step driven by the same process: reconfigure a subcloud of its deploy shards.
    victim = cluster.holder("deploy", cluster.subcloud(name)["id"])
    mine = [s for s in cluster.call("GET", "/subclouds").json()["subclouds"]
            if s["id"] % 64 in victim["leases"]["deploy"] and s["deploy-status"] == "complete"]
    assert mine, "the victim drives none of the deployed subclouds"
    configured = mine[0]["name"]
    cluster.fault(configured, phase_seconds=12.0)
    answer = cluster.call("PATCH", f"/phased-subcloud-deploy/{configured}/configure",
                          json={"deploy_config": DEPLOY_CONFIG})
    assert answer.status_code == 200, answer.text
    wait_until(lambda: cluster.subcloud(configured)["deploy-status"] == "configuring", timeout=20)
    audited_by_victim = [s["name"] for s in cluster.call("GET", "/subclouds").json()["subclouds"]
                         if s["id"] % 64 in victim["leases"]["audit"] and s["name"] != name]
    assert audited_by_victim

    cluster.kill(cluster.site_of(victim))
    wait_until(lambda: balanced(cluster, 2), timeout=30)
    after = cluster.status()
    dead = next(p for p in after["processes"] if p["uuid"] == victim["uuid"])
    assert not dead["alive"] and dead["leases"] == {"audit": [], "deploy": []}
    assert victim["uuid"] not in after["leaders"].values()
    # Its subclouds are audited by the survivors, still never two probes at once.
    assert all(count >= 1 for count in audited(cluster, audited_by_victim, 3 * INTERVAL).values())
    assert overlaps(cluster) == 0

    # The steps it was driving failed as after a restart (§2.3.4) ...
    wait_until(lambda: cluster.subcloud(configured)["deploy-status"] == "config-failed", timeout=20)
    assert "restarted" in cluster.subcloud(configured)["error-description"]
    wait_until(lambda: cluster.subcloud(name)["deploy-status"] == "rehome-failed", timeout=20)
    wait_until(lambda: cluster.call("GET", "/subcloud-peer-groups/pg1").json()["migration_status"] == "complete",
               timeout=20)
    # ... and are resumed through the survivors, adopting the phases still running on the agents.
    assert cluster.call("PATCH", f"/phased-subcloud-deploy/{configured}/resume", json={}).status_code == 200
    assert cluster.call("PATCH", "/subcloud-peer-groups/pg1/migrate",
                        json={"sysadmin_password": SYSADMIN}).status_code == 200
    wait_until(lambda: cluster.subcloud(configured)["deploy-status"] == "complete", timeout=40)
    wait_until(lambda: cluster.subcloud(name)["management-state"] == "managed", timeout=40)
    assert cluster.subcloud(name)["deploy-status"] == "complete"

    # The leader of the singletons dies too: the last process leads them all and holds every shard.
    leader = cluster.site_of(next(p for p in cluster.status()["processes"]
                                  if p["uuid"] == cluster.status()["leaders"]["peer-monitor"]))
    cluster.kill(leader)
    wait_until(lambda: balanced(cluster, 1), timeout=30)
    last = cluster.status()
    assert set(last["leaders"].values()) == {last["this_process"]}
    names = [f"sim-{i:05d}" for i in range(1, COUNT + 1)]
    assert all(count >= 1 for count in audited(cluster, names, 3 * INTERVAL).values())
    assert overlaps(cluster) == 0
