"""The ASGI application of a site: routers, error handling, and the lifespan that prepares
the database and runs the background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from typing_extensions import TypedDict

from dcman import __version__
from dcman.db import subclouds as subclouds_db
from dcman.db.engine import create_engine
from dcman.api import backup as backup_api
from dcman.api import deploy as deploy_api
from dcman.api import subcloud_ops as subcloud_ops_api
from dcman.api import (
    associations,
    errors,
    groups,
    identity,
    overview,
    peer_groups,
    processes,
    subclouds,
    system_peers,
    ui,
    unimplemented,
)
from dcman.api import metrics as metrics_api
from dcman.api.auth import authenticated
from dcman.api.limits import BodyLimit
from dcman.api.openapi import declared_openapi
from dcman.api.responses import answers, reads
from dcman.api.slashes import TrailingSlash
from dcman.api.state import site_context
from dcman.config import Settings
from dcman.domain.cluster import Role
from dcman.domain.network import parse_system_controller_network
from dcman.loops import association_sync, audit, cluster, deploy, migration, peer_monitor, subcloud_ops
from dcman.loops import backup as backup_loop
from dcman.services import accounts
from dcman.services.context import SiteContext
from dcman.services.coordination import coordination_for, keeper_for
from dcman.services.membership import Membership
from dcman.services.secrets import SecretBox, WrongSecretKey
from dcman.services.site import check_secret_key, make_private, prepare_database, site_identity
from dcman.services.subcloud_files import OLD_LOGS_DIR, move_old_layout

log = logging.getLogger("dcman")


class Link(TypedDict):
    href: str
    rel: str


class Version(TypedDict):
    status: str
    updated: str
    id: str
    links: list[Link]


class Versions(TypedDict):
    versions: list[Version]


class SiteIdentity(TypedDict):
    uuid: str
    name: str


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
        site_uuid=site["uuid"],
    )


def create_app(settings: Settings, ctx: SiteContext | None = None, run_loops: bool = True) -> FastAPI:
    """The site's app; `ctx` is a site already started by the caller (``dcman serve`` starts
    it first so that a start-up failure is reported before the server listens)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal ctx
        if ctx is None:
            ctx = await start_site(settings)
        app.state.ctx = ctx
        roles = settings.role_set
        tasks: list[asyncio.Task] = []
        membership = Membership(ctx, roles)
        coordination = coordination_for(ctx)
        keeper = keeper_for(ctx, membership) if run_loops else None
        if run_loops:
            await membership.join()
            if keeper is not None:
                keeper.start()
                tasks.append(asyncio.create_task(keeper.watch_loop(), name="loop-watch"))
            if Role.DEPLOY in roles:
                tasks.append(asyncio.create_task(deploy.run(ctx), name="deploy"))
                tasks.append(asyncio.create_task(backup_loop.run(ctx), name="backup"))
                tasks.append(asyncio.create_task(subcloud_ops.run(ctx), name="operations"))
            if Role.AUDIT in roles:
                tasks.append(asyncio.create_task(audit.run(ctx), name="audit"))
            # The loops that must run in one process of the site: led through advisory locks.
            singletons: dict[str, cluster.Singleton] = {
                "peer-monitor": peer_monitor.run, "association-sync": association_sync.run,
                "migration": migration.run} if Role.PEERS in roles else {}
            # Last, so that the audit and deploy loops registered their drainers before any lease is held.
            tasks.append(asyncio.create_task(cluster.run(ctx, membership, coordination, singletons), name="cluster"))
        try:
            yield
        finally:
            if tasks:
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
            await ctx.engine.dispose()

    app = FastAPI(title="dcman", version=__version__, lifespan=lifespan,
                  description="A geo-redundant Distributed Cloud manager (dcmanager v1.0 API).")
    errors.install(app)
    app.add_middleware(BodyLimit)  # inside the metrics: a refused body is counted
    app.add_middleware(metrics_api.RequestMetrics)
    app.add_middleware(TrailingSlash)  # outermost: the metrics see the path the router answers

    @app.get("/", tags=["versions"], response_model=None, responses=answers(Versions))
    async def versions(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"versions": [{"status": "CURRENT", "updated": "2017-10-2", "id": "v1.0",
                              "links": [{"href": f"{base}/v1.0/", "rel": "self"}]}]}

    v1 = APIRouter(prefix="/v1.0", dependencies=[Depends(authenticated)])

    @v1.get("/system", tags=["system"], response_model=None, responses=reads(SiteIdentity))
    async def system(ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
        return await site_identity(ctx.engine)

    v1.include_router(subclouds.router)
    v1.include_router(groups.router)
    v1.include_router(deploy_api.router)
    v1.include_router(backup_api.router)
    v1.include_router(subcloud_ops_api.router)
    v1.include_router(system_peers.router)
    v1.include_router(peer_groups.router)
    v1.include_router(associations.router)
    v1.include_router(overview.router)
    v1.include_router(processes.router)
    v1.include_router(unimplemented.router)  # last: a real route of the same path replaces its 501
    app.include_router(metrics_api.router)  # every process: a worker's audit figures are its own
    if Role.API in settings.role_set:  # a worker-only process answers only GET / and /metrics
        app.include_router(identity.router)
        app.include_router(ui.router)
        app.include_router(v1)
    app.openapi = lambda: declared_openapi(app)  # type: ignore[method-assign]
    return app
