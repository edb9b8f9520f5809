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
from dataclasses import dataclass
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import associations as associations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import subclouds as subclouds_db
from dcman.domain.cluster import LeaseKind
from dcman.domain.deploy import (
    ALLOWED_FROM,
    MIN_POLL_S,
    PHASES,
    POLL_S,
    RESTING,
    Look,
    PhaseStates,
    Step,
    error_text,
    next_look_s,
    phase_of,
)
from dcman.domain.states import DeployStatus
from dcman.domain.subcloud import NO_ERRORS, Subcloud
from dcman.domain.transitions import transition
from dcman.domain.failover import Claim, claim, priorities
from dcman.domain.migration import yielded
from dcman.drivers.agent_client import AgentClient, AgentError, Fenced, basic_auth
from dcman.loops import runner
from dcman.loops.runner import SubcloudTasks, Timing, Work
from dcman.loops.subcloud_driver import SubcloudDriver
from dcman.services import documents, transitions
from dcman.services.context import SiteContext
from dcman.services.subcloud_files import phase_log_path

log = logging.getLogger("dcman.deploy")
IDLE_TICK_S = 1.0
PARALLELISM = 200
# An installing node reboots: tolerate this many polls in a row without an answer.
MAX_LOST_POLLS = 60
# A running phase's progress is written at most this often: a short phase (a rehome) then
# costs two writes, its start and its end, and a long one's bar still moves.
PROGRESS_EVERY_S = 2.0


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


@dataclass(frozen=True)
class Yield:
    """A rehome that does not claim the subcloud: it answers to `controller` at `epoch`."""

    controller: str | None
    epoch: int | None


@dataclass(frozen=True)
class Later:
    """A claim lost to a site after this one in the takeover order: claimed again later."""

    controller: str | None
    epoch: int | None


# A claim lost to a later site in the order is made again after this long (its rehome runs).
CLAIM_AGAIN_S = 1.0


