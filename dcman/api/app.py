"""The API of a site: routers, middleware and error handling (the site itself, its loops and
their lifespan are dcman.site's)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from typing_extensions import TypedDict

from dcman import __version__
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
from dcman.services.context import SiteContext
from dcman.services.system_peers import site_identity

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


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


def create_app(settings: Settings, lifespan: Lifespan | None = None) -> FastAPI:
    """The site's API: routers, middleware and error handling. The site's composition root
    (dcman.site) gives the lifespan that starts the site and puts its context in `app.state.ctx`."""
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
        return await site_identity(ctx)

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
