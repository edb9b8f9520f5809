"""Three real sites, one simulator, and a cuttable proxy on every site-to-site link.

`three_sites(work, subclouds=N)` starts `dcman sim --count N` and site1, site2, site3 as
`dcman serve` processes on SQLite, each on its own system-controller subnet (site1 the
default 127.0.0.0/16, site2 127.50.0.0/16, site3 127.60.0.0/16) with the subclouds' gateway
towards it in every peer record of it. Every ordered pair X→Y is peered, and X's system
peer record of Y points at a dedicated `Proxy` to Y (`topology.proxies[(X, Y)]`), so each
direction of each link can be cut on its own. Every peer record has heartbeat interval
10 s (the API's minimum), the threshold asked for, and policy `rehome`.

site1 leads peer group pg1 with the N subclouds deployed, managed and online; pg1 is
associated with site2 (priority 1) and site3 (priority 2) and both copies are in sync; each
site's pg1 gets the subclouds' sysadmin password (`give_sysadmin_password`), which a
standby site needs to migrate the group by itself.

The harness talks to every site directly (never through the proxies): it is the operator,
on its own network. A kill is a SIGKILL; a restart starts the site on its data directory
(a new port) and retargets the proxies that lead to it, so no peer record is patched.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conftest import (ADMIN_PASSWORD, ADMIN_USER, DCMAN, RunningSite, add_form, free_port, restart_site_process,
                      start_site_process, stop_site_process, token_for)

SITES = ("site1", "site2", "site3")
GROUP = "pg1"
SYSADMIN_PASSWORD = "St8rlingX*"
HEARTBEAT_INTERVAL_S = 10  # the smallest the API accepts
SUBNETS = {"site1": None, "site2": "127.50.0.0/16", "site3": "127.60.0.0/16"}  # None: the default 127.0.0.0/16
GATEWAYS = {"site1": "127.0.0.1", "site2": "127.50.0.1", "site3": "127.60.0.1"}
PRIORITIES = {"site2": 1, "site3": 2}  # pg1's associations from site1


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(predicate, timeout: float, every: float = 0.25, what: str = "condition"):  # type: ignore[no-untyped-def]
    """The first true value of `predicate()`; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(every)


@dataclass
class Site:
    """One site as the harness sees it; `running` is None while the site is killed."""

    name: str
    running: RunningSite | None
    token: str
    uuid: str = ""
    last: RunningSite | None = None  # the process last started, to restart it from

    @property
    def alive(self) -> bool:
        return self.running is not None

    @property
    def gateway(self) -> str:
        return GATEWAYS[self.name]

    def call(self, method: str, path: str, timeout: float = 20, **kw: Any) -> httpx.Response:
        if self.running is None:
            raise RuntimeError(f"{self.name} is not running")
        return httpx.request(method, self.running.url + "/v1.0" + path, headers={"X-Auth-Token": self.token},
                             timeout=timeout, **kw)

    def get(self, path: str) -> dict:
        response = self.call("GET", path)
        assert response.status_code == 200, f"{self.name} GET {path}: {response.status_code} {response.text}"
        return response.json()


