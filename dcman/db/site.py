"""The site row: its identity and the check value of its secret key."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.clock import utcnow

async def get_site(conn: AsyncConnection) -> dict[str, Any] | None:
    row = (await conn.execute(select(t.site).where(t.site.c.id == 1))).mappings().first()
    return dict(row) if row else None


async def insert_site(conn: AsyncConnection, name: str) -> None:
    await conn.execute(insert(t.site).values(id=1, uuid=str(uuid.uuid4()), name=name, created_at=utcnow()))


async def rename_site(conn: AsyncConnection, name: str) -> None:
    await conn.execute(update(t.site).where(t.site.c.id == 1).values(name=name))


async def get_secret_key_check(conn: AsyncConnection) -> str | None:
    return (await conn.execute(select(t.site.c.secret_key_check).where(t.site.c.id == 1))).scalar()


async def set_secret_key_check(conn: AsyncConnection, token: str) -> None:
    """Store the check value, unless another process stored one first."""
    site = t.site.c
    await conn.execute(update(t.site).where(site.id == 1, site.secret_key_check.is_(None))
                       .values(secret_key_check=token))


async def a_stored_secret(conn: AsyncConnection) -> str | None:
    """One secret the site stored encrypted (a subcloud's or a system peer's password), if any."""
    s = t.subclouds.c
    for query in (select(s.sysadmin_password).where(s.sysadmin_password.is_not(None)).limit(1),
                  select(s.bmc_password).where(s.bmc_password.is_not(None)).limit(1),
                  select(t.system_peers.c.manager_password).limit(1)):
        found = (await conn.execute(query)).scalar()
        if found:
            return found
    return None

