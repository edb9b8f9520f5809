"""Throttling of repeated wrong passwords: per account and client, a few free tries, then a
wait that doubles with each further failure, forgotten at the first success."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

FREE_FAILURES = 3
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 300.0
# Names and addresses are the attacker's to choose: the table is bounded, oldest dropped first.
MAX_TRACKED = 10_000


@dataclass
class _Failures:
    count: int
    blocked_until: float
    last: float


class LoginThrottle:
    """What one process remembers of recent wrong passwords; `now` is a monotonic clock."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    @staticmethod
    def key(account: str, client: str) -> tuple[str, str]:
        return account.lower(), client

    def wait(self, key: tuple[str, str], now: float) -> int:
        """Whole seconds this client must still wait before trying this account again (0: go)."""
        found = self._seen.get(key)
        if found is None or found.blocked_until <= now:
            return 0
        return max(1, math.ceil(found.blocked_until - now))

    def failed(self, key: tuple[str, str], now: float) -> None:
        found = self._seen.pop(key, None) or _Failures(0, 0.0, now)
        if now - found.last > 2 * MAX_WAIT_S:  # long quiet: start over
            found = _Failures(0, 0.0, now)
        found.count += 1
        found.last = now
        beyond = found.count - FREE_FAILURES
        if beyond > 0:
            found.blocked_until = now + min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (beyond - 1))
        self._seen[key] = found
        while len(self._seen) > MAX_TRACKED:
            self._seen.popitem(last=False)

    def succeeded(self, key: tuple[str, str]) -> None:
        self._seen.pop(key, None)
