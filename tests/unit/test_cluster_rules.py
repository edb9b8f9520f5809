"""The scale-out rules: roles, fair shares and which shards a process gives back."""

from __future__ import annotations

import pytest

from dcman.domain.cluster import (
    SHARDS,
    LeaseTiming,
    Role,
    fair_share,
    parse_roles,
    spread,
    surplus,
)
from dcman.domain.errors import InvalidInput


def test_roles_are_parsed_in_a_fixed_order_and_unknown_ones_refused() -> None:
    assert parse_roles("peers, api") == (Role.API, Role.PEERS)
    assert parse_roles("api,audit,deploy,peers") == tuple(Role)
    with pytest.raises(InvalidInput, match="Unknown role 'dashboard'"):
        parse_roles("api,dashboard")
    with pytest.raises(InvalidInput, match="at least one role"):
        parse_roles(" , ")


@pytest.mark.parametrize("workers, share", [(0, 64), (1, 64), (2, 32), (3, 22), (64, 1), (100, 1)])
def test_the_fair_share_covers_every_shard(workers: int, share: int) -> None:
    assert fair_share(workers) == share
    assert fair_share(workers) * max(1, workers) >= SHARDS


def test_a_process_gives_back_only_above_its_share_and_only_when_someone_is_short() -> None:
    held = set(range(SHARDS))
    given = surplus(held, 22, someone_short=True)
    assert len(given) == 42 and given < held
    assert surplus(held, 22, someone_short=False) == set()
    assert surplus(set(range(10)), 22, someone_short=True) == set()


def test_the_claim_order_spreads_consecutive_shards_over_the_processes() -> None:
    assert sorted(spread(s) for s in range(SHARDS)) == list(range(SHARDS))
    kept = set(range(SHARDS)) - surplus(set(range(SHARDS)), 22, someone_short=True)
    # A process keeping 22 shards keeps about a third of the first 30 ids, not the first 22.
    assert 7 <= len(kept & set(range(1, 31))) <= 13


def test_a_dead_process_is_noticed_and_its_leases_expire_within_one_lease_period() -> None:
    timing = LeaseTiming(15.0)
    assert timing.ttl + timing.tick <= 15.0
    assert timing.tick < timing.ttl
