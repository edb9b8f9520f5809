"""The deploy reconciler: drives each subcloud through its deploy plan.

`not-deployed → creating → create-complete`, then each step of the stored plan: a phase X
goes `pre-X → X-ing → X-complete` (config ends in `complete`) on the subcloud's agent,
or to `pre-X-failed`, `X-failed`, or via `aborting-X` to `X-aborted`. A migration's rehome is one
more such phase: `pre-rehome → rehoming → complete`, or `rehome-prep-failed` / `rehome-failed`. Every transition is
a compare-and-set on the row, so an operator's abort, a second process or a restart never
takes a step twice; at start-up, steps cut short by a crash move to their failure state.
At most PARALLELISM subclouds are driven at once.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import subclouds as subclouds_db
from dcman.domain.cluster import LeaseKind
from dcman.domain.deploy import (
    ALLOWED_FROM,
    PHASES,
    RESTING,
    PhaseStates,
    Step,
    error_text,
    phase_of,
)
from dcman.domain.states import DeployStatus
from dcman.domain.subcloud import NO_ERRORS, Subcloud
from dcman.domain.transitions import transition
from dcman.drivers.agent_client import AgentError, basic_auth
from dcman.loops import runner
from dcman.loops.runner import SubcloudTasks, Timing, Work
from dcman.loops.subcloud_driver import SubcloudDriver
from dcman.services import documents, transitions
from dcman.services.context import SiteContext
from dcman.services.subcloud_files import phase_log_path

log = logging.getLogger("dcman.deploy")
IDLE_TICK_S = 1.0
POLL_S = 0.5
PARALLELISM = 200
# An installing node reboots: tolerate this many polls in a row without an answer.
MAX_LOST_POLLS = 60


def phase_log(ctx: SiteContext, subcloud: Subcloud, step: str) -> Path:
    """The full log of one phase of one subcloud, in the data directory (under its id)."""
    return phase_log_path(ctx.settings.data_dir, subcloud.id, step)


def takeover_from(status_body: Any) -> dict[str, Any]:
    """A rehome's `takeover_from`: the system controller and fencing epoch the subcloud's
    status reports (for now read just before the rehome; the site's own view can replace it)."""
    body = status_body if isinstance(status_body, dict) else {}
    controller, epoch = body.get("system_controller"), body.get("fencing_epoch")
    return {"system_controller": controller if isinstance(controller, str) else None,
            "fencing_epoch": epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else 0}


class Driver(SubcloudDriver):
    """Takes one subcloud through its deploy plan as far as it can go now."""

    async def move(self, subcloud: Subcloud, to: DeployStatus, **changes: Any) -> bool:
        """Compare-and-set the deploy status from the loaded one, with what follows from it."""
        moved = await transitions.move(self.ctx, self.id, transition(subcloud, deploy_status=to, **changes),
                                       only_if={"deploy_status": subcloud.deploy_status})
        if moved:
            log.info("subcloud %s: %s -> %s", subcloud.name, subcloud.deploy_status, to)
        return moved

    async def write_log(self, subcloud: Subcloud, step: str, line: str) -> None:
        await self.append_log(phase_log(self.ctx, subcloud, step), line)

    def auth(self, subcloud: Subcloud) -> str:
        return basic_auth(self.ctx.secrets.decrypt(subcloud.sysadmin_password or ""))

    def payload(self, subcloud: Subcloud, step: Step) -> dict[str, Any]:
        body: dict[str, Any] = {"system_controller": self.ctx.site_uuid, "name": subcloud.name,
                                "region_name": subcloud.region_name, "software_version": subcloud.software_version}
        if step is Step.INSTALL:
            body["install_values"] = documents.agent_install_values(self.ctx, subcloud)
        elif step in (Step.BOOTSTRAP, Step.REHOME):
            body["bootstrap_values"] = documents.agent_bootstrap_values(self.ctx, subcloud)
            body["bootstrap_address"] = subcloud.bootstrap_address
        else:
            body["deploy_config"] = documents.agent_deploy_config(self.ctx, subcloud)
        return body

    async def step(self, subcloud: Subcloud) -> bool:
        status = subcloud.deploy_status
        if status == DeployStatus.NOT_DEPLOYED:
            return await self.move(subcloud, DeployStatus.CREATING)
        if status == DeployStatus.CREATING:
            # Nothing to set up on the site: the agent URL derives from the management address.
            return await self.move(subcloud, DeployStatus.CREATE_COMPLETE, error_description=NO_ERRORS)
        plan = subcloud.plan
        if status in RESTING:
            if not plan:
                return False
            head = plan[0]
            if head is Step.COMPLETE:
                return await self.move(subcloud, DeployStatus.COMPLETE, plan=plan[1:])
            if status not in ALLOWED_FROM[head]:
                return False
            return await self.move(subcloud, PHASES[head].pre, deploy_progress=0)
        found = phase_of(status)
        if found is None:
            return False
        step, states = found
        if status == states.pre:
            return await self.start_phase(subcloud, step, states)
        if status == states.running:
            return await self.poll(subcloud, step, states, plan)
        return await self.abort(subcloud, step, states, plan)

    async def start_phase(self, subcloud: Subcloud, step: Step, states: PhaseStates) -> bool:
        address, auth = subcloud.management_start_ip, self.auth(subcloud)
        try:
            payload = self.payload(subcloud, step)
            if step is Step.REHOME:
                # The claim: taken over from what the subcloud answers to now (compare-and-set).
                status = await self.client.status(address, auth)
                if status.status != 200:
                    raise AgentError(f"the subcloud's status answer was {status.status}: {status.body}")
                payload["takeover_from"] = takeover_from(status.body)
                await self.client.start_phase(address, auth, step, payload)
            else:
                await self.as_controller(lambda epoch: self.client.start_phase(address, auth, step, payload, epoch))
        except (AgentError, ValueError) as exc:
            message = f"Cannot start {step}: {exc}"
            await self.write_log(subcloud, step, message)
            return await self.move(subcloud, states.pre_failed, error_description=error_text(message))
        await self.write_log(subcloud, step, f"{step} started on {address}")
        return await self.move(subcloud, states.running, error_description=NO_ERRORS, deploy_progress=0)

    async def current(self, subcloud: Subcloud) -> dict[str, Any] | None:
        try:
            answer = await self.client.current_phase(subcloud.management_start_ip, self.auth(subcloud))
        except AgentError:
            self.lost_polls += 1
            return None
        self.lost_polls = 0
        return answer.body if isinstance(answer.body, dict) else None

    async def finish(self, subcloud: Subcloud, step: Step, states: PhaseStates, plan: tuple[Step, ...],
                     body: dict[str, Any]) -> bool:
        state, message = body.get("state"), str(body.get("message") or "")
        progress = body.get("progress") if isinstance(body.get("progress"), int) else subcloud.deploy_progress
        await self.write_log(subcloud, step, f"{step} {state} at {progress}%: {message}")
        if state == "succeeded":
            rest = plan[1:] if plan and plan[0] == step else plan
            extra = {"rehomed": True} if step is Step.REHOME else {}
            return await self.move(subcloud, states.done, plan=rest, deploy_progress=100,
                                   error_description=NO_ERRORS, **extra)
        if state == "aborted":
            return await self.move(subcloud, states.aborted, error_description=f"{step} aborted.",
                                   deploy_progress=progress)
        return await self.move(subcloud, states.failed, error_description=error_text(message),
                               deploy_progress=progress)

    async def lost(self, subcloud: Subcloud, states: PhaseStates, doing: str) -> bool:
        """No answer from the agent: keep waiting (an installing node reboots), then fail."""
        if self.lost_polls < MAX_LOST_POLLS:
            return True
        return await self.move(subcloud, states.failed,
                               error_description=f"Lost contact with the subcloud {doing}.")

    async def poll(self, subcloud: Subcloud, step: Step, states: PhaseStates, plan: tuple[Step, ...]) -> bool:
        await asyncio.sleep(POLL_S)
        body = await self.current(subcloud)
        if body is None:
            return await self.lost(subcloud, states, f"during {step}")
        if body.get("phase") != step:
            return await self.move(subcloud, states.failed,
                                   error_description=f"The subcloud no longer runs {step} (it reports {body}).")
        if body.get("state") == "running":
            progress = body.get("progress")
            if isinstance(progress, int) and progress != subcloud.deploy_progress:
                await transitions.move(self.ctx, self.id, transition(subcloud, deploy_progress=progress),
                                       only_if={"deploy_status": states.running})
            return True
        return await self.finish(subcloud, step, states, plan, body)

    async def abort(self, subcloud: Subcloud, step: Step, states: PhaseStates, plan: tuple[Step, ...]) -> bool:
        address, auth = subcloud.management_start_ip, self.auth(subcloud)
        try:
            await self.as_controller(lambda epoch: self.client.abort_phase(address, auth, epoch))
        except AgentError:
            pass  # the poll below decides
        await asyncio.sleep(POLL_S)
        body = await self.current(subcloud)
        if body is None:
            return await self.lost(subcloud, states, f"while aborting {step}")
        if body.get("state") == "running":
            return True
        return await self.finish(subcloud, step, states, plan, body)


class DeployLoop:
    """Drives every subcloud of the held deploy shards that has a step to take, one task each."""

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self.client = ctx.agents
        self.drivers = SubcloudTasks("deploy", ctx.shards[LeaseKind.DEPLOY], PARALLELISM, ctx.deploy_wakeup.set)

    async def pending(self, conn: AsyncConnection, exclude: list[int], limit: int,
                      shards: frozenset[int]) -> list[tuple[int, Work]]:
        found = await subclouds_db.subclouds_with_deploy_work(conn, exclude=exclude, limit=limit, shards=shards)
        return [(subcloud_id, Driver(self.ctx, self.client, subcloud_id).run) for subcloud_id in found]

    async def reconcile(self) -> None:
        # Steps a dead process cut short were recovered when its leases were taken
        # (cluster/membership); this loop drives only the subclouds of the shards it holds.
        await self.drivers.fill(self.ctx.engine, self.pending)


async def run(ctx: SiteContext) -> None:
    await runner.run("deploy", DeployLoop(ctx).reconcile, Timing(IDLE_TICK_S), ctx.deploy_wakeup)
