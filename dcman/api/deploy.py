"""/v1.0/phased-subcloud-deploy and /v1.0/subclouds/{sc}/redeploy. Every verb takes its
fields as the multipart form the dcmanager client sends, or as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dcman.api import views
from dcman.api.bodies import read_body
from dcman.api.commands.subclouds import ADD_FORM_SCHEMA, PHASE_FORM_SCHEMA, new_subcloud, phase_request
from dcman.api.responses import writes
from dcman.api.state import site_context
from dcman.domain.deploy import Step
from dcman.services import deploy
from dcman.services.context import SiteContext

router = APIRouter(tags=["phased-subcloud-deploy"])

def _form(schema: dict) -> dict:
    return {"requestBody": {"required": False, "content": {"multipart/form-data": {"schema": schema},
                                                           "application/json": {"schema": schema}}}}


@router.post("/phased-subcloud-deploy", response_model=None, responses=writes(views.SubcloudBody, 409, 413),
             openapi_extra=_form(ADD_FORM_SCHEMA))
async def create(request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.subcloud(await deploy.create(ctx, new_subcloud(await read_body(request))))


_STEP_OF_VERB = {"install": Step.INSTALL, "bootstrap": Step.BOOTSTRAP, "configure": Step.CONFIG,
                 "complete": Step.COMPLETE}


def _phase_route(verb: str) -> None:
    step = _STEP_OF_VERB[verb]

    async def start(subcloud_ref: str, request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
        request_ = phase_request(await read_body(request))
        return views.subcloud(await deploy.start_phase(ctx, subcloud_ref, step, request_))

    router.add_api_route(f"/phased-subcloud-deploy/{{subcloud_ref}}/{verb}", start, methods=["PATCH"],
                         name=f"deploy_{verb}", response_model=None,
                         responses=writes(views.SubcloudBody, 404, 413, 422), openapi_extra=_form(PHASE_FORM_SCHEMA))


for _verb in _STEP_OF_VERB:
    _phase_route(_verb)


@router.patch("/phased-subcloud-deploy/{subcloud_ref}/abort", response_model=None,
              responses=writes(views.SubcloudBody, 404, 422))
async def abort(subcloud_ref: str, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.subcloud(await deploy.abort(ctx, subcloud_ref))


@router.patch("/phased-subcloud-deploy/{subcloud_ref}/resume", response_model=None,
              responses=writes(views.SubcloudBody, 404, 413, 422), openapi_extra=_form(PHASE_FORM_SCHEMA))
async def resume(subcloud_ref: str, request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.subcloud(await deploy.resume(ctx, subcloud_ref, phase_request(await read_body(request))))


@router.patch("/subclouds/{subcloud_ref}/redeploy", tags=["subclouds"], response_model=None,
              responses=writes(views.SubcloudBody, 404, 413, 422), openapi_extra=_form(PHASE_FORM_SCHEMA))
async def redeploy(subcloud_ref: str, request: Request, ctx: SiteContext = Depends(site_context)) -> dict[str, Any]:
    return views.subcloud(await deploy.redeploy(ctx, subcloud_ref, phase_request(await read_body(request))))
