"""When the deploy loop looks again at a running phase (domain.deploy.next_look_s)."""

from __future__ import annotations

import pytest

from dcman.domain.deploy import MIN_POLL_S, POLL_S, Look, next_look_s


def test_a_phase_near_its_end_is_looked_at_when_it_should_end() -> None:
    # 1 s phase, seen at 60 % after 0.6 s: it ends in 0.4 s, looked at just after.
    wait = next_look_s(Look(10.0, 0), Look(10.6, 60))
    assert wait == pytest.approx(0.4 + MIN_POLL_S)


def test_a_long_phase_is_looked_at_every_poll_period() -> None:
    # An install at 10 % after 10 minutes: the next look is POLL_S away, not 90 minutes.
    assert next_look_s(Look(0.0, 0), Look(600.0, 10)) == POLL_S


def test_a_phase_without_pace_waits_the_poll_period() -> None:
    assert next_look_s(Look(5.0, 40), Look(6.0, 40)) == POLL_S  # no progress since
    assert next_look_s(Look(5.0, 40), Look(6.0, 20)) == POLL_S  # progress went back (another run)
    assert next_look_s(Look(5.0, 0), Look(5.0, 30)) == POLL_S   # no time between the looks


def test_a_phase_behind_its_pace_is_not_polled_in_a_spin() -> None:
    # At 99 % (a timed phase shows 99 until it is over), or an agent claiming more than 100 %.
    assert next_look_s(Look(0.0, 0), Look(1.0, 99)) == pytest.approx(1 / 99 + MIN_POLL_S)
    assert next_look_s(Look(0.0, 0), Look(1.0, 500)) == MIN_POLL_S
