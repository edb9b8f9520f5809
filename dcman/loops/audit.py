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
from collections import defaultdict, deque
from dataclasses import dataclass, field

from dcman import metrics
from dcman.db import audit as audit_db
from dcman.db import subclouds as subclouds_db
from dcman.db.clock import utcnow
from dcman.domain.alarms import Alarm, AlarmId, offline_alarm, out_of_sync_alarm
from dcman.domain.audit import (
    UNAVAILABLE_COUNTS,
    AlarmCounts,
    Availability,
    accepted_sync_status,
    after_probe,
    audit_error_description,
    confirm_delay,
    is_audited,
    is_healthy,
    parse_alarm_counts,
    wants_alarm_summary,
)
from dcman.domain.cluster import SHARDS, LeaseKind
from dcman.domain.failover import controller_seen, stepped_aside
from dcman.domain.states import AvailabilityStatus, DeployStatus, EndpointType, ManagementState, SyncStatus
from dcman.domain.transitions import SubcloudState, endpoints_kept, transition
from dcman.drivers.agent_client import AgentClient, AgentError, basic_auth
from dcman.loops import runner
from dcman.loops.runner import Timing
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
    error_description: str = ""
    # The endpoint statuses as last read or written, None when not known; valid while the
    # subcloud's endpoints_version in the database is still this one.
    endpoints: dict[str, str] | None = None
    endpoints_version: int = 0
    fencing_epoch: int = 0  # the epoch this site's claim on the subcloud holds


@dataclass(slots=True)
class ProbeResult:
    subcloud_id: int
    ok: bool
    counts: AlarmCounts | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    tls_refusal: str | None = None
    controller: tuple[str, int] | None = None  # domain.failover.controller_seen


@dataclass(slots=True)
class Seen:
    """What a flush makes of one target, kept aside until its transaction has committed."""

    target: Target
    availability: str
    fail_count: int
    counts: AlarmCounts | None
    endpoints: dict[str, str] | None
    endpoints_version: int
    error_description: str

    @classmethod
    def of(cls, target: Target) -> "Seen":
        # The statuses dict is shared, never changed in place: a flush that writes replaces it.
        return cls(target, target.availability, target.fail_count, target.counts, target.endpoints,
                   target.endpoints_version, target.error_description)

    def differs(self, reported: dict[str, str]) -> bool:
        """Whether the report may change what is stored, as far as the loop remembers it."""
        remembered = self.endpoints
        if remembered is None:
            return True
        if reported.items() <= remembered.items():  # the steady case, checked at C speed
            return False
        target = self.target
        return any(remembered.get(endpoint) != status and accepted_sync_status(
            endpoint, status, self.availability, target.management_state, target.deploy_status)
            for endpoint, status in reported.items())

    def commit(self) -> None:
        target = self.target
        target.availability, target.fail_count, target.counts = self.availability, self.fail_count, self.counts
        target.endpoints, target.endpoints_version = self.endpoints, self.endpoints_version
        target.error_description = self.error_description


@dataclass(slots=True)
class EndpointChanges:
    rows: list[tuple[int, str, str]] = field(default_factory=list)
    raised: list[tuple[int, Alarm]] = field(default_factory=list)
    cleared: list[tuple[int, str]] = field(default_factory=list)


def probe_timeout(interval: float) -> float:
    """Short enough to detect within the interval, long enough for a loaded agent."""
    return min(10.0, max(1.0, interval / 3))


