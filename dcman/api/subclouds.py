"""/v1.0/subclouds and /v1.0/alarms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from dcman.api import views
from dcman.api.auth import from_peer
from dcman.api.bodies import read_body
from dcman.api.commands.subclouds import (
    ADD_FORM_SCHEMA,
    SUBCLOUD_UPDATE_FORM_SCHEMA,
    SUBCLOUD_UPDATE_SCHEMA,
    new_subcloud,
    subcloud_update,
)
from dcman.api.responses import reads, writes
from dcman.api.state import site_context
from dcman.domain import listing
from dcman.domain.listing import is_list_query, parse_alarm_limit, parse_subcloud_query
from dcman.domain.states import AvailabilityStatus, DeployStatus, ManagementState
from dcman.domain.commands import NetworkReconfiguration
from dcman.services import overview, peer_requests, subcloud_ops, subclouds
from dcman.services.context import SiteContext

router = APIRouter(tags=["subclouds"])

@router.get("/subclouds", response_model=None,
            responses=reads(views.SubcloudListing | views.SubcloudPage, 400, 404))
async def list_subclouds(
    request: Request, ctx: SiteContext = Depends(site_context),
    limit: str | None = Query(None, description="dcman: page size, 1-1000", json_schema_extra=listing.LIMIT),
    offset: str | None = Query(None, description="dcman: subclouds to skip, in id order",
                               json_schema_extra=listing.OFFSET),
    name: str | None = Query(None, description="dcman: part of the name, any case", json_schema_extra=listing.TEXT),
    availability: str | None = Query(None, description="dcman: online or offline",
                                     json_schema_extra=listing.choices(AvailabilityStatus)),
    management: str | None = Query(None, description="dcman: managed or unmanaged",
                                   json_schema_extra=listing.choices(ManagementState)),
    deploy_status: str | None = Query(None, description="dcman: a deploy status",
                                      json_schema_extra=listing.choices(DeployStatus)),
    group: str | None = Query(None, description="dcman: subcloud group id or name", json_schema_extra=listing.TEXT),
    peer_group: str | None = Query(None, description="dcman: peer group id or name, or none",
                                   json_schema_extra=listing.TEXT),
) -> Any:
    """Every subcloud, as the reference lists them; with any of dcman's parameters, one page of
    those matching every filter, in id order, and `total`, how many match."""
    listing.refuse_unknown(request.query_params, listing.QUERY_PARAMS)
    if not is_list_query(request.query_params):
        return Response(await subclouds.list_subclouds_json(ctx, with_rollup=True), media_type="application/json")
    page = await overview.search_subclouds(ctx, parse_subcloud_query(request.query_params))
    return {"subclouds": [views.subcloud(view, with_rollup=True) for view in page.subclouds], "total": page.total}


@router.post("/subclouds", response_model=None, responses=writes(views.SubcloudBody, 409, 413),
             openapi_extra={"requestBody": {
    "required": True, "content": {"multipart/form-data": {"schema": ADD_FORM_SCHEMA}}}})
async def add_subcloud(request: Request, ctx: SiteContext = Depends(site_context),
                       peer: bool = Depends(from_peer)) -> dict[str, Any]:
    command = new_subcloud(await read_body(request))
    view = await (peer_requests.add_copy(ctx, command) if peer else subclouds.add_subcloud(ctx, command))
    return views.subcloud(view)


@router.get("/subclouds/{subcloud_ref}", response_model=None, responses=reads(views.SubcloudBody, 400, 404))
async def show_subcloud(subcloud_ref: str, ctx: SiteContext = Depends(site_context),
                        peer: bool = Depends(from_peer)) -> dict[str, Any]:
    return views.subcloud(await (peer_requests.show_copy(ctx, subcloud_ref) if peer
                                 else subclouds.get_subcloud(ctx, subcloud_ref)))


@router.get("/subclouds/{subcloud_ref}/detail", response_model=None,
            responses=reads(views.SubcloudDetail, 400, 404))
async def show_subcloud_detail(subcloud_ref: str, ctx: SiteContext = Depends(site_context),
                               peer: bool = Depends(from_peer)) -> dict[str, Any]:
    return views.subcloud(await (peer_requests.show_copy(ctx, subcloud_ref) if peer
                                 else subclouds.get_subcloud(ctx, subcloud_ref)), detail=True)


@router.patch("/subclouds/{subcloud_ref}", response_model=None,
              responses=writes(views.SubcloudBody, 404, 409, 413, 422), openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": SUBCLOUD_UPDATE_SCHEMA},
                                  "multipart/form-data": {"schema": SUBCLOUD_UPDATE_FORM_SCHEMA}}}})
async def update_subcloud(subcloud_ref: str, request: Request, ctx: SiteContext = Depends(site_context),
                          peer: bool = Depends(from_peer)) -> dict[str, Any]:
    # With management network fields it is a network reconfiguration (services/subcloud_ops).
    update = subcloud_update(await read_body(request))
    if isinstance(update, NetworkReconfiguration):
        view = await (peer_requests.reconfigure_copy_network(ctx, subcloud_ref, update) if peer
                      else subcloud_ops.reconfigure_network(ctx, subcloud_ref, update))
    else:
        view = await (peer_requests.update_copy(ctx, subcloud_ref, update) if peer
                      else subclouds.update_subcloud(ctx, subcloud_ref, update))
    return views.subcloud(view)


@router.delete("/subclouds/{subcloud_ref}", response_class=Response, responses=writes(None, 404, 422))
async def delete_subcloud(subcloud_ref: str, ctx: SiteContext = Depends(site_context),
                          peer: bool = Depends(from_peer)) -> Response:
    await (peer_requests.delete_copy(ctx, subcloud_ref) if peer else subclouds.delete_subcloud(ctx, subcloud_ref))
    return Response(status_code=200)


@router.get("/alarms", tags=["alarms"], response_model=None, responses=reads(views.AlarmSummaryList))
async def alarm_summary(ctx: SiteContext = Depends(site_context)) -> Response:
    return Response(await subclouds.alarm_summary_json(ctx), media_type="application/json")


@router.get("/fault-alarms", tags=["alarms"], response_model=None, responses=reads(views.FaultAlarmList, 400, 404))
async def fault_alarms(request: Request, alarm_id: str | None = None, entity: str | None = None,
                       subcloud: str | None = Query(None, description="a subcloud's id or name: its alarms"),
                       limit: str | None = Query(None, description="at most this many, the newest first",
                                                 json_schema_extra=listing.LIMIT),
                       ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    """The site's active alarms (dcman's addition), filtered by alarm id, entity or subcloud."""
    listing.refuse_unknown(request.query_params, listing.ALARM_PARAMS)
    found = await subclouds.fault_alarms(ctx, alarm_id, entity, subcloud, parse_alarm_limit(limit))
    return {"alarms": [views.fault_alarm(row) for row in found]}