@dataclass
class Topology:
    """The running sites, their proxies, the simulator and pg1's members."""

    work: Path
    sim: subprocess.Popen
    control: str
    agent_env: dict[str, str]
    threshold: int
    audit_interval: float
    phase_seconds: float
    sites: dict[str, Site] = field(default_factory=dict)
    proxies: dict[tuple[str, str], Any] = field(default_factory=dict)  # (X, Y) -> Proxy to Y, used by X
    members: list[str] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)  # sites the subclouds refuse (blocked_sites)
    cut_links: set[tuple[str, str]] = field(default_factory=set)  # directions X→Y that are cut
    notes: list[str] = field(default_factory=list)  # what the harness had to tolerate
    timings: dict[str, float] = field(default_factory=dict)  # seconds into the start-up, by stage

    # --- looking -------------------------------------------------------------------------

    def living(self) -> list[str]:
        return [name for name, site in self.sites.items() if site.alive]

    def by_uuid(self, uuid: str | None) -> str | None:
        return next((name for name, site in self.sites.items() if site.uuid == uuid), None)

    def sim_items(self) -> dict[str, dict]:
        """pg1's members as the simulator holds them (system_controller, faults, counters)."""
        listing = httpx.get(f"{self.control}/sim/subclouds", params={"limit": len(self.members) + 50},
                            timeout=10).json()["subclouds"]
        wanted = set(self.members)
        return {item["name"]: item for item in listing if item["name"] in wanted}

    def shown(self) -> dict[str, dict[str, dict]]:
        """site -> subcloud name -> the subcloud as that living site lists it (sites that do
        not answer in time are left out)."""
        seen: dict[str, dict[str, dict]] = {}
        for name in self.living():
            try:
                response = self.sites[name].call("GET", "/subclouds", timeout=10)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                seen[name] = {s["name"]: s for s in response.json()["subclouds"]}
        return seen

    def managers(self, shown: dict[str, dict[str, dict]] | None = None) -> dict[str, list[str]]:
        """subcloud -> the living sites that show it managed."""
        shown = self.shown() if shown is None else shown
        found: dict[str, list[str]] = {member: [] for member in self.members}
        for site, subclouds in shown.items():
            for member in self.members:
                subcloud = subclouds.get(member)
                if subcloud is not None and subcloud["management-state"] == "managed":
                    found[member].append(site)
        return found

    def leader(self) -> str | None:
        """The site every pg1 member obeys (the simulator's word), or None if they disagree."""
        controllers = {item["system_controller"] for item in self.sim_items().values()}
        return self.by_uuid(controllers.pop()) if len(controllers) == 1 else None

    def peer_state(self, on: str, of: str) -> str:
        """The availability `on` shows of its system peer `of` (created, available, unavailable)."""
        return self.sites[on].get(f"/system-peers/{self.sites[of].uuid}")["availability-state"]

    def group(self, on: str, group: str = GROUP) -> dict:
        """The peer group as site `on` shows it (system_leader_id, migration_status, priority)."""
        return self.sites[on].get(f"/subcloud-peer-groups/{group}")

    def states(self, on: str, group: str = GROUP) -> dict[str, tuple[str, str]]:
        """subcloud -> (deploy-status, management-state) of the group's members on site `on`."""
        return {s["name"]: (s["deploy-status"], s["management-state"])
                for s in self.sites[on].get(f"/subcloud-peer-groups/{group}/subclouds")["subclouds"]}

    def describe(self, member: str, shown: dict[str, dict[str, dict]] | None = None) -> str:
        """One line on `member`: how each living site shows it and whom the simulator says it
        obeys (with its fencing epoch when the simulator reports one)."""
        shown = self.shown() if shown is None else shown
        views = []
        for site, subclouds in sorted(shown.items()):
            subcloud = subclouds.get(member)
            views.append(f"{site}: " + ("absent" if subcloud is None else "/".join(
                str(subcloud.get(k)) for k in ("deploy-status", "management-state", "availability-status"))))
        item = self.sim_items().get(member, {})
        controller = self.by_uuid(item.get("system_controller")) or item.get("system_controller")
        return f"{member} ({', '.join(views)}; obeys {controller}, epoch {item.get('fencing_epoch', '?')})"

    def managed_online_on(self, site: str, shown: dict[str, dict[str, dict]] | None = None) -> bool:
        """Every pg1 member managed and online on `site`."""
        shown = self.shown() if shown is None else shown
        subclouds = shown.get(site, {})
        return all(subclouds.get(m, {}).get("management-state") == "managed"
                   and subclouds.get(m, {}).get("availability-status") == "online" for m in self.members)

    def converged(self) -> str | None:
        """None once every site is up, every link whole, every peer available, and one site
        manages every member online and the simulator says they obey it; else what is not."""
        if len(self.living()) != len(SITES):
            return "a site is down"
        if self.cut_links or self.blocked:
            return "a cut is in place"
        for name in SITES:
            for peer in self.sites[name].get("/system-peers")["system_peers"]:
                if peer["availability-state"] != "available":
                    return f"{name} sees {peer['peer-name']} {peer['availability-state']}"
        shown = self.shown()
        managers = self.managers(shown)
        owners = {tuple(sites) for sites in managers.values()}
        if len(owners) != 1 or len(next(iter(owners))) != 1:
            usual = max(owners, key=lambda o: sum(1 for sites in managers.values() if tuple(sites) == o))
            odd = [m for m, sites in managers.items() if tuple(sites) != usual]
            return (f"{len(managers) - len(odd)} members managed by {list(usual)}, the others not: "
                    + "; ".join(self.describe(m, shown) for m in odd[:5]))
        [[owner]] = owners
        if not self.managed_online_on(owner, shown):
            return f"not all online on {owner}"
        obeyed = {self.by_uuid(item["system_controller"]) for item in self.sim_items().values()}
        if obeyed != {owner}:
            return f"{owner} manages pg1 but the subclouds obey {obeyed}"
        return None

    def wait_converged(self, timeout: float = 120) -> float:
        """Seconds until `converged()`; AssertionError with the last reason after `timeout`."""
        started, reason = time.monotonic(), "?"
        while time.monotonic() - started < timeout:
            try:
                reason = self.converged()
            except (httpx.HTTPError, AssertionError) as exc:  # a site still starting, or slow
                reason = f"{type(exc).__name__}: {exc}"
            if reason is None:
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"the topology did not converge within {timeout:.0f}s: {reason}")

    # --- acting --------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL the site (its data directory stays, as after a power loss)."""
        site = self.sites[name]
        if site.running is None:
            return
        site.running.process.kill()
        site.running.process.wait(timeout=10)
        site.last, site.running = site.running, None

    def restart(self, name: str) -> None:
        """Start the killed site on its data directory; the proxies that lead to it follow
        its new port."""
        site = self.sites[name]
        if site.running is not None:
            return
        assert site.last is not None
        site.running = restart_site_process(site.last)
        site.token = token_for(site.running)
        port = int(site.running.url.rsplit(":", 1)[1])
        for (source, target), proxy in self.proxies.items():
            if target == name:
                proxy.retarget(port)

    def cut(self, a: str, b: str, both: bool = True, mode: str | None = None) -> None:
        """Cut a→b (a's calls to b fail), and b→a too unless `both` is false."""
        for pair in ((a, b), (b, a)) if both else ((a, b),):
            self.proxies[pair].cut(mode)
            self.cut_links.add(pair)

    def heal(self, a: str, b: str, both: bool = True) -> None:
        for pair in ((a, b), (b, a)) if both else ((a, b),):
            self.proxies[pair].heal()
            self.cut_links.discard(pair)

    def isolate(self, name: str, from_subclouds: bool = True) -> None:
        """Cut the site from both other sites (both ways) and, by default, from the subclouds."""
        for other in SITES:
            if other != name:
                self.cut(name, other)
        if from_subclouds:
            self.block(name)

    def block(self, name: str) -> None:
        """pg1's subclouds drop every connection from `name` (the simulator's blocked_sites)."""
        self._set_blocked(self.blocked | {name})

    def unblock(self, name: str) -> None:
        self._set_blocked(self.blocked - {name})

    def _set_blocked(self, names: set[str]) -> None:
        uuids = sorted(self.sites[n].uuid for n in names)
        response = httpx.patch(f"{self.control}/sim/subclouds", json={"names": self.members, "blocked_sites": uuids},
                               timeout=10)
        if response.status_code == 400 and "blocked_sites" in response.text:
            note = "the simulator has no blocked_sites fault yet: site-subcloud cuts had no effect"
            if note not in self.notes:
                self.notes.append(note)
        else:
            assert response.status_code == 200, response.text
        self.blocked = set(names)

    def heal_all(self) -> None:
        """Every link whole, no site blocked, every killed site restarted."""
        for pair in list(self.cut_links):
            self.proxies[pair].heal()
        self.cut_links.clear()
        if self.blocked:
            self._set_blocked(set())
        for name in SITES:
            self.restart(name)

    def repair(self, group: str = GROUP) -> str:
        """What a person does when the group is left split between sites: migrate it on the
        site that manages most of its members (which rehomes the rest there), or, if that
        site has nothing it may migrate, on the next one."""
        managers = self.managers()
        counts = {site: sum(1 for sites in managers.values() if site in sites) for site in self.living()}
        body = {"sysadmin_password": base64.b64encode(SYSADMIN_PASSWORD.encode()).decode()}
        tried = []
        for site in sorted(counts, key=lambda s: (-counts[s], s)):
            answer = self.sites[site].call("PATCH", f"/subcloud-peer-groups/{group}/migrate", json=body)
            tried.append(f"migrate {group} on {site} (managing {counts[site]} of {len(managers)}): "
                         f"{answer.status_code} {answer.text[:160]}")
            if answer.status_code == 200:
                break
        return "; ".join(tried)

    def give_sysadmin_password(self, group: str = GROUP) -> dict[str, int]:
        """Store the subclouds' sysadmin password in `group` on every living site (dcman's
        `PATCH /v1.0/subcloud-peer-groups/{name}` extension), so any site may take the group
        over by itself; site -> HTTP status. A site without the extension answers 400, noted."""
        body = {"sysadmin_password": base64.b64encode(SYSADMIN_PASSWORD.encode()).decode()}
        answers = {name: self.sites[name].call("PATCH", f"/subcloud-peer-groups/{group}", json=body).status_code
                   for name in self.living()}
        if any(code != 200 for code in answers.values()):
            note = f"PATCH of the sysadmin password on {group} answered {answers}"
            if note not in self.notes:
                self.notes.append(note)
        return answers

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()
        for site in self.sites.values():
            if site.running is not None:
                stop_site_process(site.running)
        self.sim.terminate()
        try:
            self.sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.sim.kill()


