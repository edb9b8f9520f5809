"""The figures the loops and the API feed as they run (counters, histograms),
in one process-wide Prometheus registry. State figures (subclouds by state, peers,
associations, migrations) are not kept here: /metrics reads them from the database at
scrape time, so that they are right whichever process changed them.

The hooks are one call each, so that the loops stay readable.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

PROBES = Counter("dcman_audit_probes", "Availability probes of subcloud agents, by outcome.",
                 ["outcome"], registry=REGISTRY)
PROBE_SECONDS = Histogram("dcman_audit_probe_duration_seconds", "Time one availability probe took.",
                          buckets=_LATENCY_BUCKETS, registry=REGISTRY)
AUDIT_CYCLES = Counter("dcman_audit_cycles", "Availability audit cycles completed.", registry=REGISTRY)
AUDIT_CYCLE_SECONDS = Gauge("dcman_audit_cycle_duration_seconds",
                            "Duration of the last complete audit cycle (ideally DCMAN_AUDIT_INTERVAL).",
                            registry=REGISTRY)
AUDIT_LAG_SECONDS = Gauge("dcman_audit_cycle_lag_seconds",
                          "How much longer than DCMAN_AUDIT_INTERVAL the last audit cycle took.",
                          registry=REGISTRY)
HEARTBEATS = Counter("dcman_peer_heartbeats", "Heartbeats sent to system peers, by peer and outcome.",
                     ["peer", "outcome"], registry=REGISTRY)
HEARTBEAT_FAILURES = Counter("dcman_peer_heartbeat_failures", "Heartbeats to a system peer that failed.",
                             ["peer"], registry=REGISTRY)
LAST_HEARTBEAT = Gauge("dcman_peer_last_heartbeat_timestamp_seconds",
                       "Unix time of the last heartbeat a system peer answered.", ["peer"], registry=REGISTRY)
API_REQUESTS = Counter("dcman_api_requests", "API requests, by method, route template and status.",
                       ["method", "route", "status"], registry=REGISTRY)
API_SECONDS = Histogram("dcman_api_request_duration_seconds", "Time the API took to answer, by route template.",
                        ["method", "route"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)

def observe_probe(started: float, ok: bool) -> None:
    """One availability probe ended; `started` is its time.monotonic() at launch."""
    PROBE_SECONDS.observe(time.monotonic() - started)
    PROBES.labels("ok" if ok else "failed").inc()


def audit_cycle_done(duration: float, interval: float) -> None:
    AUDIT_CYCLES.inc()
    AUDIT_CYCLE_SECONDS.set(duration)
    AUDIT_LAG_SECONDS.set(max(0.0, duration - interval))


def heartbeat(peer_name: str, ok: bool) -> None:
    """One heartbeat to a system peer ended."""
    HEARTBEATS.labels(peer_name, "ok" if ok else "failed").inc()
    if ok:
        LAST_HEARTBEAT.labels(peer_name).set(time.time())
    else:
        HEARTBEAT_FAILURES.labels(peer_name).inc()


def api_request(method: str, route: str, status: int, seconds: float) -> None:
    API_REQUESTS.labels(method, route, str(status)).inc()
    API_SECONDS.labels(method, route).observe(seconds)
