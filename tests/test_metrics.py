"""/metrics on a real site auditing a real simulator: the figures agree with the API after
the fleet changes, the loops and the API feed their counters, and no subcloud is named."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from simfleet import Fleet, running_fleet, wait_until

NAMES = ("sim-00001", "sim-00002", "sim-00003", "sim-00004")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    with running_fleet(tmp_path_factory.mktemp("metrics"), 5) as fleet:
        fleet.online(*NAMES)
        yield fleet


def scrape(fleet: Fleet) -> tuple[str, dict[tuple[str, tuple], float]]:
    """The text of /metrics (fetched without a token, as Prometheus does) and its samples."""
    response = httpx.get(fleet.site.url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text) for s in family.samples}
    return response.text, samples


def by_state(samples: dict[tuple[str, tuple], float]) -> Counter:
    found: Counter = Counter()
    for (name, labels), value in samples.items():
        if name == "dcman_subclouds":
            found[(dict(labels)["availability"], dict(labels)["management"], dict(labels)["deploy_status"])] += value
    return found


def listed(fleet: Fleet) -> Counter:
    subclouds = fleet.call("GET", "/subclouds").json()["subclouds"]
    return Counter((s["availability-status"], s["management-state"], s["deploy-status"]) for s in subclouds)


def test_the_state_figures_agree_with_the_api_after_changes(fleet):
    assert by_state(scrape(fleet)[1]) == listed(fleet) == {("online", "unmanaged", "complete"): 4}
    assert fleet.call("PATCH", "/subclouds/sim-00001", json={"management-state": "managed"}).status_code == 200
    fleet.add("sim-00005", deploy_config="x: 1")  # on its way through the deploy phases
    try:
        fleet.fault("sim-00004", reachable=False)
        wait_until(lambda: fleet.subcloud("sim-00004")["availability-status"] == "offline", timeout=30)
        wait_until(lambda: fleet.subcloud("sim-00005")["availability-status"] == "online", timeout=30)
        text, samples = scrape(fleet)
        assert by_state(samples) == listed(fleet) == {
            ("online", "managed", "complete"): 1, ("online", "unmanaged", "complete"): 3,
            ("offline", "unmanaged", "complete"): 1}
        alarms = fleet.call("GET", "/fault-alarms").json()["alarms"]
        assert samples[("dcman_fault_alarms", (("severity", "critical"),))] == len(alarms) == 1
        assert samples[("dcman_audit_probes_total", (("outcome", "failed"),))] >= 2  # offline at the 2nd failure
        assert not any(name in text for name in NAMES)  # aggregate figures only: no subcloud is named
    finally:
        fleet.fault("sim-00004", reachable=True)


def test_the_audit_feeds_its_cycle_and_probe_figures(fleet):
    _, samples = scrape(fleet)
    assert samples[("dcman_audit_cycles_total", ())] >= 1
    assert samples[("dcman_audit_cycle_duration_seconds", ())] >= 1.0  # DCMAN_AUDIT_INTERVAL here
    assert samples[("dcman_audit_cycle_lag_seconds", ())] >= 0.0
    probes = samples[("dcman_audit_probe_duration_seconds_count", ())]
    assert probes == samples[("dcman_audit_probes_total", (("outcome", "ok"),))] + samples.get(
        ("dcman_audit_probes_total", (("outcome", "failed"),)), 0.0)
    assert samples[("dcman_audit_probe_duration_seconds_bucket", (("le", "+Inf"),))] == probes


def test_api_requests_are_counted_by_route_template_and_status(fleet):
    def count(samples, method, route, status):
        return samples.get(("dcman_api_requests_total", (("method", method), ("route", route), ("status", status))), 0)

    _, before = scrape(fleet)
    for name in ("sim-00001", "sim-00002", "sim-00003"):
        assert fleet.call("GET", f"/subclouds/{name}").status_code == 200
    assert fleet.call("GET", "/subclouds/no-such").status_code == 404
    assert httpx.get(fleet.site.url + "/v1.0/subclouds", timeout=10).status_code == 401
    assert httpx.get(fleet.site.url + "/no/such/path", timeout=10).status_code == 404
    _, after = scrape(fleet)
    route = "/v1.0/subclouds/{subcloud_ref}"
    assert count(after, "GET", route, "200") - count(before, "GET", route, "200") == 3
    assert count(after, "GET", route, "404") - count(before, "GET", route, "404") == 1
    assert count(after, "GET", "/v1.0/subclouds", "401") - count(before, "GET", "/v1.0/subclouds", "401") == 1
    assert count(after, "GET", "unmatched", "404") - count(before, "GET", "unmatched", "404") == 1
    seconds = ("dcman_api_request_duration_seconds_count", (("method", "GET"), ("route", route)))
    assert after[seconds] - before.get(seconds, 0) == 4