def _register(on: Site, other: Site, endpoint: str, threshold: int) -> dict:
    response = on.call("POST", "/system-peers", json={
        "peer_uuid": other.uuid, "peer_name": other.name, "manager_endpoint": endpoint + "/v3",
        "manager_username": ADMIN_USER, "manager_password": base64.b64encode(ADMIN_PASSWORD.encode()).decode(),
        "peer_controller_gateway_address": other.gateway, "heartbeat_interval": HEARTBEAT_INTERVAL_S,
        "heartbeat_failure_threshold": threshold, "heartbeat_failure_policy": "rehome"})
    assert response.status_code == 200, response.text
    return response.json()


def _deploy_members(topology: Topology, site: Site, count: int) -> None:
    """Add, deploy and manage the simulator's first `count` subclouds on `site`, in pg1."""
    names = [f"sim-{i:05d}" for i in range(1, count + 1)]
    for name in names:
        values = httpx.get(f"{topology.control}/sim/subclouds", params={"name": name}, timeout=10).json()[
            "subclouds"][0]["bootstrap_values"]
        data, files = add_form(name, values)
        added = site.call("POST", "/subclouds", data=data, files=files)
        assert added.status_code == 200, added.text
    def ready(name: str) -> bool:
        subcloud = site.get(f"/subclouds/{name}")
        return subcloud["deploy-status"] == "complete" and subcloud["availability-status"] == "online"

    for name in names:
        wait_for(lambda name=name: ready(name), 120, what=f"{name} deployed and online")
        managed = site.call("PATCH", f"/subclouds/{name}", json={"management-state": "managed"})
        assert managed.status_code == 200, managed.text
        joined = site.call("PATCH", f"/subclouds/{name}", json={"peer_group": GROUP})
        assert joined.status_code == 200, joined.text
    topology.members = names


