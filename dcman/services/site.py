"""Site start-up: schema, identity and the bootstrap administrator."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dcman.db import repository as repo
from dcman.db.engine import migrate


async def prepare_database(engine: AsyncEngine, site_name: str) -> dict:
    """Migrate the schema and make sure the site has its identity (a UUID kept forever)."""
    await migrate(engine)
    try:
        async with engine.begin() as conn:
            if await repo.get_site(conn) is None:
                await repo.insert_site(conn, site_name)
            else:
                await repo.rename_site(conn, site_name)
    except IntegrityError:  # a second process inserted it first
        pass
    async with engine.connect() as conn:
        site = await repo.get_site(conn)
    assert site is not None
    return site


async def site_identity(engine: AsyncEngine) -> dict[str, str]:
    """What another site needs to register this one as a system peer."""
    async with engine.connect() as conn:
        site = await repo.get_site(conn)
    assert site is not None
    return {"uuid": site["uuid"], "name": site["name"]}
