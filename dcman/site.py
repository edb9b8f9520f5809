"""The composition root of a site: start-up (a private data directory, schema, identity, the
secret key and the bootstrap administrator, then the context every use case and loop is
given), the background loops started and stopped in order, and the API mounted on it all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dcman.db import site as site_db
from dcman.db import subclouds as subclouds_db
from dcman.db.engine import create_engine, migrate
from dcman.api.app import create_app
from dcman.cluster import loop as cluster
from dcman.cluster.coordination import coordination_for, keeper_for
from dcman.cluster.membership import Membership
from dcman.config import Settings
from dcman.domain.cluster import Role
from dcman.domain.network import parse_system_controller_network
from dcman.drivers.agent_client import AgentClient
from dcman.loops import association_sync, audit, backup, deploy, failover, migration, peer_monitor, subcloud_ops
from dcman.services import accounts
from dcman.services.context import SiteContext
from dcman.services.secrets import SecretBox, WrongSecretKey
from dcman.services.subcloud_files import OLD_LOGS_DIR, move_old_layout

log = logging.getLogger("dcman")

KEY_CHECK_TEXT = "dcman: the secret key of this site"


# What dcman keeps in its data directory; nothing else there is touched (the directory may be
# set to a shared place by mistake, and a recursive chmod of it would break the host).
OWN_FILES = ("dcman.sqlite", "dcman.sqlite-wal", "dcman.sqlite-shm", "dcman.sqlite-journal", "secret.key")
OWN_TREES = ("subclouds", "logs")


def make_private(data_dir: Path) -> None:
    """The data directory holds the database, the key and the deploy logs: only the site's user
    may read them. The umask makes every file the process creates 0600 (directories 0700), and
    what an older release left readable is tightened."""
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    owned = [data_dir, *(data_dir / name for name in OWN_FILES)]
    for tree in OWN_TREES:
        if (data_dir / tree).is_dir() and not (data_dir / tree).is_symlink():
            owned += [data_dir / tree, *(data_dir / tree).rglob("*")]
    for path in owned:
        if not path.exists() or path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != mode & 0o700:
            path.chmod(mode & 0o700)


async def prepare_database(engine: AsyncEngine, site_name: str) -> dict:
    """Migrate the schema and make sure the site has its identity (a UUID kept forever)."""
    await migrate(engine)
    try:
        async with engine.begin() as conn:
            if await site_db.get_site(conn) is None:
                await site_db.insert_site(conn, site_name)
            else:
                await site_db.rename_site(conn, site_name)
    except IntegrityError:  # a second process inserted it first
        pass
    async with engine.connect() as conn:
        site = await site_db.get_site(conn)
    assert site is not None
    return site


async def check_secret_key(engine: AsyncEngine, secrets: SecretBox, settings: Settings) -> None:
    """Refuse a key that cannot read the database's secrets now, rather than fail every deploy
    later. The first process stores a check value encrypted with its key; on a database from
    before the check, only once its key has read a stored secret, if there is one."""
    async with engine.begin() as conn:
        token = await site_db.get_secret_key_check(conn)
        if token is None:
            stored = await site_db.a_stored_secret(conn)
            if stored is not None and not secrets.reads(stored):
                raise WrongSecretKey(_wrong_key(settings))
            await site_db.set_secret_key_check(conn, secrets.encrypt(KEY_CHECK_TEXT))
            token = await site_db.get_secret_key_check(conn)  # another process's, if it stored one first
    if token is None or not secrets.reads(token):
        raise WrongSecretKey(_wrong_key(settings))


def _wrong_key(settings: Settings) -> str:
    if settings.secret_key:
        where = "DCMAN_SECRET_KEY is not the key"
    else:
        where = (f"DCMAN_SECRET_KEY is not set and this process's key file {settings.data_dir / 'secret.key'} "
                 "is not the key")
    return (f"{where} the secrets in this site's database were encrypted with; every process of a site "
            "must be given the site's DCMAN_SECRET_KEY.")


async def start_site(settings: Settings) -> SiteContext:
    """Open the database, migrate it, and make sure the site identity and admin exist."""
    make_private(settings.data_dir)
    engine = create_engine(settings.effective_database_url)
    site = await prepare_database(engine, settings.site_name)
    secrets = SecretBox.for_site(settings.secret_key, settings.data_dir)
    try:
        await check_secret_key(engine, secrets, settings)  # before the administrator or any loop
    except WrongSecretKey:
        await engine.dispose()
        raise
    async with engine.connect() as conn:
        regions = await subclouds_db.region_ids(conn) if (settings.data_dir / OLD_LOGS_DIR).is_dir() else {}
    if regions:
        await asyncio.to_thread(move_old_layout, settings.data_dir, regions)
    generated = await accounts.ensure_bootstrap_admin(engine, settings.admin_user, settings.admin_password)
    if generated:
        print(
            f"dcman: created administrator {settings.admin_user!r} with password {generated!r}; "
            "this is shown once, keep it.",
            file=sys.stderr,
            flush=True,
        )
    return SiteContext(
        settings=settings,
        engine=engine,
        secrets=secrets,
        system_controller=parse_system_controller_network(
            settings.system_controller_subnet, settings.system_controller_pool
        ),
        # It reads the subclouds' CA file: in a thread, once.
        agents=await asyncio.to_thread(AgentClient.for_site, settings, site_uuid=site["uuid"]),
        site_uuid=site["uuid"],
    )


@contextlib.asynccontextmanager
async def running_loops(ctx: SiteContext) -> AsyncIterator[None]:
    """Run the background loops of this process's roles while the context is entered: the
    process joins the registry first, the cluster loop (leases, singletons) starts last and
    stops first, so that no lease is held before the loops that drain it are in place and
    none is claimed while they stop."""
    roles = ctx.settings.role_set
    tasks: list[asyncio.Task] = []
    membership = Membership(ctx, roles)
    coordination = coordination_for(ctx)
    keeper = keeper_for(ctx, membership)
    await membership.join()
    if keeper is not None:
        keeper.start()
        tasks.append(asyncio.create_task(keeper.watch_loop(), name="loop-watch"))
    if Role.DEPLOY in roles:
        tasks.append(asyncio.create_task(deploy.run(ctx), name="deploy"))
        tasks.append(asyncio.create_task(backup.run(ctx), name="backup"))
        tasks.append(asyncio.create_task(subcloud_ops.run(ctx), name="operations"))
    if Role.AUDIT in roles:
        tasks.append(asyncio.create_task(audit.run(ctx), name="audit"))
    # The loops that must run in one process of the site: led through advisory locks.
    singletons: dict[str, cluster.Singleton] = {
        "peer-monitor": peer_monitor.run, "association-sync": association_sync.run,
        "migration": migration.run, "failover": failover.run} if Role.PEERS in roles else {}
    # Last, so that the audit and deploy loops registered their drainers before any lease is held.
    tasks.append(asyncio.create_task(cluster.run(ctx, membership, coordination, singletons), name="cluster"))
    try:
        yield
    finally:
        tasks[-1].cancel()  # the cluster loop first: singletons stop, no new claims
        await asyncio.gather(tasks[-1], return_exceptions=True)
        if keeper is not None:
            await asyncio.to_thread(keeper.stop)  # it joins the keeper's thread: not on the loop
        try:
            await membership.leave()
        except Exception:  # the leases then expire by themselves
            log.exception("leaving the process registry failed")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await coordination.close()


def site_app(settings: Settings, ctx: SiteContext | None = None, run_loops: bool = True) -> FastAPI:
    """The site's ASGI app: the API, with a lifespan that starts the site (unless `ctx` is
    one the caller started: ``dcman serve`` starts it first so that a start-up failure is
    reported before the server listens) and runs its loops."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal ctx
        if ctx is None:
            ctx = await start_site(settings)
        app.state.ctx = ctx
        try:
            if run_loops:
                async with running_loops(ctx):
                    yield
            else:
                yield
        finally:
            await ctx.engine.dispose()

    return create_app(settings, lifespan)
