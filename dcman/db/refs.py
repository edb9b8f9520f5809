"""How objects are named in a request: by id or by name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false

MAX_ID = 2**31 - 1  # ids are 32-bit integer columns


def ref_clause(table: Any, ref: str) -> Any:
    """Objects are named by id or by name; names are never all digits, so digits mean an id."""
    if "\x00" in ref:  # no stored name holds NUL, and PostgreSQL refuses it in a query
        return false()
    if ref.isascii() and ref.isdigit():
        return table.c.id == int(ref) if int(ref) <= MAX_ID else false()
    return table.c.name == ref

