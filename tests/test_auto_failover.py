"""Automatic failover on three real sites, one simulator and cuttable links between the sites
(tests/geo3.py): pg1 is led by site1 and protected by site2 (priority 1) and site3 (priority
2), every peer record with policy `rehome`. The scenarios run in order on one topology, each
ending with every link healed, every site up and one site managing every subcloud."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from geo3 import GROUP, SYSADMIN_PASSWORD, Topology, three_sites, wait_for

SYSADMIN_B64 = base64.b64encode(SYSADMIN_PASSWORD.encode()).decode()

# Heartbeat 10 s x threshold 1, then 3 audit intervals of 1 s, then 0.2 s rehomes: a takeover
# is seen well within a minute; the bound leaves room for a loaded test machine.
TAKEOVER_S = 90


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    with three_sites(tmp_path_factory.mktemp("auto-failover"), subclouds=3) as running:
        yield running


def failover_alarm(topology: Topology, site: str) -> str | None:
    """The text of alarm 280.006 for pg1 on `site`, if raised."""
    alarms = topology.sites[site].get("/fault-alarms?alarm_id=280.006")["alarms"]
    texts = [a["reason_text"] for a in alarms if a["entity_instance_id"] == f"peer_group={GROUP}"]
    return texts[0] if texts else None


def leader_seen_by(topology: Topology, site: str) -> str | None:
    return topology.by_uuid(topology.sites[site].get(f"/subcloud-peer-groups/{GROUP}")["system_leader_id"])


def obeyed(topology: Topology) -> set[str | None]:
    return {topology.by_uuid(item["system_controller"]) for item in topology.sim_items().values()}


def sees(topology: Topology, site: str, other: str, state: str) -> bool:
    peers = topology.sites[site].get("/system-peers")["system_peers"]
    return any(p["peer-name"] == other and p["availability-state"] == state for p in peers)


def no_double_controller(topology: Topology) -> None:
    doubles = {name: item.get("double_controller") for name, item in topology.sim_items().items()
               if item.get("double_controller")}
    assert not doubles, f"subclouds that obeyed two sites at one epoch: {doubles}"


def test_a_cut_between_the_sites_alone_moves_nothing(topology: Topology):
    topology.cut("site1", "site2")
    topology.cut("site1", "site3")
    wait_for(lambda: sees(topology, "site2", "site1", "unavailable"), 60, what="site2 declaring site1 unavailable")
    text = wait_for(lambda: failover_alarm(topology, "site2"), 30, what="site2's 280.006")
    assert "still hear from it" in text and "nothing moved" in text
    third = wait_for(lambda: failover_alarm(topology, "site3"), 30, what="site3's 280.006")
    assert "comes before this site" in third  # site2, alive as far as site3 can tell, is next
    time.sleep(5 * topology.audit_interval)  # well past the witness bound: still nothing moves
    assert topology.managers() == {m: ["site1"] for m in topology.members}
    assert obeyed(topology) == {"site1"}
    topology.heal_all()
    topology.wait_converged()
    wait_for(lambda: failover_alarm(topology, "site2") is None, 30, what="site2's 280.006 cleared")


def test_a_killed_sites_group_is_taken_over_without_any_operator_command(topology: Topology):
    killed = time.monotonic()
    topology.kill("site1")
    wait_for(lambda: topology.managed_online_on("site2"), TAKEOVER_S, what="site2 managing pg1 online")
    took = time.monotonic() - killed
    assert obeyed(topology) == {"site2"}
    assert "took the group over automatically" in failover_alarm(topology, "site2")
    assert topology.sites["site2"].get(f"/subcloud-peer-groups/{GROUP}")["migration_status"] == "complete"
    print(f"site1 killed: site2 manages pg1 online after {took:.1f}s")
    no_double_controller(topology)


def test_the_third_site_follows_the_highest_priority_survivor(topology: Topology):
    wait_for(lambda: leader_seen_by(topology, "site3") == "site2", 60, what="site3 learning that site2 leads pg1")
    copies = topology.sites["site3"].get(f"/subcloud-peer-groups/{GROUP}/subclouds")["subclouds"]
    assert {s["deploy-status"] for s in copies} == {"secondary"}
    assert {s["management-state"] for s in copies} == {"unmanaged"}
    # site1 returns and steps aside: its copies become secondary, site2 stays the leader.
    topology.restart("site1")
    topology.wait_converged()
    assert topology.managers() == {m: ["site2"] for m in topology.members}
    wait_for(lambda: leader_seen_by(topology, "site1") == "site2", 60, what="site1 following site2")
    no_double_controller(topology)


def test_an_isolated_living_site_is_fenced_and_steps_aside_once_it_can_see(topology: Topology):
    """site2 leads; it is cut from both sites and from the subclouds, but keeps running."""
    topology.isolate("site2")
    wait_for(lambda: topology.managed_online_on("site1"), TAKEOVER_S, what="site1 (priority 0) taking pg1 over")
    assert obeyed(topology) == {"site1"}
    # Cut from everything, site2 still believes it manages them (the subclouds refuse it anyway).
    believed = topology.sites["site2"].get(f"/subcloud-peer-groups/{GROUP}/subclouds")["subclouds"]
    assert {s["management-state"] for s in believed} == {"managed"}
    # The subclouds can be seen again (the sites still cut): site2 sees it was fenced and lets go.
    topology.unblock("site2")
    # Whatever site2 still believes, the subclouds refuse it: a phase at the epoch it won is fenced.
    member = topology.members[0]
    item = topology.sim_items()[member]
    agent = httpx.post(f"http://{item['management_start_ip']}:{topology.agent_env['DCMAN_SUBCLOUD_AGENT_PORT']}"
                       "/v1/phases/config", json={}, timeout=10,
                       headers={"Authorization": "Basic c3lzYWRtaW46U3Q4cmxpbmdYKg==",
                                "X-Dcman-Site": topology.sites["site2"].uuid, "X-Dcman-Epoch": "1"})
    assert agent.status_code == 409 and agent.json()["fenced"] is True, agent.text
    assert "fenced" in agent.json()["error"]
    wait_for(lambda: all(s["management-state"] == "unmanaged" and s["deploy-status"] == "secondary"
                         for s in topology.sites["site2"].get(f"/subcloud-peer-groups/{GROUP}/subclouds")["subclouds"]),
             60, what="site2 stepping aside")
    topology.heal_all()
    topology.wait_converged()
    assert topology.managers() == {m: ["site1"] for m in topology.members}
    wait_for(lambda: leader_seen_by(topology, "site2") == "site1", 60, what="site2 following site1")
    no_double_controller(topology)


def test_two_survivors_racing_for_one_group_end_with_exactly_one_leader(topology: Topology):
    """site2 and site3 cannot see each other when site1 dies: each may think it is next. The
    subclouds' epochs decide, and the earlier site in the takeover order keeps the group."""
    topology.cut("site2", "site3")
    wait_for(lambda: sees(topology, "site3", "site2", "unavailable"), 60, what="site3 declaring site2 unavailable")
    topology.kill("site1")
    wait_for(lambda: sees(topology, "site2", "site1", "unavailable") and sees(topology, "site3", "site1", "unavailable"),
             60, what="both survivors declaring site1 unavailable")
    # Whatever their automatic failovers did so far, both survivors are also told to migrate at
    # the same moment (two operators, one on each site): the subclouds' agents decide.
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda name: topology.sites[name].call(
            "PATCH", f"/subcloud-peer-groups/{GROUP}/migrate", json={"sysadmin_password": SYSADMIN_B64}),
            ("site2", "site3")))
    assert all(a.status_code in (200, 400) for a in answers), [a.text for a in answers]
    wait_for(lambda: topology.managed_online_on("site2"), TAKEOVER_S, what="site2 managing pg1 online")
    wait_for(lambda: not any("site3" in sites for sites in topology.managers().values()), 60,
             what="site3 not managing any pg1 subcloud")
    assert obeyed(topology) == {"site2"}
    no_double_controller(topology)
    topology.heal_all()
    topology.wait_converged()
    assert topology.managers() == {m: ["site2"] for m in topology.members}
    no_double_controller(topology)
