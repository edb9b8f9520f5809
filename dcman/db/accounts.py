"""Operator accounts and their tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import tables as t
from dcman.db.clock import utcnow

async def get_account(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(t.accounts).where(t.accounts.c.name == name))).mappings().first()
    return dict(row) if row else None


async def list_accounts(conn: AsyncConnection) -> list[dict[str, Any]]:
    query = select(t.accounts.c.id, t.accounts.c.name, t.accounts.c.role, t.accounts.c.created_at)
    return [dict(row) for row in (await conn.execute(query.order_by(t.accounts.c.id))).mappings()]


async def insert_account(conn: AsyncConnection, name: str, password_hash: str, role: str) -> int:
    result = await conn.execute(
        insert(t.accounts).values(name=name, password_hash=password_hash, role=role, created_at=utcnow())
    )
    return result.inserted_primary_key[0]


async def delete_account(conn: AsyncConnection, account_id: int) -> None:
    await conn.execute(delete(t.tokens).where(t.tokens.c.account_id == account_id))
    await conn.execute(delete(t.accounts).where(t.accounts.c.id == account_id))


async def count_admins(conn: AsyncConnection) -> int:
    query = select(func.count()).select_from(t.accounts).where(t.accounts.c.role == "admin")
    return (await conn.execute(query)).scalar_one()


async def insert_token(conn: AsyncConnection, digest: str, account_id: int, issued_at: datetime,
                       expires_at: datetime, parent_digest: str | None = None) -> None:
    await conn.execute(
        insert(t.tokens).values(digest=digest, account_id=account_id, issued_at=issued_at, expires_at=expires_at,
                                parent_digest=parent_digest)
    )


async def get_token(conn: AsyncConnection, digest: str) -> dict[str, Any] | None:
    a, k = t.accounts.c, t.tokens.c
    query = (
        select(k.digest, k.issued_at, k.expires_at, a.id.label("account_id"), a.name, a.role)
        .select_from(t.tokens.join(t.accounts, k.account_id == a.id))
        .where(k.digest == digest)
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def delete_token(conn: AsyncConnection, digest: str) -> None:
    """Delete a token and every token made from it, at any remove."""
    family, frontier = {digest}, [digest]
    while frontier:
        children = select(t.tokens.c.digest).where(t.tokens.c.parent_digest.in_(frontier))
        frontier = [d for d in (await conn.execute(children)).scalars() if d not in family]
        family.update(frontier)
    await conn.execute(delete(t.tokens).where(t.tokens.c.digest.in_(family)))


async def delete_expired_tokens(conn: AsyncConnection, now: datetime) -> None:
    await conn.execute(delete(t.tokens).where(t.tokens.c.expires_at < now))
