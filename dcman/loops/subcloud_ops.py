"""The operations loop: carries out network reconfigurations and prestages on the subclouds'
agents, as the deploy loop does deploy phases.

A reconfiguration is `reconfiguring-network` with its request stored aside: the agent's
`network` phase is started at the subcloud's current address, polled there (or at the new
address, once the subcloud has moved), and ends in `complete` with the new network stored,
or in `network-reconfiguration-failed`. Every step is a compare-and-set on the row, so a
second process or a restart never takes one twice; a restart moves a cut-short
reconfiguration to its failure state (services/deploy.recover_interrupted), from which the
operator asks again. A prestage is `prestage-status` `prestaging-packages → prestaging-images →
complete` (or `failed`), one agent phase each, the release added to `prestage-versions` at the
end. Only the subclouds of the deploy shards this process holds are driven.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from dcman.db import operations as operations_db
from dcman.domain.cluster import LeaseKind
from dcman.domain.deploy import error_text
from dcman.domain.states import DeployStatus
from dcman.domain.subcloud import NO_ERRORS, Subcloud
from dcman.domain.subcloud_ops import (
    NETWORK_PHASE,
    PRESTAGE,
    PRESTAGE_FAILED,
    PRESTAGE_STEPS,
    parse_request,
    prestaged_versions,
)
from dcman.domain.transitions import transition
from dcman.drivers.agent_client import AgentError, basic_auth
from dcman.loops import runner
from dcman.loops.runner import SubcloudTasks, Timing, Work
from dcman.loops.subcloud_driver import SubcloudDriver
from dcman.services import transitions
from dcman.services.context import SiteContext
from dcman.services.subcloud_files import subcloud_dir

log = logging.getLogger("dcman.operations")
IDLE_TICK_S = 1.0
POLL_S = 0.3
PARALLELISM = 100
# A readdressed subcloud restarts its management interface: tolerate this many silent polls.
MAX_LOST_POLLS = 40


class OperationDriver(SubcloudDriver):
    """Shared by the operations: compare-and-set moves, the phase log, the agent's answers."""

    async def move(self, subcloud: Subcloud, only_if: dict[str, Any], columns: dict[str, Any]) -> bool:
        moved = await transitions.move(self.ctx, self.id, transition(subcloud, **columns), only_if=only_if)
        states = {k: v for k, v in columns.items() if k.endswith("_status")}
        if moved and states:  # not for a progress report: the audit reloads on these
            log.info("subcloud %s: %s", subcloud.name, states)
            self.ctx.subclouds_changed()
        return moved

    async def write_log(self, subcloud: Subcloud, phase: str, line: str) -> None:
        """A line of the operation's log, DATA_DIR/subclouds/<id>/<phase>.log (phase: a fixed name)."""
        await self.append_log(subcloud_dir(self.ctx.settings.data_dir, subcloud.id) / f"{phase}.log", line)

    async def current(self, addresses: tuple[str, ...], auth: str) -> dict[str, Any] | None:
        """The agent's current phase, from the first of these addresses that answers."""
        for address in addresses:
            try:
                answer = await self.client.current_phase(address, auth)
            except AgentError:
                continue
            if isinstance(answer.body, dict):
                self.lost_polls = 0
                return answer.body
        self.lost_polls += 1
        return None


