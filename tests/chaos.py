"""Seeded chaos schedules over the three-site topology (tests/geo3.py), and their checks.

`draw_schedule(seed, steps)` draws a schedule from `random.Random(seed)` alone: site kills
and restarts, site-to-site cuts (one way or both) and heals, and site-to-subcloud cuts (the
simulator's `blocked_sites` on every pg1 member) and heals. Steps name sites by role, not by
name: `R0` is the site leading pg1 when the schedule starts, `R1` and `R2` the two others in
name order, so a seed replays the same story whichever site leads when it is replayed. At
most one site is down at a time.

`Chaos(topology).run(seed, steps)` plays one schedule on a running topology. After every step
it watches for a bounded settle time (a kill of the current leader: until the group is
managed and online on another site, or the failover bound passes) and records, from the
simulator's point of view and the living sites' APIs:

- a *double-controller moment*: a subcloud's `double_controller` counter (the simulator's
  count of times it obeyed two sites at one fencing epoch) went up;
- *two managers*: two living sites show one subcloud managed although each has heard the
  other for longer than the grace (two heartbeats and a beat timeout: the time a site
  needs to see its peer's copy and step aside). Across a cut, a fenced site may still
  show a subcloud managed; that is the agent's to refuse, and is not counted here.

Then it heals everything, restarts the dead sites and waits for convergence; every subcloud
acknowledged before the schedule must exist on some site, exactly one site must manage it
and the simulator must say it obeys that site. A subcloud no site holds is *lost*.
Failover times are measured for kills of the current leader: from the SIGKILL until every
pg1 member is managed and online on another site; None when none happened within the bound.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import httpx

from geo3 import HEARTBEAT_INTERVAL_S, SITES, Topology

ROLES = ("R0", "R1", "R2")
KINDS = ("kill", "restart", "cut", "heal", "block", "unblock", "isolate")


@dataclass(frozen=True)
class Step:
    """One chaos step; `site`/`other` are roles (R0 the leader at the schedule's start)."""

    kind: str
    site: str
    other: str | None = None
    both: bool = True  # cut/heal: both directions, or only site→other

    def describe(self, roles: dict[str, str] | None = None) -> str:
        name = (lambda r: roles[r]) if roles else (lambda r: r)
        if self.kind in ("cut", "heal"):
            arrow = "<->" if self.both else "->"
            return f"{self.kind} {name(self.site)}{arrow}{name(self.other)}"  # type: ignore[arg-type]
        if self.kind in ("block", "unblock"):
            return f"{self.kind} subclouds from {name(self.site)}"
        return f"{self.kind} {name(self.site)}"


def draw_schedule(seed: int, steps: int, max_down: int = 1) -> list[Step]:
    """`steps` steps drawn from `random.Random(seed)` only, each one possible in the state the
    previous ones leave (never more than `max_down` sites down, never all three)."""
    rng = random.Random(seed)
    down: set[str] = set()
    cut: set[tuple[str, str]] = set()
    blocked: set[str] = set()
    schedule: list[Step] = []
    while len(schedule) < steps:
        up = [r for r in ROLES if r not in down]
        options: list[tuple[float, Step]] = []
        if len(down) < min(max_down, len(ROLES) - 1):
            # The leader is killed more often than the others: its failover is what is measured.
            options += [(3.0 if r == "R0" else 1.0, Step("kill", r)) for r in up]
        options += [(4.0, Step("restart", r)) for r in sorted(down)]
        for a in up:
            for b in up:
                if a < b and (a, b) not in cut and (b, a) not in cut:
                    options.append((1.0, Step("cut", a, b, True)))
                if a != b and (a, b) not in cut:
                    options.append((0.5, Step("cut", a, b, False)))
        for a, b in sorted(cut):
            both = (b, a) in cut
            if both and a > b:
                continue
            options.append((1.5, Step("heal", a, b, both)))
        options += [(1.0, Step("block", r)) for r in up if r not in blocked and len(blocked) < 2]
        options += [(1.5, Step("unblock", r)) for r in sorted(blocked)]
        options += [(1.0 if r == "R0" else 0.3, Step("isolate", r)) for r in up if r not in blocked]
        weights = [w for w, _ in options]
        step = rng.choices([s for _, s in options], weights)[0]
        schedule.append(step)
        if step.kind == "kill":
            down.add(step.site)
        elif step.kind == "restart":
            down.discard(step.site)
        elif step.kind == "cut":
            cut.add((step.site, step.other))  # type: ignore[arg-type]
            if step.both:
                cut.add((step.other, step.site))  # type: ignore[arg-type]
        elif step.kind == "heal":
            cut.discard((step.site, step.other))  # type: ignore[arg-type]
            if step.both:
                cut.discard((step.other, step.site))  # type: ignore[arg-type]
        elif step.kind == "block":
            blocked.add(step.site)
        elif step.kind == "unblock":
            blocked.discard(step.site)
        elif step.kind == "isolate":
            blocked.add(step.site)
            cut.update((step.site, r) for r in ROLES if r != step.site)
            cut.update((r, step.site) for r in ROLES if r != step.site)
    return schedule


@dataclass
class Violation:
    seed: int
    step: int  # index in the schedule; len(schedule) for the final check
    what: str

    def __str__(self) -> str:
        return f"seed {self.seed} step {self.step}: {self.what}"


@dataclass
class Failover:
    """A kill of the current leader: who, and seconds until the group was managed and online
    elsewhere (None: no failover within the bound)."""

    leader: str
    seconds: float | None
    taken_by: str | None = None


@dataclass
class ScheduleResult:
    seed: int
    roles: dict[str, str]
    steps: list[str]
    violations: list[Violation] = field(default_factory=list)
    double_controller: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged subclouds no site holds
    unmanaged: list[str] = field(default_factory=list)  # held, but managed by no site after healing
    split: list[str] = field(default_factory=list)  # the sites that each kept part of pg1
    failovers: list[Failover] = field(default_factory=list)
    leader_after: str | None = None
    seconds: float = 0.0
    witness_fields: bool = False  # the simulator reported double_controller at all


class Chaos:
    """Plays schedules on one running topology, reused from schedule to schedule."""

    def __init__(self, topology: Topology, settle_s: float = 8.0, failover_margin_s: float = 20.0,
                 converge_s: float = 120.0, poll_s: float = 0.5) -> None:
        self.topology = topology
        self.settle_s = settle_s
        self.converge_s = converge_s
        self.poll_s = poll_s
        self.failover_wait_s = self.failover_bound_s() + HEARTBEAT_INTERVAL_S / 2 + failover_margin_s
        self.grace_s = 2 * HEARTBEAT_INTERVAL_S + HEARTBEAT_INTERVAL_S / 2
        # When each pair of sites last became able to hear each other (both ways, both alive).
        self._heard_since: dict[frozenset[str], float] = {}
        self._double: dict[str, int] = {}
        self._seen: set[tuple[str, str, str]] = set()

    def failover_bound_s(self) -> float:
        """heartbeat interval × threshold + witness bound (3 audit intervals) + rehome time
        (one rehome phase): the failover time the design promises after a leader's death."""
        t = self.topology
        return HEARTBEAT_INTERVAL_S * t.threshold + 3 * t.audit_interval + t.phase_seconds

    # --- one schedule ----------------------------------------------------------------------

    def run(self, seed: int, steps: int = 4, max_down: int = 1) -> ScheduleResult:
        """Play the schedule of `seed` from a converged topology, then heal and converge."""
        t = self.topology
        started = time.monotonic()
        t.wait_converged(self.converge_s)
        leader = t.leader()
        assert leader is not None
        others = sorted(n for n in SITES if n != leader)
        roles = dict(zip(ROLES, [leader, *others]))
        schedule = draw_schedule(seed, steps, max_down)
        result = ScheduleResult(seed, roles, [s.describe(roles) for s in schedule])
        acknowledged = list(t.members)
        self._double = {name: int(item.get("double_controller") or 0) for name, item in t.sim_items().items()}
        self._reset_heard()
        self._seen = set()
        for index, step in enumerate(schedule):
            self._play(step, roles, index, result)
        self._finish(acknowledged, len(schedule), result)
        result.leader_after = t.leader()
        result.seconds = round(time.monotonic() - started, 1)
        return result

    def _play(self, step: Step, roles: dict[str, str], index: int, result: ScheduleResult) -> None:
        t = self.topology
        site = roles[step.site]
        other = roles[step.other] if step.other else None
        if step.kind == "kill":
            was_leader = t.leader() == site
            t.kill(site)
            killed_at = time.monotonic()
            self._reset_heard()
            if was_leader:
                result.failovers.append(self._watch_failover(site, killed_at, index, result))
                return
        elif step.kind == "restart":
            t.restart(site)
            t.give_sysadmin_password()
        elif step.kind == "cut":
            t.cut(site, other, step.both)  # type: ignore[arg-type]
        elif step.kind == "heal":
            t.heal(site, other, step.both)  # type: ignore[arg-type]
        elif step.kind == "block":
            t.block(site)
        elif step.kind == "unblock":
            t.unblock(site)
        elif step.kind == "isolate":
            t.isolate(site)
        self._reset_heard()
        self._watch(self.settle_s, index, result)

    def _watch(self, seconds: float, index: int, result: ScheduleResult) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self._check(index, result)
            if time.monotonic() >= deadline:
                return
            time.sleep(self.poll_s)

    def _watch_failover(self, leader: str, killed_at: float, index: int, result: ScheduleResult) -> Failover:
        t = self.topology
        while time.monotonic() - killed_at < self.failover_wait_s:
            shown = self._check(index, result)
            for name in t.living():
                if name != leader and t.managed_online_on(name, shown):
                    return Failover(leader, round(time.monotonic() - killed_at, 2), name)
            time.sleep(self.poll_s)
        return Failover(leader, None)

    # --- the checks ------------------------------------------------------------------------

    def _reset_heard(self) -> None:
        """Re-derive which pairs of sites hear each other now, keeping the time of those that
        already did."""
        t = self.topology
        now = time.monotonic()
        living = set(t.living())
        current: dict[frozenset[str], float] = {}
        for a in SITES:
            for b in SITES:
                if a < b and {a, b} <= living and (a, b) not in t.cut_links and (b, a) not in t.cut_links:
                    current[frozenset((a, b))] = self._heard_since.get(frozenset((a, b)), now)
        self._heard_since = current

    def _check(self, index: int, result: ScheduleResult) -> dict[str, dict[str, dict]]:
        t = self.topology
        try:
            items = t.sim_items()
        except httpx.HTTPError as exc:
            result.violations.append(Violation(result.seed, index, f"the simulator did not answer: {exc}"))
            return {}
        for name, item in items.items():
            if "double_controller" in item:
                result.witness_fields = True
            count = int(item.get("double_controller") or 0)
            if count > self._double.get(name, 0):
                result.double_controller += count - self._double.get(name, 0)
                result.violations.append(Violation(result.seed, index, (
                    f"{name} obeyed two sites at one epoch ({count} times so far; obeys "
                    f"{t.by_uuid(item.get('system_controller'))})")))
            self._double[name] = count
        shown = t.shown()
        now = time.monotonic()
        for member, sites in t.managers(shown).items():
            for i, a in enumerate(sites):
                for b in sites[i + 1:]:
                    since = self._heard_since.get(frozenset((a, b)))
                    key = (member, a, b)
                    if since is not None and now - since > self.grace_s and key not in self._seen:
                        self._seen.add(key)  # once per schedule and pair, not once per poll
                        result.violations.append(Violation(result.seed, index, (
                            f"{member} is shown managed by {a} and {b}, which have heard each other for "
                            f"{now - since:.0f}s")))
        return shown

    def _finish(self, acknowledged: list[str], index: int, result: ScheduleResult) -> None:
        """Heal everything, restart the dead, and check every acknowledged subcloud: it exists
        on some site, exactly one site manages it, it obeys that site; and the group has one
        leader (two sites each keeping part of it is a *split*, which the race between two
        survivors must not leave)."""
        t = self.topology
        t.heal_all()
        t.give_sysadmin_password()
        self._reset_heard()
        try:
            t.wait_converged(self.converge_s)
            return
        except AssertionError as exc:
            reason = str(exc)
        before = len(result.violations)
        self._check(index, result)
        shown = t.shown()
        managers = t.managers(shown)
        items = t.sim_items()
        held = {name for subclouds in shown.values() for name in subclouds}
        result.lost = [name for name in acknowledged if name not in held]
        for name in result.lost:
            result.violations.append(Violation(result.seed, index, f"{name} exists on no site"))
        for name in acknowledged:
            sites = managers.get(name, [])
            obeys = t.by_uuid(items.get(name, {}).get("system_controller"))
            if name in result.lost:
                continue
            if not sites:
                result.unmanaged.append(name)
                result.violations.append(Violation(result.seed, index, f"no site manages {t.describe(name, shown)}"))
            elif len(sites) > 1:
                result.violations.append(Violation(result.seed, index, f"two sites manage {t.describe(name, shown)}"))
            elif obeys != sites[0]:
                result.violations.append(Violation(result.seed, index, f"{sites[0]} manages {name} but it obeys {obeys}"))
        owners = {sites[0] for sites in managers.values() if len(sites) == 1}
        if len(owners) > 1:
            result.split = sorted(owners)
            counts = {o: sum(1 for sites in managers.values() if sites == [o]) for o in sorted(owners)}
            result.violations.append(Violation(result.seed, index, f"pg1 split between leaders {counts}"))
        if len(result.violations) == before:
            result.violations.append(Violation(result.seed, index, reason))  # e.g. a peer never available again
