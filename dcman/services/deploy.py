"""Phased deploy use cases (`/phased-subcloud-deploy`) and redeploy: each checks the
reference's precondition table, stores what the phase needs, and sets the first state;
the deploy reconciler does the rest."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import cluster as cluster_db
from dcman.db import operations as operations_db
from dcman.db import subclouds as subclouds_db
from dcman.domain.deploy import (
    PHASES,
    RECOVERY,
    RESUME_STARTS_AT,
    Step,
    check_abort,
    check_phase_request,
    check_redeploy,
    full_plan,
    resume_plan,
)
from dcman.domain.commands import Column, NewSubcloud, PhaseRequest
from dcman.domain.errors import InvalidInput
from dcman.domain.states import DeployStatus
from dcman.domain.subcloud import NO_ERRORS, Subcloud, validate_release
from dcman.domain.subcloud_ops import interrupted_prestage
from dcman.domain.transitions import transition
from dcman.services.context import SiteContext
from dcman.services.documents import config_columns, install_columns, stored_install_values
from dcman.services.subclouds import SubcloudView, _require, _view, add_subcloud, new_bootstrap_columns

log = logging.getLogger("dcman.deploy")


async def recover_interrupted(conn: AsyncConnection, shards: frozenset[int]) -> int:
    """Steps cut short by the death of the process that drove them go to their failure
    state (§2.3.4); run by the process taking the dead one's deploy shards, and by a single
    site at start. Returns how many subclouds moved."""
    moved = 0
    for subcloud_id, _ in await cluster_db.subclouds_in_states(conn, [s.value for s in RECOVERY], shards):
        subcloud = await subclouds_db.get_subcloud(conn, subcloud_id)
        if subcloud is None or subcloud.deploy_status not in RECOVERY:
            continue
        running, failed = subcloud.deploy_status, RECOVERY[subcloud.deploy_status]
        change = transition(subcloud, deploy_status=failed,
                            error_description=f"The site restarted while the subcloud was {running}.")
        if await subclouds_db.apply_transition(conn, subcloud_id, change, only_if={"deploy_status": running}):
            moved += 1
            log.warning("subcloud %s: %s interrupted by a restart -> %s", subcloud_id, running, failed)
    for subcloud_id, running in await operations_db.interrupted_prestages(conn, shards):
        if await subclouds_db.apply_transition(conn, subcloud_id, interrupted_prestage(running),
                                               only_if={"prestage_status": running}):
            moved += 1
    return moved


async def create(ctx: SiteContext, command: NewSubcloud) -> SubcloudView:
    """POST /phased-subcloud-deploy: the subcloud is created and waits at create-complete."""
    return await add_subcloud(ctx, command, run_phases=False)


def _secrets(ctx: SiteContext, request: PhaseRequest) -> dict[str, Column]:
    """A new sysadmin password, when the request brings one."""
    if request.sysadmin_password is None:
        return {}
    return {"sysadmin_password": ctx.secrets.encrypt(request.sysadmin_password)}


def _require_password(subcloud: Subcloud, request: PhaseRequest) -> None:
    """A phase that talks to the subcloud needs its sysadmin password, stored or given now
    (a phased deploy's create may have come without one)."""
    if subcloud.sysadmin_password is None and request.sysadmin_password is None:
        raise InvalidInput(f"Subcloud {subcloud.name} has no sysadmin password yet; send sysadmin_password.")


def _install(ctx: SiteContext, subcloud: Subcloud, request: PhaseRequest) -> dict[str, Any]:
    """Install values from the request (validated, BMC password encrypted apart). Without new
    values, a new BMC password or release applies to the stored ones."""
    values = None if request.install_values is None else dict(request.install_values)
    if values is None:
        if request.bmc_password is None and request.release is None:
            return {}
        if subcloud.install_values is None:
            raise InvalidInput(f"Subcloud {subcloud.name} has no install values for a bmc_password or release "
                               "to apply to; send install_values.")
        values = stored_install_values(ctx, subcloud)
        values["bmc_password"] = request.bmc_password or base64.b64encode(
            ctx.secrets.decrypt(subcloud.bmc_password or "").encode()).decode()
    release = request.release or validate_release(subcloud.software_version)
    if request.bmc_password is not None:
        values["bmc_password"] = request.bmc_password
    return {**install_columns(ctx, values, release), "software_version": release}


async def _bootstrap(ctx: SiteContext, conn: AsyncConnection, subcloud: Subcloud,
                     request: PhaseRequest) -> dict[str, Any]:
    """New bootstrap values: same name, and the whole network validation against the others."""
    return await new_bootstrap_columns(ctx, conn, subcloud, request.bootstrap_values, request.bootstrap_address)


def _deploy_config(ctx: SiteContext, request: PhaseRequest) -> dict[str, Any]:
    return {} if request.deploy_config is None else config_columns(ctx, request.deploy_config)


async def _start(ctx: SiteContext, ref: str, request: PhaseRequest,
                 decide: Callable[[AsyncConnection, Subcloud], Awaitable[dict[str, Any]]]) -> SubcloudView:
    """Check and start one operation in one transaction; `decide(conn, subcloud)` returns the
    columns to write (including the new deploy_status) or raises."""
    async with ctx.engine.begin() as conn:
        await subclouds_db.lock_subcloud_changes(conn)
        subcloud = await _require(conn, ref, for_update=True)
        changes = await decide(conn, subcloud)
        changes.update(_secrets(ctx, request))
        await subclouds_db.apply_transition(conn, subcloud.id, transition(subcloud, **changes))
        view = await _view(conn, await _require(conn, str(subcloud.id)))
    ctx.subclouds_changed()
    return view


def _first_state(plan: list[Step]) -> dict[str, Any]:
    """The state an operation starts in and the plan left for the reconciler."""
    head = plan[0]
    if head is Step.COMPLETE:
        return {"deploy_status": DeployStatus.COMPLETE, "plan": tuple(plan[1:])}
    return {"deploy_status": PHASES[head].pre, "plan": tuple(plan), "deploy_progress": 0,
            "error_description": NO_ERRORS}


async def start_phase(ctx: SiteContext, ref: str, step: Step, request: PhaseRequest) -> SubcloudView:
    """PATCH /phased-subcloud-deploy/{sc}/install|bootstrap|configure|complete."""

    async def decide(conn: AsyncConnection, subcloud: Subcloud) -> dict[str, Any]:
        check_phase_request(subcloud.name, subcloud.deploy_status, step)
        if step is not Step.COMPLETE:
            _require_password(subcloud, request)
        changes: dict[str, Any] = {}
        if step is Step.INSTALL:
            changes = _install(ctx, subcloud, request)
            if not changes and subcloud.install_values is None:
                raise InvalidInput(f"Installing subcloud {subcloud.name} needs install values; none are stored or given.")
        elif step is Step.BOOTSTRAP:
            changes = await _bootstrap(ctx, conn, subcloud, request)
        elif step is Step.CONFIG:
            changes = _deploy_config(ctx, request)
            if not changes and not subcloud.deploy_config:
                raise InvalidInput(f"Configuring subcloud {subcloud.name} needs a deploy_config; none is stored or given.")
        return {**changes, **_first_state([step])}

    return await _start(ctx, ref, request, decide)


async def abort(ctx: SiteContext, ref: str) -> SubcloudView:
    async def decide(conn: AsyncConnection, subcloud: Subcloud) -> dict[str, Any]:
        states = check_abort(subcloud.name, subcloud.deploy_status)
        return {"deploy_status": states.aborting.value}

    return await _start(ctx, ref, PhaseRequest(), decide)


async def resume(ctx: SiteContext, ref: str, request: PhaseRequest) -> SubcloudView:
    async def decide(conn: AsyncConnection, subcloud: Subcloud) -> dict[str, Any]:
        changes = {**_install(ctx, subcloud, request), **await _bootstrap(ctx, conn, subcloud, request),
                   **_deploy_config(ctx, request)}
        has_install = "install_values" in changes or subcloud.install_values is not None
        has_config = bool(changes.get("deploy_config") or subcloud.deploy_config)
        plan = resume_plan(subcloud.deploy_status, has_install, has_config)
        if plan != [Step.COMPLETE]:
            _require_password(subcloud, request)
        first = _first_state(plan)
        restart = RESUME_STARTS_AT.get(subcloud.deploy_status)
        if restart is not None:  # the create step again; the reconciler then runs the whole plan
            first.update(deploy_status=restart, plan=tuple(plan))
        return {**changes, **first}

    return await _start(ctx, ref, request, decide)


async def redeploy(ctx: SiteContext, ref: str, request: PhaseRequest) -> SubcloudView:
    """PATCH /subclouds/{sc}/redeploy: install, bootstrap and config again, from scratch."""

    async def decide(conn: AsyncConnection, subcloud: Subcloud) -> dict[str, Any]:
        changes = {**_install(ctx, subcloud, request), **await _bootstrap(ctx, conn, subcloud, request),
                   **_deploy_config(ctx, request)}
        has_install = "install_values" in changes or subcloud.install_values is not None
        check_redeploy(subcloud.name, subcloud.deploy_status, subcloud.availability_status,
                       subcloud.management_state, has_install)
        plan = full_plan(True, bool(changes.get("deploy_config") or subcloud.deploy_config))
        return {**changes, **_first_state(plan), "first_identity_sync_complete": False}

    return await _start(ctx, ref, request, decide)
