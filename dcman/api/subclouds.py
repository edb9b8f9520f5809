"""/v1.0/subclouds and /v1.0/alarms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from dcman.api import views
from dcman.api.auth import from_peer
from dcman.api.bodies import read_body
from dcman.api.responses import reads, writes
from dcman.api.state import site_context
from dcman.domain import listing
from dcman.domain.listing import is_list_query, parse_alarm_limit, parse_subcloud_query
from dcman.domain.states import AvailabilityStatus, DeployStatus, ManagementState
from dcman.domain.subcloud_ops import asks_network_reconfiguration
from dcman.services import overview, subcloud_ops, subclouds
from dcman.services.context import SiteContext

router = APIRouter(tags=["subclouds"])

_FILE = {"type": "string", "format": "binary"}
ADD_FORM_SCHEMA = {
    "type": "object",
    "required": ["bootstrap_values", "bootstrap-address", "sysadmin_password"],
    "properties": {
        "bootstrap_values": _FILE,
        "install_values": _FILE,
        "deploy_config": _FILE,
        "bootstrap-address": {"type": "string"},
        "sysadmin_password": {"type": "string", "description": "base64"},
        "bmc_password": {"type": "string", "description": "base64"},
        "group_id": {"type": "string"},
        "description": {"type": "string"},
        "location": {"type": "string"},
        "release": {"type": "string"},
        "migrate": {"type": "string", "enum": ["true", "false"]},
        "secondary": {"type": "string", "enum": ["true", "false"]},
        "region_name": {"type": "string"},
        "name": {"type": "string", "description": "migrate only: must be the bootstrap values' name"},
    },
}
UPDATE_SCHEMA = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "location": {"type": "string"},
        "group_id": {"type": ["string", "integer"]},
        "name": {"type": "string"},
        "management-state": {"type": "string", "enum": ["managed", "unmanaged"]},
        "force": {"type": ["string", "boolean"]},
        "peer_group": {"type": ["string", "integer"]},
        "install_values": {"type": ["object", "string"], "description": "YAML text or an object; §2.2 rules"},
        "bmc_password": {"type": "string", "description": "base64"},
        "bootstrap_values": {"type": ["object", "string"], "description": "YAML text or an object"},
        "bootstrap_address": {"type": "string"},
        "migrate": {"type": ["string", "boolean"], "enum": ["true", "false", True, False]},
        "release": {"type": "string", "description": "a secondary copy's, from its peer site only"},
        # Network reconfiguration (§2.6): all four management fields, bootstrap_address, sysadmin_password.
        "management_subnet": {"type": "string"},
        "management_gateway_ip": {"type": "string"},
        "management_start_ip": {"type": "string"},
        "management_end_ip": {"type": "string"},
        "sysadmin_password": {"type": "string", "description": "base64"},
    },
    "additionalProperties": False,
    "minProperties": 1,
}
# The dcmanager client's `subcloud update` sends multipart, with the YAML files as file parts.
UPDATE_FORM_SCHEMA = {
    "type": "object",
    "properties": {**UPDATE_SCHEMA["properties"], "install_values": _FILE, "bootstrap_values": _FILE,
                   "group_id": {"type": "string"}, "peer_group": {"type": "string"},
                   "force": {"type": "string", "enum": ["true", "false"]},
                   "migrate": {"type": "string", "enum": ["true", "false"]}},
}


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
    view = await subclouds.add_subcloud(ctx, await read_body(request), from_peer=peer)
    return views.subcloud(view)


@router.get("/subclouds/{subcloud_ref}", response_model=None, responses=reads(views.SubcloudBody, 400, 404))
async def show_subcloud(subcloud_ref: str, ctx: SiteContext = Depends(site_context),
                        peer: bool = Depends(from_peer)) -> dict[str, Any]:
    return views.subcloud(await subclouds.get_subcloud(ctx, subcloud_ref, from_peer=peer))


@router.get("/subclouds/{subcloud_ref}/detail", response_model=None,
            responses=reads(views.SubcloudDetail, 400, 404))
async def show_subcloud_detail(subcloud_ref: str, ctx: SiteContext = Depends(site_context),
                               peer: bool = Depends(from_peer)) -> dict[str, Any]:
    return views.subcloud(await subclouds.get_subcloud(ctx, subcloud_ref, from_peer=peer), detail=True)


@router.patch("/subclouds/{subcloud_ref}", response_model=None,
              responses=writes(views.SubcloudBody, 404, 409, 413, 422), openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": UPDATE_SCHEMA},
                                  "multipart/form-data": {"schema": UPDATE_FORM_SCHEMA}}}})
async def update_subcloud(subcloud_ref: str, request: Request, ctx: SiteContext = Depends(site_context),
                          peer: bool = Depends(from_peer)) -> dict[str, Any]:
    body = await read_body(request)
    if asks_network_reconfiguration(body):  # management network fields: carried out by the operations loop
        view = await subcloud_ops.reconfigure_network(ctx, subcloud_ref, body, peer)
    else:
        view = await subclouds.update_subcloud(ctx, subcloud_ref, body, from_peer=peer)
    return views.subcloud(view)


@router.delete("/subclouds/{subcloud_ref}", response_class=Response, responses=writes(None, 404, 422))
async def delete_subcloud(subcloud_ref: str, ctx: SiteContext = Depends(site_context),
                          peer: bool = Depends(from_peer)) -> Response:
    await subclouds.delete_subcloud(ctx, subcloud_ref, from_peer=peer)
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