class NetworkDriver(OperationDriver):
    """Takes one `reconfiguring-network` subcloud to `complete` or `network-reconfiguration-failed`."""

    def wants(self, subcloud: Subcloud) -> bool:
        return subcloud.deploy_status == DeployStatus.RECONFIGURING_NETWORK

    async def fail(self, subcloud: Subcloud, message: str) -> bool:
        await self.write_log(subcloud, NETWORK_PHASE, message)
        return await self.move(subcloud, {"deploy_status": subcloud.deploy_status,
                                          "operation_request": subcloud.operation_request},
                               {"deploy_status": DeployStatus.NETWORK_RECONFIGURATION_FAILED.value,
                                "error_description": error_text(message), "operation_request": None})

    async def step(self, subcloud: Subcloud) -> bool:
        request = parse_request(subcloud.operation_request, NETWORK_PHASE)
        if request is None or not isinstance(request.get("network"), dict):
            return await self.fail(subcloud, "The network reconfiguration request was lost; ask for it again.")
        network = request["network"]
        try:
            auth = basic_auth(self.ctx.secrets.decrypt(str(request.get("password") or "")))
        except ValueError:
            return await self.fail(subcloud, "The sysadmin password of the request cannot be read; ask again.")
        if not request.get("started"):
            return await self.start(subcloud, request, network, auth)
        return await self.poll(subcloud, request, network, auth)

    async def start(self, subcloud: Subcloud, request: dict[str, Any], network: dict[str, str], auth: str) -> bool:
        payload = {"system_controller": self.ctx.site_uuid, "name": subcloud.name,
                   "region_name": subcloud.region_name, "management_subnet": network["management_subnet"],
                   "management_start_address": network["management_start_ip"],
                   "management_end_address": network["management_end_ip"],
                   "management_gateway_address": network["management_gateway_ip"],
                   "bootstrap_address": network["bootstrap_address"]}
        try:
            await self.as_controller(subcloud, lambda epoch: self.client.start_phase(
                subcloud.management_start_ip, auth, NETWORK_PHASE, payload, epoch))
        except AgentError as exc:
            return await self.fail(subcloud, f"Cannot start the network reconfiguration: {exc}")
        await self.write_log(subcloud, NETWORK_PHASE, f"network reconfiguration started on "
                                                      f"{subcloud.management_start_ip}, moving to "
                                                      f"{network['management_start_ip']}")
        return await self.move(subcloud, {"deploy_status": subcloud.deploy_status,
                                          "operation_request": subcloud.operation_request},
                               {"operation_request": json.dumps({**request, "started": True})})

    async def poll(self, subcloud: Subcloud, request: dict[str, Any], network: dict[str, str], auth: str) -> bool:
        await asyncio.sleep(POLL_S)
        body = await self.current((subcloud.management_start_ip, network["management_start_ip"]), auth)
        if body is None:
            if self.lost_polls < MAX_LOST_POLLS:
                return True
            return await self.fail(subcloud, "Lost contact with the subcloud during the network reconfiguration, "
                                             "at its old and its new address.")
        if body.get("phase") != NETWORK_PHASE:
            return await self.fail(subcloud, f"The subcloud no longer runs the network reconfiguration "
                                             f"(it reports {body}).")
        state, message = body.get("state"), str(body.get("message") or "")
        progress = body.get("progress") if isinstance(body.get("progress"), int) else subcloud.deploy_progress
        if state == "running":
            if progress != subcloud.deploy_progress:
                await self.move(subcloud, {"deploy_status": subcloud.deploy_status}, {"deploy_progress": progress})
            return True
        await self.write_log(subcloud, NETWORK_PHASE, f"network {state} at {progress}%: {message}")
        if state != "succeeded":
            return await self.fail(subcloud, message or f"The network reconfiguration ended {state}.")
        columns = {
            "deploy_status": DeployStatus.COMPLETE.value, "error_description": NO_ERRORS, "deploy_progress": 100,
            "operation_request": None, "bootstrap_address": network["bootstrap_address"],
            # The password worked on the subcloud: it is the subcloud's from now on.
            "sysadmin_password": request["password"],
            **{field: network[field] for field in ("management_subnet", "management_start_ip",
                                                   "management_end_ip", "management_gateway_ip")},
        }
        return await self.move(subcloud, {"deploy_status": subcloud.deploy_status,
                                          "operation_request": subcloud.operation_request}, columns)


