"""Long id lists cut into statements of a size every database accepts."""

from __future__ import annotations

from collections.abc import Iterable


def chunks(items: list, size: int = 500) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
