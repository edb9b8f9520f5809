"""GET /metrics in the Prometheus text format, and the middleware that counts API requests.

/metrics needs no token, as Prometheus scrapes usually carry none; it therefore holds only
aggregate figures: no subcloud is named in it, only the site's few system peers and peer
groups, which alerts must be able to name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dcman import metrics
from dcman.api.state import site_context
from dcman.domain.peer_groups import status_counts
from dcman.domain.states import MigrationStatus, PeerAvailability
from dcman.services import overview
from dcman.services.context import SiteContext
from dcman.services.single_flight import SingleFlight

router = APIRouter(include_in_schema=False)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class StateFigures(Collector):
    """The state gauges of one scrape, from one read of the database."""

    def __init__(self, seen: overview.Overview) -> None:
        self.seen = seen

    def collect(self) -> Iterator[GaugeMetricFamily]:
        seen = self.seen
        subclouds = GaugeMetricFamily("dcman_subclouds", "Subclouds by availability, management and deploy state.",
                                      labels=["availability", "management", "deploy_status"])
        for a, m, d, n in seen.subcloud_states:
            subclouds.add_metric([a, m, d], n)
        yield subclouds
        alarms = GaugeMetricFamily("dcman_fault_alarms", "Active alarms of the site, by severity.",
                                   labels=["severity"])
        for severity, n in sorted(seen.alarms_by_severity.items()):
            alarms.add_metric([severity], n)
        yield alarms
        available = GaugeMetricFamily("dcman_system_peer_available", "1 when the system peer is available.",
                                      labels=["peer"])
        failures = GaugeMetricFamily("dcman_system_peer_heartbeat_failures_in_a_row",
                                     "Heartbeats to the system peer that failed since its last answer.",
                                     labels=["peer"])
        for p in seen.peers:
            available.add_metric([p.peer_name], 1 if p.availability_state == PeerAvailability.AVAILABLE else 0)
            failures.add_metric([p.peer_name], p.heartbeat_failures)
        yield available
        yield failures
        yield from self._groups()

    def _groups(self) -> Iterator[GaugeMetricFamily]:
        seen = self.seen
        peer_names = {p.id: p.peer_name for p in seen.peers}
        group_names = {m.group.id: m.group.peer_group_name for m in seen.peer_groups}
        sync = GaugeMetricFamily("dcman_association_sync_status",
                                 "1 for the current sync status of each peer group association.",
                                 labels=["peer_group", "peer", "sync_status"])
        for a in seen.associations:
            sync.add_metric([group_names.get(a.peer_group_id, str(a.peer_group_id)),
                             peer_names.get(a.system_peer_id, str(a.system_peer_id)), a.sync_status], 1)
        yield sync
        migrating = GaugeMetricFamily("dcman_peer_group_migrating", "1 while the peer group is migrating here.",
                                      labels=["peer_group"])
        progress = GaugeMetricFamily("dcman_peer_group_migration_progress_ratio",
                                     "Share of a migrating or migrated peer group's subclouds that are complete.",
                                     labels=["peer_group"])
        members = GaugeMetricFamily("dcman_peer_group_subclouds", "Subclouds of each peer group, by state.",
                                    labels=["peer_group", "deploy_status", "management"])
        for m in seen.peer_groups:
            name = m.group.peer_group_name
            migrating.add_metric([name], 1 if m.group.migration_status == MigrationStatus.MIGRATING else 0)
            if m.group.migration_status in (MigrationStatus.MIGRATING, MigrationStatus.COMPLETE):
                counts = status_counts(m.group, m.rows)
                total = counts["total_subclouds"]
                progress.add_metric([name], counts["complete"] / total if total else 1.0)
            for deploy_status, management, n in m.rows:
                members.add_metric([name, deploy_status, management], n)
        yield migrating
        yield progress
        yield members


_renders: SingleFlight[bytes] = SingleFlight()


async def _render(ctx: SiteContext) -> bytes:
    state = CollectorRegistry()
    state.register(StateFigures(await overview.overview(ctx)))
    # Rendering is CPU work: in a thread, so that the scrapes arriving meanwhile join this one.
    return await asyncio.to_thread(lambda: generate_latest(state) + generate_latest(metrics.REGISTRY))


@router.get("/metrics")
async def scrape(ctx: Annotated[SiteContext, Depends(site_context)]) -> Response:
    body = await _renders.run(ctx.engine, lambda: _render(ctx))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    """The full template of the route that answered ("/v1.0/subclouds/{subcloud_ref}"). A route
    of an included router may know only its own part, so the literal prefix in front of the part
    it matched is put back."""
    route: Any = scope.get("route")
    template, regex = getattr(route, "path", None), getattr(route, "path_regex", None)
    if template is None or regex is None:
        return "unmatched"
    path = scope.get("path", "")
    for slash in (i for i, ch in enumerate(path) if ch == "/"):
        if regex.match(path[slash:]):
            return path[:slash] + template
    return template


class RequestMetrics:
    """Counts and times every HTTP request by method, route template and status; requests
    that match no route share one label, so that scanners cannot grow the series."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            metrics.api_request(method, route_template(scope), status, time.monotonic() - started)