class Driver(SubcloudDriver):
    """Takes one subcloud through its deploy plan as far as it can go now."""

    def __init__(self, ctx: SiteContext, client: AgentClient, subcloud_id: int) -> None:
        super().__init__(ctx, client, subcloud_id)
        # The pace of the running phase: the first look at it (its start, when this driver
        # started it), and when to look next. Only timers: a new driver measures again.
        self.pace_from: Look | None = None
        self.next_look_at: float | None = None
        self.progress_written_at = 0.0  # monotonic

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
        granted: dict[str, Any] = {}
        try:
            payload = self.payload(subcloud, step)
            if step is Step.REHOME:
                asked = time.monotonic()  # the agent starts the phase after this
                claimed = await self.claim(subcloud, address, auth, payload)
                if isinstance(claimed, Yield):
                    return await self.yield_to(subcloud, claimed)
                if isinstance(claimed, Later):
                    await self.write_log(subcloud, step, f"site {claimed.controller} claimed the subcloud first "
                                                         f"(epoch {claimed.epoch}); this site comes before it in "
                                                         "the takeover order and claims it again")
                    await asyncio.sleep(CLAIM_AGAIN_S)
                    return False  # still pre-rehome: the next round claims again
                granted = {"fencing_epoch": claimed}
            else:
                asked = time.monotonic()
                await self.as_controller(subcloud, lambda epoch: self.client.start_phase(address, auth, step, payload,
                                                                                         epoch))
        except (AgentError, ValueError) as exc:
            message = f"Cannot start {step}: {exc}"
            await self.write_log(subcloud, step, message)
            return await self.move(subcloud, states.pre_failed, error_description=error_text(message))
        await self.write_log(subcloud, step, f"{step} started on {address}")
        self.pace_from, self.next_look_at = Look(asked, 0), asked + POLL_S
        self.progress_written_at = asked  # the move writes 0
        return await self.move(subcloud, states.running, error_description=NO_ERRORS, deploy_progress=0, **granted)

    async def claim(self, subcloud: Subcloud, address: str, auth: str,
                    payload: dict[str, Any]) -> "int | Yield | Later":
        """Start a rehome as the claim on the subcloud: a compare-and-set at its agent on the
        controller and epoch it reports now, made only when the group's takeover order lets
        this site take it from that controller (domain.failover.claim). The epoch granted, or
        whom to yield to: a site before this one holds it, or won the claim first."""
        status = await self.client.status(address, auth)
        if status.status != 200:
            raise AgentError(f"the subcloud's status answer was {status.status}: {status.body}")
        current = takeover_from(status.body)
        order = await self.takeover_order(subcloud)
        if order is not None and claim(self.ctx.site_uuid, order[1], order[0], current["system_controller"]) \
                is Claim.YIELD:
            return Yield(current["system_controller"], current["fencing_epoch"])
        payload["takeover_from"] = current
        try:
            epoch = await self.client.start_phase(address, auth, Step.REHOME, payload, subcloud.fencing_epoch)
        except Fenced as lost:  # another site's claim landed between the status read and this one
            if order is None:
                raise
            return self.after_lost_claim(order, lost.system_controller, lost.fencing_epoch)
        if epoch is None:  # a rehome already running was adopted: it must be this site's own claim
            again = takeover_from((await self.client.status(address, auth)).body)
            if again["system_controller"] != self.ctx.site_uuid:
                if order is None:
                    raise AgentError(f"the subcloud is rehoming to site {again['system_controller']}")
                return self.after_lost_claim(order, again["system_controller"], again["fencing_epoch"])
            epoch = again["fencing_epoch"]
        return epoch

    def after_lost_claim(self, order: tuple[dict[str, int], str], controller: str | None,
                         epoch: int | None) -> "Yield | Later":
        """Another site claimed the subcloud first: yield to it when it comes before this site
        in the takeover order; else claim again later (its rehome may still be running), so that
        racing survivors end with the first in order holding the whole group."""
        if claim(self.ctx.site_uuid, order[1], order[0], controller) is Claim.YIELD:
            return Yield(controller, epoch)
        return Later(controller, epoch)

    async def takeover_order(self, subcloud: Subcloud) -> tuple[dict[str, int], str] | None:
        """The takeover order of the subcloud's peer group and its leader as this site knows
        it; None outside a peer group (an adoption takes the subcloud from whoever holds it)."""
        if subcloud.peer_group_id is None:
            return None
        async with self.ctx.engine.connect() as conn:
            group = await peer_groups_db.get_peer_group(conn, subcloud.peer_group_id)
            if group is None:
                return None
            associated = await associations_db.associated_priorities(conn, group.id)
        return priorities(group, self.ctx.site_uuid, associated), group.system_leader_id

    async def yield_to(self, subcloud: Subcloud, claimed: "Yield") -> bool:
        """Stay secondary: the subcloud is another site's, which comes first or won the claim."""
        change = yielded(subcloud, str(claimed.controller), claimed.epoch)
        moved = await transitions.move(self.ctx, self.id, change, only_if={"deploy_status": subcloud.deploy_status})
        if moved:
            await self.write_log(subcloud, Step.REHOME, change.changes["error_description"])
            log.warning("subcloud %s: %s", subcloud.name, change.changes["error_description"])
        return moved

    async def current(self, subcloud: Subcloud) -> dict[str, Any] | None:
        try:
            answer = await self.client.current_phase(subcloud.management_start_ip, self.auth(subcloud))
        except AgentError:
            self.lost_polls += 1
            self.next_look_at = None  # POLL_S between silences: MAX_LOST_POLLS keeps its meaning
            return None
        self.lost_polls = 0
        return answer.body if isinstance(answer.body, dict) else None

    async def finish(self, subcloud: Subcloud, step: Step, states: PhaseStates, plan: tuple[Step, ...],
                     body: dict[str, Any]) -> bool:
        state, message = body.get("state"), str(body.get("message") or "")
        self.pace_from = self.next_look_at = None
        progress = body.get("progress") if isinstance(body.get("progress"), int) else subcloud.deploy_progress
        await self.write_log(subcloud, step, f"{step} {state} at {progress}%: {message}")
        if state == "succeeded":
            rest = plan[1:] if plan and plan[0] == step else plan
            extra = {"rehomed": True} if step is Step.REHOME else {}
            moved = await self.move(subcloud, states.done, plan=rest, deploy_progress=100,
                                    error_description=NO_ERRORS, **extra)
            return moved and states.done in RESTING  # else nothing follows: no need to read it again
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

    def paced(self, look: Look | None) -> None:
        """When to look again at the running phase, from its pace since the first look."""
        if look is None:
            self.next_look_at = None
            return
        if self.pace_from is None or look.progress < self.pace_from.progress:  # adopted, or another run
            self.pace_from = look
        self.next_look_at = look.at + next_look_s(self.pace_from, look)

    async def until_next_look(self) -> None:
        wait = POLL_S if self.next_look_at is None else self.next_look_at - time.monotonic()
        await asyncio.sleep(max(MIN_POLL_S, wait))

    async def poll(self, subcloud: Subcloud, step: Step, states: PhaseStates, plan: tuple[Step, ...]) -> bool:
        await self.until_next_look()
        asked = time.monotonic()
        body = await self.current(subcloud)
        if body is None:
            return await self.lost(subcloud, states, f"during {step}")
        if body.get("phase") != step:
            return await self.move(subcloud, states.failed,
                                   error_description=f"The subcloud no longer runs {step} (it reports {body}).")
        if body.get("state") == "running":
            progress = body.get("progress")
            self.paced(Look(asked, progress) if isinstance(progress, int) else None)
            if isinstance(progress, int) and progress != subcloud.deploy_progress \
                    and asked - self.progress_written_at >= PROGRESS_EVERY_S:
                self.progress_written_at = asked
                await transitions.move(self.ctx, self.id, transition(subcloud, deploy_progress=progress),
                                       only_if={"deploy_status": states.running})
            return True
        return await self.finish(subcloud, step, states, plan, body)

    async def abort(self, subcloud: Subcloud, step: Step, states: PhaseStates, plan: tuple[Step, ...]) -> bool:
        address, auth = subcloud.management_start_ip, self.auth(subcloud)
        try:
            await self.as_controller(subcloud, lambda epoch: self.client.abort_phase(address, auth, epoch))
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