class PrestageDriver(OperationDriver):
    """Takes one prestaging subcloud through the packages and images phases to `complete`,
    or to `failed` with the reason in its error description."""

    def wants(self, subcloud: Subcloud) -> bool:
        return subcloud.prestage_status in PRESTAGE_STEPS

    def guard(self, subcloud: Subcloud) -> dict[str, Any]:
        return {"prestage_status": subcloud.prestage_status, "operation_request": subcloud.operation_request}

    async def fail(self, subcloud: Subcloud, message: str) -> bool:
        await self.write_log(subcloud, PRESTAGE, message)
        return await self.move(subcloud, self.guard(subcloud),
                               {"prestage_status": PRESTAGE_FAILED, "error_description": error_text(message),
                                "operation_request": None})

    async def step(self, subcloud: Subcloud) -> bool:
        request = parse_request(subcloud.operation_request, PRESTAGE)
        if request is None:
            return await self.fail(subcloud, "The prestage request was lost; ask for it again.")
        try:
            auth = basic_auth(self.ctx.secrets.decrypt(str(request.get("password") or "")))
        except ValueError:
            return await self.fail(subcloud, "The sysadmin password of the request cannot be read; ask again.")
        phase, after = PRESTAGE_STEPS[str(subcloud.prestage_status)]
        address = subcloud.management_start_ip
        if not request.get("started"):
            payload = {"system_controller": self.ctx.site_uuid, "name": subcloud.name,
                       "release": request.get("release"),
                       "prestage_reason": "for_sw_deploy" if request.get("for_sw_deploy") else "for_install"}
            try:
                await self.as_controller(subcloud, lambda epoch: self.client.start_phase(address, auth, phase, payload, epoch))
            except AgentError as exc:
                return await self.fail(subcloud, f"Cannot start {phase}: {exc}")
            await self.write_log(subcloud, PRESTAGE, f"{phase} of {request.get('release')} started on {address}")
            return await self.move(subcloud, self.guard(subcloud),
                                   {"operation_request": json.dumps({**request, "started": True})})
        await asyncio.sleep(POLL_S)
        body = await self.current((address,), auth)
        if body is None:
            if self.lost_polls < MAX_LOST_POLLS:
                return True
            return await self.fail(subcloud, f"Lost contact with the subcloud during {phase}.")
        if body.get("phase") != phase:
            return await self.fail(subcloud, f"The subcloud no longer runs {phase} (it reports {body}).")
        state, message = body.get("state"), str(body.get("message") or "")
        if state == "running":
            return True
        await self.write_log(subcloud, PRESTAGE, f"{phase} {state}: {message}")
        if state != "succeeded":
            return await self.fail(subcloud, message or f"{phase} ended {state}.")
        if after in PRESTAGE_STEPS:
            return await self.move(subcloud, self.guard(subcloud), {
                "prestage_status": after, "operation_request": json.dumps({**request, "started": False})})
        return await self.move(subcloud, self.guard(subcloud), {
            "prestage_status": after, "operation_request": None, "error_description": NO_ERRORS,
            "prestage_versions": prestaged_versions(subcloud.prestage_versions, str(request.get("release")))})


class OperationsLoop:
    """Starts a driver for every subcloud of the held deploy shards with an operation under way."""

    def __init__(self, ctx: SiteContext) -> None:
        self.ctx = ctx
        self.client = ctx.agents
        self.drivers = SubcloudTasks("operation", ctx.shards[LeaseKind.DEPLOY], PARALLELISM,
                                     ctx.operations_wakeup.set)

    async def pending(self, conn: AsyncConnection, exclude: list[int], limit: int,
                      shards: frozenset[int]) -> list[tuple[int, Work]]:
        found = await operations_db.subclouds_with_operations(conn, exclude, limit, shards)
        return [(subcloud_id, DRIVERS[kind](self.ctx, self.client, subcloud_id).run) for subcloud_id, kind in found]

    async def reconcile(self) -> None:
        await self.drivers.fill(self.ctx.engine, self.pending)


DRIVERS: dict[str, type[OperationDriver]] = {operations_db.NETWORK: NetworkDriver, PRESTAGE: PrestageDriver}


async def run(ctx: SiteContext) -> None:
    await runner.run("operations", OperationsLoop(ctx).reconcile, Timing(IDLE_TICK_S), ctx.operations_wakeup)