class AuditLoop:
    def __init__(self, ctx: SiteContext, client: AgentClient | None = None) -> None:
        self.ctx = ctx
        self.interval = ctx.settings.audit_interval
        self.client = client or AgentClient.for_site(ctx.settings, probe_timeout(self.interval),
                                                     site_uuid=ctx.site_uuid)
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
        # Subclouds whose first probe just failed, each with when to probe it again (in order).
        self.confirming: deque[tuple[float, int]] = deque()
        self.confirm_delay = confirm_delay(self.interval)
        # Where the loop is in its cycle (monotonic times), set by its first tick.
        self.started = False
        self.cycle_start = self.last_flush = self.last_reload = 0.0
        self.position = 0

    # --- loading -------------------------------------------------------------------------

    async def reload(self, first: bool = False) -> list[Target]:
        """Re-read the audited subclouds; returns those to probe at once: new since the last
        reload, or managed or unmanaged since (so that their sync statuses follow at once)."""
        shards = self.shards.held
        async with self.ctx.engine.connect() as conn:
            rows = await audit_db.audit_targets(conn, shards)
        # Subclouds of shards just taken over are audited at their slot in the cycle, not at once.
        known_shards, self.loaded_shards = self.loaded_shards, shards
        targets: dict[int, Target] = {}
        due: list[Target] = []
        for row in rows:
            if not is_audited(row.deploy_status, row.availability):
                continue
            old = self.targets.get(row.id)
            target = Target(
                row.id, row.name, row.address, self._auth(row.sysadmin_password), row.management_state,
                row.deploy_status, row.availability, row.fail_count, row.counts, (row.id * GOLDEN) % 1.0,
                row.error_description, fencing_epoch=row.fencing_epoch,
            )
            # What the loop remembers of the statuses holds until another writer resets them.
            if old is not None and old.endpoints_version == row.endpoints_version:
                target.endpoints = old.endpoints
            target.endpoints_version = row.endpoints_version
            targets[row.id] = target
            if old is None:
                if not first and row.id % SHARDS in known_shards:
                    due.append(target)
            elif old.management_state != row.management_state:
                due.append(target)
        self.targets = targets
        self.order = sorted(targets.values(), key=lambda t: t.phase)
        if self.client.tls is not None:  # no TLS session kept for a subcloud no longer audited here
            self.client.tls.keep_only({target.address for target in targets.values()})
        return due

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
            responses = await self.client.probe(target.address, target.auth,
                                                alarms=wants_alarm_summary(target.management_state, target.availability))
            status = responses[0]
            ok = status.status == 200 and is_healthy(status.body)
            result = ProbeResult(target.id, ok)
            if ok and isinstance(status.body.get("endpoints"), dict):
                result.endpoints = {k: v for k, v in status.body["endpoints"].items()
                                    if k in KNOWN_ENDPOINTS and v in (SyncStatus.IN_SYNC, SyncStatus.OUT_OF_SYNC)}
            if ok and len(responses) > 1 and responses[1].status == 200:
                result.counts = parse_alarm_counts(responses[1].body)
            if ok:
                result.controller = controller_seen(status.body, self.ctx.site_uuid, target.fencing_epoch)
        except AgentError as exc:
            log.debug("probe of %s failed: %s", target.name, exc)
            result = ProbeResult(target.id, False, tls_refusal=exc.tls_refusal)
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

    async def _confirm(self, now: float) -> None:
        """Probe again, now, the subclouds whose first failure is `confirm_delay` old and not yet
        answered by a good probe since."""
        while self.confirming and self.confirming[0][0] <= now:
            _, subcloud_id = self.confirming.popleft()
            target = self.targets.get(subcloud_id)
            if target is not None and target.fail_count > 0 and target.availability == AvailabilityStatus.ONLINE:
                await self._launch(target)

    async def drain(self, shards: frozenset[int]) -> None:
        """Wait for the probes in flight of these shards (no new one starts: `_launch` checks)."""
        pending = [task for subcloud_id, task in self.probing.items() if subcloud_id % SHARDS in shards]
        if pending:
            await asyncio.wait(pending)
        self.ctx.audit_wakeup.set_local()  # reload without them

    # --- writing -------------------------------------------------------------------------

    async def flush(self) -> None:
        """Apply the collected probe results: one transaction for the whole batch. The targets
        take the new values only once it committed, so a failed commit leaves them as stored."""
        results, self.results = self.results, []
        if not results:
            return
        now = utcnow()
        availability_rows: list[dict] = []
        counts_only: dict[int, int] = {}
        went_offline: list[Target] = []
        went_online: list[Target] = []
        summaries: dict[int, AlarmCounts] = {}
        errors: dict[int, tuple[str, str]] = {}
        seen: dict[int, Seen] = {}
        reported: dict[int, tuple[Seen, dict[str, str]]] = {}
        for result in results:
            target = self.targets.get(result.subcloud_id)
            if target is None:  # deleted or no longer audited since the probe left
                continue
            outcome = seen.get(target.id) or Seen.of(target)
            seen[target.id] = outcome
            before = Availability(outcome.availability, outcome.fail_count)
            after = after_probe(before, result.ok)
            if after.status != before.status:
                availability_rows.append({"id": target.id, "availability": after.status, "fail_count": after.fail_count})
                (went_online if after.status == AvailabilityStatus.ONLINE else went_offline).append(target)
                log.info("subcloud %s: %s -> %s (fail count %d)", target.name, before.status, after.status,
                         after.fail_count)
            elif after.fail_count != before.fail_count:
                counts_only[target.id] = after.fail_count
            if after.status == AvailabilityStatus.ONLINE and after.fail_count == 1 and before.fail_count == 0:
                self.confirming.append((asyncio.get_running_loop().time() + self.confirm_delay, target.id))
            error = audit_error_description(outcome.error_description, result.tls_refusal)
            if error is not None:
                errors[target.id] = (outcome.error_description, error)
                if result.tls_refusal is not None:
                    log.warning("subcloud %s: %s", target.name, error)
                outcome.error_description = error
            outcome.availability, outcome.fail_count = after.status, after.fail_count
            if after.status == AvailabilityStatus.OFFLINE:
                if outcome.counts != UNAVAILABLE_COUNTS:
                    summaries[target.id] = outcome.counts = UNAVAILABLE_COUNTS
                outcome.endpoints = None  # reset when it went offline: read again when it reports
                reported.pop(target.id, None)
                continue
            if result.counts is not None and result.counts != outcome.counts:
                summaries[target.id] = outcome.counts = result.counts
            if result.endpoints:
                reported[target.id] = (outcome, result.endpoints)
        async with self.ctx.engine.begin() as conn:
            # First, as an operator's change does: lock the subcloud rows, then write the rest.
            endpoints = await self._endpoint_changes(conn, list(reported.values()))
            await subclouds_db.set_availability(conn, availability_rows, now)
            await subclouds_db.set_fail_counts(conn, counts_only)
            await subclouds_db.set_error_descriptions(conn, errors, now)
            if went_offline:
                await self._reset_endpoints(conn, went_offline)
                await audit_db.raise_alarms(conn, [(t.id, offline_alarm(t.name)) for t in went_offline], now)
            if went_online:
                await audit_db.clear_alarms(conn, AlarmId.SUBCLOUD_OFFLINE, [t.id for t in went_online])
            await audit_db.set_alarm_counts(conn, summaries, now)
            await audit_db.set_endpoint_statuses(conn, endpoints.rows, now)
            await audit_db.raise_alarms(conn, endpoints.raised, now)
            for subcloud_id, entity in endpoints.cleared:
                await audit_db.clear_alarms(conn, AlarmId.SUBCLOUD_RESOURCE_OUT_OF_SYNC, [subcloud_id], [entity])
        for outcome in seen.values():
            outcome.commit()
        if went_online:
            self.ctx.migration_wakeup.set()  # a subcloud rehomed here is managed once seen online
        claimed = [r for r in results if r.controller is not None and r.subcloud_id in self.targets]
        if claimed:
            await self._follow_claims(claimed)

    async def _follow_claims(self, results: list[ProbeResult]) -> None:
        """Rare: what the subclouds said of their controller. This site's own claim's epoch is
        stored; a managed subcloud another site claimed since is let go (secondary here)."""
        stepped: list[str] = []
        async with self.ctx.engine.begin() as conn:
            for result in results:
                target = self.targets[result.subcloud_id]
                controller, epoch = result.controller  # type: ignore[misc]
                subcloud = await subclouds_db.get_subcloud(conn, target.id)
                if subcloud is None:
                    continue
                if controller == self.ctx.site_uuid:
                    await subclouds_db.apply_transition(conn, target.id, transition(subcloud, fencing_epoch=epoch))
                elif subcloud.management_state == ManagementState.MANAGED:
                    await subclouds_db.apply_transition(conn, target.id, stepped_aside(subcloud, controller, epoch),
                                                        only_if={"management_state": ManagementState.MANAGED.value})
                    stepped.append(target.name)
                target.fencing_epoch = epoch if controller == self.ctx.site_uuid else target.fencing_epoch
        for name in stepped:
            log.warning("subcloud %s answers to another site now (a higher fencing epoch): no longer managed here",
                        name)
        if stepped:
            self.ctx.subclouds_changed()

    async def _reset_endpoints(self, conn, went_offline: list[Target]) -> None:  # type: ignore[no-untyped-def]
        """Going offline resets endpoint statuses by the transitions' rule, one statement for
        each set of endpoints kept (the hot path of 50,000 subclouds takes no transition each)."""
        by_kept: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for target in went_offline:
            state = SubcloudState(DeployStatus(target.deploy_status), ManagementState(target.management_state),
                                  AvailabilityStatus.ONLINE)
            kept = endpoints_kept(state, state._replace(availability_status=AvailabilityStatus.OFFLINE))
            if kept is not None:
                by_kept[kept].append(target.id)
        for kept, ids in by_kept.items():
            await subclouds_db.reset_endpoints(conn, ids, keep=kept)

    async def _endpoint_changes(self, conn, reported: list[tuple[Seen, dict[str, str]]]) -> EndpointChanges:  # type: ignore[no-untyped-def]
        """The reported sync statuses that differ from the stored ones and may be stored.

        Only subclouds whose report differs from what the loop remembers, or that it remembers
        nothing of, are read (in a steady fleet, none); the reload forgets what it remembers of a
        subcloud whose statuses another writer reset. The decision is made on the stored rows,
        locked until commit, so an unmanage that lands meanwhile cannot be overwritten.
        """
        changes = EndpointChanges()
        suspects = [(outcome, endpoints) for outcome, endpoints in reported if outcome.differs(endpoints)]
        if not suspects:
            return changes
        stored = await audit_db.locked_endpoints(conn, [outcome.target.id for outcome, _ in suspects])
        for outcome, endpoints in suspects:
            found = stored.get(outcome.target.id)
            if found is None:  # deleted since the last reload
                continue
            statuses = dict(found.statuses)
            for endpoint, status in endpoints.items():
                if statuses.get(endpoint) == status or not accepted_sync_status(
                        endpoint, status, outcome.availability, found.management_state, found.deploy_status):
                    continue
                statuses[endpoint] = status
                subcloud_id = outcome.target.id
                changes.rows.append((subcloud_id, endpoint, status))
                alarm = out_of_sync_alarm(outcome.target.name, endpoint)
                if status == SyncStatus.OUT_OF_SYNC:
                    changes.raised.append((subcloud_id, alarm))
                else:
                    changes.cleared.append((subcloud_id, alarm.entity_instance_id))
            outcome.endpoints, outcome.endpoints_version = statuses, found.version
        return changes

    # --- the loop ------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.reload(first=True)
        self.cycle_start = self.last_flush = self.last_reload = loop.time()
        self.position = 0  # index into self.order of the next target due in this cycle
        self.started = True

    async def tick(self) -> float:
        """Walk the cycle: launch the probes whose slot in the interval has come."""
        if not self.started:
            await self.start()
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self.last_flush >= FLUSH_S:
            await self.flush()
            self.last_flush = now
        # Operator changes wake the loop; a burst of them costs one reload a second.
        if self.ctx.audit_wakeup.is_set() and now - self.last_reload >= RELOAD_MIN_S:
            self.ctx.audit_wakeup.clear()
            self.last_reload = now
            await self.flush()
            # Resume after the last target launched, not at the current time: those due
            # since the last tick are launched below, else they would wait a whole cycle.
            launched = self.order[self.position - 1].phase if self.position else -1.0
            for target in await self.reload():
                await self._launch(target)  # a new or just (un)managed subcloud is probed at once
            self.position = _first_after(self.order, launched)
        elapsed = (now - self.cycle_start) / self.interval
        if elapsed >= 1.0:
            while self.position < len(self.order):  # the tail of a late cycle
                await self._launch(self.order[self.position])
                self.position += 1
            await self.flush()
            metrics.audit_cycle_done(loop.time() - self.cycle_start, self.interval)
            self.cycle_start, self.position, self.last_reload = now, 0, now
            elapsed = 0.0
            for target in await self.reload():
                await self._launch(target)  # new at the turn of the cycle: at once too
        while self.position < len(self.order) and self.order[self.position].phase <= elapsed:
            await self._launch(self.order[self.position])
            self.position += 1
        await self._confirm(now)
        return TICK_S


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
    # Not woken by the audit's wake-up: each tick looks at it (a reload at most once a second).
    await runner.run("audit", AuditLoop(ctx).tick, Timing(TICK_S))

