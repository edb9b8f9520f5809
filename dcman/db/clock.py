"""The database's clock: timestamps as the tables store them."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Naive UTC, as stored (SQLite keeps no zone)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
