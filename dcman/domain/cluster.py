"""Scale-out rules: the roles a process plays, the shards subclouds are divided into, and
each worker's fair share of them (no I/O: the lease bookkeeping is in cluster/membership)."""

from __future__ import annotations

import math
from enum import StrEnum

from dcman.domain.errors import InvalidInput

# Subclouds are divided between worker processes in this many shards (shard = id mod SHARDS):
# enough for an even split over a few dozen processes, few enough to claim in one query.
SHARDS = 64


class Role(StrEnum):
    """What a `dcman serve` process does; a site needs each role in at least one process."""

    API = "api"  # the REST API (/v1.0, /v3)
    AUDIT = "audit"  # the availability audit of the subclouds of the audit shards it holds
    DEPLOY = "deploy"  # deploy and rehome phases of the subclouds of the deploy shards it holds
    PEERS = "peers"  # candidate for the singletons: peer monitor, association sync, migration


class LeaseKind(StrEnum):
    """The two kinds of shard lease; a process holds each kind only with that role."""

    AUDIT = "audit"
    DEPLOY = "deploy"


ALL_ROLES: tuple[Role, ...] = tuple(Role)
KIND_OF_ROLE: dict[Role, LeaseKind] = {Role.AUDIT: LeaseKind.AUDIT, Role.DEPLOY: LeaseKind.DEPLOY}


def parse_roles(text: str) -> tuple[Role, ...]:
    """`api,audit` → the roles; an empty or unknown name is refused with one sentence."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InvalidInput(f"Give at least one role among {', '.join(ALL_ROLES)}.")
    unknown = [name for name in names if name not in {r.value for r in ALL_ROLES}]
    if unknown:
        raise InvalidInput(f"Unknown role {unknown[0]!r}; roles are {', '.join(ALL_ROLES)}.")
    return tuple(r for r in ALL_ROLES if r.value in names)


def shard_of(subcloud_id: int) -> int:
    return subcloud_id % SHARDS


def spread(shard: int) -> int:
    """The order in which shards are claimed and given back: a permutation (37 is prime to
    SHARDS) that spreads a process's share over the id range, so that the first few
    hundred subclouds (consecutive ids) are divided between all the processes too."""
    return shard * 37 % SHARDS


def fair_share(live_workers: int, shards: int = SHARDS) -> int:
    """The most shards one of `live_workers` processes should hold: ceil(shards / workers)."""
    return math.ceil(shards / max(1, live_workers))


def surplus(held: set[int], fair: int, someone_short: bool) -> set[int]:
    """The shards to give back: those above the fair share, but only when another live worker
    holds fewer than its share (otherwise nobody would take them and they would go unworked)."""
    if len(held) <= fair or not someone_short:
        return set()
    return set(sorted(held, key=spread)[fair:])


class LeaseTiming:
    """The timing of leases for a lease period P (DCMAN_LEASE_SECONDS): every P/4 a process
    heartbeats and renews; a lease runs 3P/4 past its renewal and a process whose heartbeat
    is older than that is dead, so a dead process's shards are taken within P of its death."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self.tick = lease_seconds / 4
        self.ttl = 3 * self.tick
        # A dead process stays listed (alive: false) this long before its row is removed.
        self.forget_after = 10 * lease_seconds
