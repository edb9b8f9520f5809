"""Chaos at bench scale: random schedules of site kills, restarts and cuts over three sites.

The topology of tests/geo3.py (one `dcman sim`, site1/site2/site3 as `dcman serve` on SQLite,
a cuttable proxy on every directed site-to-site link, peer group pg1 of `--subclouds`
subclouds led by one site and associated with the two others) is started once and reused:
each schedule starts from a converged topology, plays `--steps` steps drawn from its own
seed (tests/chaos.py: kills, restarts, site-site cuts one way or both, site-subcloud cuts,
isolation), checks after every step and, once healed, at its end. Schedule i's seed is drawn
from `--seed`; `--replay SEED` plays that one schedule alone (on a fresh topology; steps
name sites by role, R0 the leader at the schedule's start, so it replays the same story).

One JSON line per schedule on stdout (its seed, steps, violations, failovers), then the
summary: schedules run, double-controller moments (must be 0), lost subclouds (must be 0),
violations, failover times p50/p99 of the leader kills (and how many saw no failover), and
the bound heartbeat interval × threshold + witness bound (3 audit intervals) + rehome time
(one phase).

    .venv/bin/python bench/chaos.py --schedules 200 --seed 1 --sites 3 --subclouds 20
    .venv/bin/python bench/chaos.py --replay 3735928559 --subclouds 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from chaos import Chaos, ScheduleResult  # noqa: E402
from geo3 import HEARTBEAT_INTERVAL_S, three_sites  # noqa: E402
from processes import log  # noqa: E402


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of `values`, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def line(result: ScheduleResult, index: int) -> dict:
    return {"schedule": index, "seed": result.seed, "roles": result.roles, "steps": result.steps,
            "violations": [str(v) for v in result.violations], "double_controller": result.double_controller,
            "lost": result.lost, "unmanaged": result.unmanaged, "split": result.split, "failovers": [{"leader": f.leader, "taken_by": f.taken_by, "seconds": f.seconds}
                                               for f in result.failovers],
            "leader_after": result.leader_after, "seconds": result.seconds,
            "load_avg_1m": round(os.getloadavg()[0], 1)}


def summary(results: list[ScheduleResult], chaos: Chaos, args: argparse.Namespace, notes: list[str],
            wall_s: float, repairs: list[str]) -> dict:
    kills = [f for r in results for f in r.failovers]
    times = [f.seconds for f in kills if f.seconds is not None]
    return {"measure": "chaos", "schedules": len(results), "asked": args.schedules, "steps": args.steps,
            "sites": args.sites, "subclouds": args.subclouds, "threshold": args.threshold,
            "audit_interval_s": args.audit_interval, "phase_seconds": args.phase_seconds,
            "double_controller_moments": sum(r.double_controller for r in results),
            "lost_subclouds": sum(len(r.lost) for r in results),
            "unmanaged_after_heal": sum(len(r.unmanaged) for r in results),
            "split_groups": sum(1 for r in results if r.split),
            "violations": sum(len(r.violations) for r in results),
            "violating_seeds": [r.seed for r in results if r.violations],
            "leader_kills": len(kills), "failovers": len(times), "no_failover": len(kills) - len(times),
            "failover_p50_s": percentile(times, 50), "failover_p99_s": percentile(times, 99),
            "failover_max_s": max(times) if times else None,
            "bound_s": chaos.failover_bound_s(),
            "bound_terms": f"{HEARTBEAT_INTERVAL_S} s x {args.threshold} + 3 x {args.audit_interval} s "
                           f"+ {args.phase_seconds} s",
            "witness_fields": any(r.witness_fields for r in results), "notes": notes, "repairs": repairs,
            "wall_s": round(wall_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1, help="draws every schedule's seed")
    parser.add_argument("--replay", type=int, help="play only the schedule of this seed")
    parser.add_argument("--sites", type=int, default=3, choices=[3], help="sites in the topology (3)")
    parser.add_argument("--subclouds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4, help="steps per schedule")
    parser.add_argument("--threshold", type=int, default=1, choices=[1, 2], help="heartbeat failure threshold")
    parser.add_argument("--audit-interval", type=float, default=1.0, help="DCMAN_AUDIT_INTERVAL of the sites")
    parser.add_argument("--phase-seconds", type=float, default=0.2, help="how long each simulated phase takes")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds watched after each step")
    parser.add_argument("--proxy-mode", choices=["drop", "reset"], default="drop", help="how a cut looks")
    parser.add_argument("--max-minutes", type=float, help="stop starting schedules after this long")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (kept anyway after a violation or a schedule that could not start)")
    args = parser.parse_args()

    seeds = [args.replay] if args.replay is not None else _seeds(args.seed, args.schedules)
    work = Path(tempfile.mkdtemp(prefix="dcman-chaos-"))
    started = time.monotonic()
    results: list[ScheduleResult] = []
    repairs: list[str] = []  # operator migrations the bench made to go on after a schedule left pg1 unconverged
    log(f"starting three sites and {args.subclouds} subclouds in {work}")
    with three_sites(work, subclouds=args.subclouds, threshold=args.threshold, audit_interval=args.audit_interval,
                     phase_seconds=args.phase_seconds, proxy_mode=args.proxy_mode) as topology:
        log(f"topology up: {topology.timings}")
        chaos = Chaos(topology, settle_s=args.settle)
        for index, seed in enumerate(seeds):
            if args.max_minutes is not None and time.monotonic() - started > args.max_minutes * 60:
                log(f"--max-minutes reached after {index} schedules")
                break
            try:
                result = chaos.run(seed, args.steps)
            except AssertionError as exc:  # the previous schedule left it unconverged
                log(f"schedule {index} (seed {seed}) could not start: {exc}")
                repairs.append(f"before schedule {index}: {topology.repair()}")
                log(f"repairing as an operator would: {repairs[-1]}")
                try:
                    topology.wait_converged(chaos.converge_s)
                    result = chaos.run(seed, args.steps)
                except AssertionError as again:
                    log(f"still not converged, stopping: {again}")
                    break
            results.append(result)
            print(json.dumps(line(result, index)), flush=True)
            log(f"schedule {index} seed {seed}: {'; '.join(result.steps)} -> "
                f"{len(result.violations)} violations, failovers "
                f"{[(f.taken_by, f.seconds) for f in result.failovers]}")
        print(json.dumps(summary(results, chaos, args, topology.notes, time.monotonic() - started, repairs)), flush=True)
    if args.keep or any(r.violations for r in results) or len(results) < len(seeds):
        log(f"work directory (sites' serve.log, sim.log) kept: {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _seeds(seed: int, count: int) -> list[int]:
    """Every schedule's seed, drawn from the bench's one seed."""
    rng = random.Random(seed)
    return [rng.randrange(2**32) for _ in range(count)]


if __name__ == "__main__":
    main()