@contextmanager
def three_sites(work: Path, subclouds: int = 3, threshold: int = 1, audit_interval: float = 1.0,
                phase_seconds: float = 0.2, proxy_mode: str = "drop",
                settings: dict[str, str] | None = None) -> Iterator[Topology]:
    """The three-site topology described above, torn down on exit; `settings` go to every site."""
    from proxy import Proxy

    work.mkdir(parents=True, exist_ok=True)
    agent_port, control_port = free_port(), free_port()
    sim = subprocess.Popen(
        [DCMAN, "sim", "--count", str(subclouds + 2), "--port", str(agent_port),
         "--control", f"127.0.0.1:{control_port}", "--phase-seconds", str(phase_seconds)],
        stdout=(work / "sim.log").open("wb"), stderr=subprocess.STDOUT, env=os.environ.copy())
    control = f"http://127.0.0.1:{control_port}"
    agent_env = {"DCMAN_SUBCLOUD_AGENT_PORT": str(agent_port), "DCMAN_SUBCLOUD_AGENT_SCHEME": "http",
                 "DCMAN_AUDIT_INTERVAL": str(audit_interval)}
    topology = Topology(work, sim, control, agent_env, threshold, audit_interval, phase_seconds)
    started = time.monotonic()

    def mark(what: str) -> None:
        topology.timings[what] = round(time.monotonic() - started, 1)

    try:
        wait_for(lambda: _answers(control + "/sim/subclouds?limit=1"), 30, what="the simulator answering")
        def start(name: str) -> Site:
            env = {**agent_env, "DCMAN_SITE_NAME": name, **(settings or {})}
            if SUBNETS[name]:
                env["DCMAN_SYSTEM_CONTROLLER_SUBNET"] = SUBNETS[name]
            running = start_site_process(work / name, env, timeout=60)
            site = Site(name, running, token_for(running))
            site.uuid = site.get("/system")["uuid"]
            return site

        with ThreadPoolExecutor(len(SITES)) as pool:  # the three start-ups overlap
            futures = {name: pool.submit(start, name) for name in SITES}
            for name, future in futures.items():
                try:
                    topology.sites[name] = future.result()
                except Exception:
                    for other in futures.values():  # whatever did start is stopped on the way out
                        if other.exception() is None:
                            topology.sites.setdefault(other.result().name, other.result())
                    raise
        mark("sites started")
        for source in SITES:
            for target in SITES:
                if source != target:
                    port = int(topology.sites[target].running.url.rsplit(":", 1)[1])  # type: ignore[union-attr]
                    topology.proxies[(source, target)] = Proxy("127.0.0.1", port, mode=proxy_mode)
        for (source, target), proxy in topology.proxies.items():
            _register(topology.sites[source], topology.sites[target], proxy.url, threshold)

        site1 = topology.sites["site1"]
        group = site1.call("POST", "/subcloud-peer-groups", json={"peer-group-name": GROUP})
        assert group.status_code == 200, group.text
        _deploy_members(topology, site1, subclouds)
        mark("members deployed")
        peers = {p["peer-name"]: p for p in site1.get("/system-peers")["system_peers"]}
        wait_for(lambda: all(s.get(f"/system-peers/{p['peer-uuid']}")["availability-state"] == "available"
                             for s in topology.sites.values()
                             for p in s.get("/system-peers")["system_peers"]), 60, what="every peer available")
        mark("peers available")
        associations = []
        for target, priority in PRIORITIES.items():
            created = site1.call("POST", "/peer-group-associations", json={
                "peer_group_id": group.json()["id"], "system_peer_id": peers[target]["id"],
                "peer_group_priority": priority})
            assert created.status_code == 200, created.text
            associations.append(created.json()["id"])
        wait_for(lambda: all(site1.get(f"/peer-group-associations/{a}")["sync-status"] == "in-sync"
                             for a in associations), 90, what="pg1 in sync on site2 and site3")
        mark("in sync")
        topology.give_sysadmin_password()
        yield topology
    finally:
        topology.close()
