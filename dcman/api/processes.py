"""/v1.0/processes: the dcman processes sharing this site's database (dcman's own addition)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from typing_extensions import TypedDict

from dcman.api.responses import reads
from dcman.api.state import site_context
from dcman.cluster.status import cluster_status
from dcman.services.context import SiteContext

router = APIRouter(prefix="/processes", tags=["processes"])


class Process(TypedDict):
    uuid: str
    host: str
    pid: int
    bind: str
    roles: list[str]
    alive: bool
    started_at: str
    heartbeat_at: str
    leases: dict[str, list[int]]
    leads: list[str]


class Processes(TypedDict):
    processes: list[Process]
    leaders: dict[str, str | None]
    shards: int
    unheld_shards: dict[str, int]
    lease_seconds: float
    this_process: str


@router.get("", response_model=None, responses=reads(Processes))
async def list_processes(ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return await cluster_status(ctx)
