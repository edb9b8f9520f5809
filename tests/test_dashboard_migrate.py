"""Geo-redundancy from the dashboard on two real sites (the setup of test_failover.py): the
operator of site1 syncs pg1's association; then site1, which leads pg1, goes down, and the
operator of site2 sees it unavailable and migrates pg1 from the page. The /metrics figures of
site2 then agree with its API."""

from __future__ import annotations

import pytest
from browser import browser, logged_in  # noqa: F401  (browser is a fixture)
from conftest import stop_site_process
from invariant import assert_one_manager
from prometheus_client.parser import text_string_to_metric_families
from simfleet import wait_until
from test_failover import MEMBERS, sites, states  # noqa: F401  (sites is a fixture)
from test_geo import peer_state

# The browser sees the same API on either database; test_failover.py covers both.
pytestmark = pytest.mark.parametrize("sites", ["sqlite"], indirect=True)


def test_the_operator_of_site1_syncs_the_association_after_confirming(browser, sites):  # noqa: F811
    from playwright.sync_api import expect

    _, site1, site2 = sites
    peer_name = site2.get("/system")["name"]
    page = logged_in(browser, site1.running.url)
    group_row = page.locator("#peer-groups tbody tr", has_text="pg1")
    expect(group_row).to_contain_text(f"{peer_name} (primary): in-sync")
    group_row.get_by_role("button", name=f"Sync pg1 to {peer_name}").click()
    expect(page.locator("#confirm")).to_contain_text(f"pg1 will be copied to {peer_name} now.")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#message")).to_have_text(f"Sync of pg1 to {peer_name} started.")
    expect(group_row).to_contain_text(f"{peer_name} (primary): in-sync")
    page.close()
    assert {s["deploy-status"] for s in site2.get("/subcloud-peer-groups/pg1/subclouds")["subclouds"]} == {
        "secondary"}


def test_the_operator_of_site2_migrates_pg1_from_the_dashboard(browser, sites):  # noqa: F811
    from playwright.sync_api import expect

    fleet, site1, site2 = sites
    identity1 = site1.get("/system")
    stop_site_process(site1.running)
    wait_until(lambda: peer_state(site2, identity1["uuid"]) == "unavailable", timeout=40)

    page = logged_in(browser, site2.running.url)
    peer_row = page.locator("#peers tbody tr", has_text=identity1["name"])
    expect(peer_row).to_contain_text("unavailable")
    expect(peer_row).to_contain_text("(failed)")  # its last heartbeat
    group_row = page.locator("#peer-groups tbody tr", has_text="pg1")
    expect(group_row).to_contain_text(identity1["name"])  # site1 still leads it
    expect(group_row).to_contain_text("out-of-sync")  # the association lost its peer

    group_row.get_by_role("button", name="Migrate pg1").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_contain_text("Migrate pg1?")
    dialog.get_by_label("Sysadmin password of the subclouds").fill("St8rlingX*")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator("#message")).to_have_text("Migration of pg1 started.")
    expect(group_row.locator("td").nth(3)).to_have_text("complete", timeout=90_000)
    expect(group_row.locator("td").nth(2)).to_contain_text("(this site)")
    page.close()

    assert states(site2) == {name: ("complete", "managed") for name in MEMBERS}
    assert_one_manager([site2], fleet.control)


def test_site2_metrics_agree_with_its_api(sites):  # noqa: F811
    import httpx

    site2 = sites[2]
    text = httpx.get(site2.running.url + "/metrics", timeout=10).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    for peer in site2.get("/system-peers")["system_peers"]:
        available = samples[("dcman_system_peer_available", (("peer", peer["peer-name"]),))]
        assert available == (1.0 if peer["availability-state"] == "available" else 0.0)
        if peer["availability-state"] == "unavailable":
            failed = samples[("dcman_peer_heartbeat_failures_total", (("peer", peer["peer-name"]),))]
            assert failed >= peer["heartbeat-failure-threshold"]
    for group in site2.get("/subcloud-peer-groups")["subcloud_peer_groups"]:
        name = group["peer_group_name"]
        assert samples[("dcman_peer_group_migrating", (("peer_group", name),))] == (
            1.0 if group["migration_status"] == "migrating" else 0.0)
        if group["migration_status"] == "complete":
            members = site2.get(f"/subcloud-peer-groups/{name}/status")
            ratio = samples[("dcman_peer_group_migration_progress_ratio", (("peer_group", name),))]
            assert ratio == members["complete"] / members["total_subclouds"]
    peers = {p["id"]: p["peer-name"] for p in site2.get("/system-peers")["system_peers"]}
    groups = {g["id"]: g["peer_group_name"] for g in site2.get("/subcloud-peer-groups")["subcloud_peer_groups"]}
    for association in site2.get("/peer-group-associations")["peer_group_associations"]:
        key = (("peer", peers[association["system-peer-id"]]), ("peer_group", groups[association["peer-group-id"]]),
               ("sync_status", association["sync-status"]))
        assert samples[("dcman_association_sync_status", key)] == 1.0
    assert not any(name in text for name in MEMBERS)  # aggregate figures only: no subcloud is named
