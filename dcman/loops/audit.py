"""The availability audit: probes every audited subcloud once per `DCMAN_AUDIT_INTERVAL`,
spread evenly over the interval, and writes what changed in batches.

Observed state is the agent's answer; the stored state (availability, fail count, endpoint
sync statuses, alarm summary, alarm 280.001/280.002) is reconciled to it by the rules of
dcman.domain.audit. The stored rows are the truth: the loop reloads them every cycle and
whenever an operator changes a subcloud, and after a crash simply starts over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from dcman import metrics
from dcman.db import audit_repository as audit_db
from dcman.db.repository import utcnow
from dcman.domain.alarms import AlarmId, offline_alarm, out_of_sync_alarm
from dcman.domain.audit import (
    UNAVAILABLE_COUNTS,
    AlarmCounts,
    Availability,
    accepted_sync_status,
    after_probe,
    is_audited,
    is_healthy,
    parse_alarm_counts,
    wants_alarm_summary,
)
from dcman.domain.cluster import SHARDS, LeaseKind
from dcman.domain.states import AvailabilityStatus, EndpointType, SyncStatus
from dcman.drivers.agent_client import AgentClient, AgentError, basic_auth
from dcman.services.context import SiteContext

log = logging.getLogger("dcman.audit")

TICK_S = 0.1
FLUSH_S = 1.0
RELOAD_MIN_S = 1.0
MAX_IN_FLIGHT = 500
GOLDEN = 0.6180339887498949  # spreads consecutive ids evenly over the cycle
KNOWN_ENDPOINTS = frozenset(e.value for e in EndpointType)


@dataclass(slots=True)
class Target:
    """What the loop keeps of one audited subcloud between two reloads."""

    id: int
    name: str
    address: str
    auth: str
    management_state: str
    deploy_status: str
    availability: str
    fail_count: int
    counts: AlarmCounts | None
    phase: float
    endpoints: dict[str, str] | None = None


@dataclass(slots=True)
class ProbeResult:
    subcloud_id: int
    ok: bool
    counts: AlarmCounts | None = None
    endpoints: dict[str, str] = field(default_factory=dict)


def probe_timeout(interval: float) -> float:
    """Short enough to detect within the interval, long enough for a loaded agent."""
    return min(10.0, max(1.0, interval / 3))


class AuditLoop:
    def __init__(self, ctx: SiteContext, client: AgentClient | None = None) -> None:
        self.ctx = ctx
        self.interval = ctx.settings.audit_interval
        self.client = client or AgentClient(
            ctx.settings.subcloud_agent_port, ctx.settings.subcloud_agent_scheme, probe_timeout(self.interval)
        )
        self.targets: dict[int, Target] = {}
        self.order: list[Target] = []
        self.results: list[ProbeResult] = []
        self.in_flight: set[asyncio.Task] = set()
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._auth_cache: dict[str, str] = {}
        self.probes_sent = 0
        # The audit leases this process holds; probes in flight by subcloud, to drain a shard
        # before its lease is given back (a subcloud is never probed by two processes at once).
        self.shards = ctx.shards[LeaseKind.AUDIT]
        self.shards.drainers.append(self.drain)
        self.loaded_shards: frozenset[int] = frozenset()
        self.probing: dict[int, asyncio.Task] = {}

    # --- loading -------------------------------------------------------------------------

    async def reload(self, first: bool = False) -> list[Target]:
        """Re-read the audited subclouds; returns those new since the last reload."""
        shards = self.shards.held
        async with self.ctx.engine.connect() as conn:
            rows = await audit_db.audit_targets(conn, shards)
        # Subclouds of shards just taken over are audited at their slot in the cycle, not at once.
        known_shards, self.loaded_shards = self.loaded_shards, shards
        targets: dict[int, Target] = {}
        new: list[Target] = []
        for row in rows:
            if not is_audited(row.deploy_status, row.availability):
                continue
            old = self.targets.get(row.id)
            target = Target(
                row.id, row.name, row.address, self._auth(row.sysadmin_password), row.management_state,
                row.deploy_status, row.availability, row.fail_count, row.counts, (row.id * GOLDEN) % 1.0,
                old.endpoints if old else None,
            )
            targets[row.id] = target
            if old is None and not first and row.id % SHARDS in known_shards:
                new.append(target)
        self.targets = targets
        self.order = sorted(targets.values(), key=lambda t: t.phase)
        return new

    def _auth(self, encrypted: str | None) -> str:
        if encrypted is None:
            return ""
        cached = self._auth_cache.get(encrypted)
        if cached is None:
            try:
                cached = basic_auth(self.ctx.secrets.decrypt(encrypted))
            except ValueError:
                cached = ""
            self._auth_cache[encrypted] = cached
        return cached

    # --- probing -------------------------------------------------------------------------

    async def _probe(self, target: Target) -> None:
        started = time.monotonic()
        try:
            calls = [("GET", "/v1/status", None)]
            if wants_alarm_summary(target.management_state, target.availability):
                calls.append(("GET", "/v1/alarms/summary", None))
            responses = await self.client.exchange(target.address, target.auth, calls)
            status = responses[0]
            ok = status.status == 200 and is_healthy(status.body)
            result = ProbeResult(target.id, ok)
            if ok and isinstance(status.body.get("endpoints"), dict):
                result.endpoints = {k: v for k, v in status.body["endpoints"].items()
                                    if k in KNOWN_ENDPOINTS and v in (SyncStatus.IN_SYNC, SyncStatus.OUT_OF_SYNC)}
            if ok and len(responses) > 1 and responses[1].status == 200:
                result.counts = parse_alarm_counts(responses[1].body)
        except AgentError as exc:
            log.debug("probe of %s failed: %s", target.name, exc)
            result = ProbeResult(target.id, False)
        except Exception:  # never let one odd answer stop the audit
            log.exception("probe of %s failed unexpectedly", target.name)
            result = ProbeResult(target.id, False)
        finally:
            self.slots.release()
        metrics.observe_probe(started, result.ok)
        self.results.append(result)

    async def _launch(self, target: Target) -> None:
        await self.slots.acquire()
        if not self.shards.holds(target.id) or target.id in self.probing:
            self.slots.release()  # its shard went to another process since the last reload
            return
        self.probes_sent += 1
        task = asyncio.create_task(self._probe(target))
        self.in_flight.add(task)
        self.probing[target.id] = task
        task.add_done_callback(self.in_flight.discard)
        task.add_done_callback(lambda _task: self.probing.pop(target.id, None))

    async def drain(self, shards: frozenset[int]) -> None:
        """Wait for the probes in flight of these shards (no new one starts: `_launch` checks)."""
        pending = [task for subcloud_id, task in self.probing.items() if subcloud_id % SHARDS in shards]
        if pending:
            await asyncio.wait(pending)
        self.ctx.audit_wakeup.set_local()  # reload without them

    # --- writing -------------------------------------------------------------------------

    async def flush(self) -> None:
        """Apply the collected probe results: one transaction for the whole batch."""
        results, self.results = self.results, []
        if not results:
            return
        now = utcnow()
        availability_rows: list[dict] = []
        counts_only: dict[int, int] = {}
        went_offline: list[Target] = []
        went_online: list[Target] = []
        summaries: dict[int, AlarmCounts] = {}
        reported: list[tuple[Target, dict[str, str]]] = []
        for result in results:
            target = self.targets.get(result.subcloud_id)
            if target is None:  # deleted or no longer audited since the probe left
                continue
            before = Availability(target.availability, target.fail_count)
            after = after_probe(before, result.ok)
            if after.status != before.status:
                availability_rows.append({"id": target.id, "availability": after.status, "fail_count": after.fail_count})
                (went_online if after.status == AvailabilityStatus.ONLINE else went_offline).append(target)
                log.info("subcloud %s: %s -> %s (fail count %d)", target.name, before.status, after.status,
                         after.fail_count)
            elif after.fail_count != before.fail_count:
                counts_only[target.id] = after.fail_count
            target.availability, target.fail_count = after.status, after.fail_count
            if after.status == AvailabilityStatus.OFFLINE:
                if target.counts != UNAVAILABLE_COUNTS:
                    summaries[target.id] = target.counts = UNAVAILABLE_COUNTS
                target.endpoints = {}
                continue
            if result.counts is not None and result.counts != target.counts:
                summaries[target.id] = target.counts = result.counts
            if result.endpoints:
                reported.append((target, result.endpoints))
        async with self.ctx.engine.begin() as conn:
            await audit_db.set_availability(conn, availability_rows, now)
            await audit_db.set_fail_counts(conn, counts_only)
            if went_offline:
                ids = [t.id for t in went_offline]
                await audit_db.reset_endpoints(conn, ids)
                await audit_db.raise_alarms(conn, [(t.id, offline_alarm(t.name)) for t in went_offline], now)
            if went_online:
                await audit_db.clear_alarms(conn, AlarmId.SUBCLOUD_OFFLINE, [t.id for t in went_online])
            await audit_db.set_alarm_counts(conn, summaries, now)
            if reported:
                await self._apply_endpoints(conn, reported, now)

    async def _apply_endpoints(self, conn, reported: list[tuple[Target, dict[str, str]]], now) -> None:  # type: ignore[no-untyped-def]
        unknown = [t.id for t, _ in reported if t.endpoints is None]
        if unknown:
            stored = await audit_db.endpoint_statuses(conn, unknown)
            for target, _ in reported:
                if target.endpoints is None:
                    target.endpoints = stored.get(target.id, {})
        rows, raised, cleared = [], [], []
        for target, endpoints in reported:
            assert target.endpoints is not None
            for endpoint, status in endpoints.items():
                if target.endpoints.get(endpoint) == status:
                    continue
                if not accepted_sync_status(endpoint, status, target.availability, target.management_state,
                                            target.deploy_status):
                    continue
                target.endpoints[endpoint] = status
                rows.append((target.id, endpoint, status))
                alarm = out_of_sync_alarm(target.name, endpoint)
                if status == SyncStatus.OUT_OF_SYNC:
                    raised.append((target.id, alarm))
                else:
                    cleared.append((target.id, alarm.entity_instance_id))
        await audit_db.set_endpoint_statuses(conn, rows, now)
        await audit_db.raise_alarms(conn, raised, now)
        for subcloud_id, entity in cleared:
            await audit_db.clear_alarms(conn, AlarmId.SUBCLOUD_RESOURCE_OUT_OF_SYNC, [subcloud_id], [entity])

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Walk the cycle: every tick, launch the probes whose slot in the interval has come."""
        loop = asyncio.get_running_loop()
        await self.reload(first=True)
        cycle_start = loop.time()
        position = 0  # index into self.order of the next target due in this cycle
        last_flush = last_reload = loop.time()
        while True:
            now = loop.time()
            try:
                if now - last_flush >= FLUSH_S:
                    await self.flush()
                    last_flush = now
                # Operator changes wake the loop; a burst of them costs one reload a second.
                if self.ctx.audit_wakeup.is_set() and now - last_reload >= RELOAD_MIN_S:
                    self.ctx.audit_wakeup.clear()
                    last_reload = now
                    await self.flush()
                    # Resume after the last target launched, not at the current time: those due
                    # since the last tick are launched below, else they would wait a whole cycle.
                    launched = self.order[position - 1].phase if position else -1.0
                    for target in await self.reload():
                        await self._launch(target)  # a new subcloud is probed at once
                    position = _first_after(self.order, launched)
                elapsed = (now - cycle_start) / self.interval
                if elapsed >= 1.0:
                    while position < len(self.order):  # the tail of a late cycle
                        await self._launch(self.order[position])
                        position += 1
                    await self.flush()
                    metrics.audit_cycle_done(loop.time() - cycle_start, self.interval)
                    cycle_start, position, last_reload = now, 0, now
                    elapsed = 0.0
                    for target in await self.reload():
                        await self._launch(target)  # new at the turn of the cycle: at once too
                while position < len(self.order) and self.order[position].phase <= elapsed:
                    await self._launch(self.order[position])
                    position += 1
            except Exception:  # a database hiccup must not stop the audit; the next tick retries
                log.exception("audit tick failed")
            await asyncio.sleep(TICK_S)


def _first_after(order: list[Target], phase: float) -> int:
    low, high = 0, len(order)
    while low < high:
        mid = (low + high) // 2
        if order[mid].phase <= phase:
            low = mid + 1
        else:
            high = mid
    return low


async def run(ctx: SiteContext) -> None:
    await AuditLoop(ctx).run()

