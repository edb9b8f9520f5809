"""Subcloud operations that run on the subcloud outside the deploy plan: network
reconfiguration (§2.6) and prestage. Each is checked and recorded here; the operations
loop (dcman.loops.subcloud_ops) carries it out through the agent."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import operations as operations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.db import subclouds as subclouds_db
from dcman.domain.commands import NetworkReconfiguration, PrestageRequest
from dcman.domain.errors import InvalidInput
from dcman.domain.network import bootstrap_address
from dcman.domain.states import DeployStatus
from dcman.domain.subcloud import NO_ERRORS, Subcloud, check_update_in_peer_group
from dcman.domain.subcloud_ops import (
    PRESTAGING_PACKAGES,
    check_network_request,
    check_prestage,
    network_request_document,
    new_network,
    prestage_request_document,
)
from dcman.domain.transitions import transition
from dcman.services.context import SiteContext
from dcman.services.forms import decode_password
from dcman.services.subclouds import SubcloudView, _require, _view


async def reconfigure_network(ctx: SiteContext, ref: str, request: NetworkReconfiguration) -> SubcloudView:
    """PATCH /subclouds/{ref} with the management network fields, by an operator: every §2.6
    rule, and a peer-group member only where its group has priority 0 and this site leads it."""

    async def guard(conn: AsyncConnection, subcloud: Subcloud) -> None:
        if subcloud.peer_group_id is not None:
            check_update_in_peer_group(subcloud, await peer_groups_db.get_peer_group(conn, subcloud.peer_group_id),
                                       ctx.site_uuid)

    return await start_reconfiguration(ctx, ref, request, guard)


async def start_reconfiguration(ctx: SiteContext, ref: str, request: NetworkReconfiguration,
                                guard: Callable[[AsyncConnection, Subcloud], Awaitable[None]],
                                by_region: bool = False) -> SubcloudView:
    """Every §2.6 rule and the caller's `guard`, then `reconfiguring-network` with the new
    network kept aside until the subcloud has moved."""
    async with ctx.engine.begin() as conn:
        await subclouds_db.lock_subcloud_changes(conn)  # the range check reads every other subcloud's
        subcloud = await _require(conn, ref, for_update=True, by_region=by_region)
        check_network_request(subcloud, request)
        await guard(conn, subcloud)
        address = bootstrap_address(request.bootstrap_address, "bootstrap_address")
        password = decode_password("sysadmin_password", request.sysadmin_password)
        subnet = str(request.management_subnet).strip()
        start, end = str(request.management_start_ip).strip(), str(request.management_end_ip).strip()
        candidates = await subclouds_db.overlap_candidates(conn, start, end, subnet, except_id=subcloud.id) \
            if _parses(subnet, start, end) else []
        change = new_network(subcloud, request, address, ctx.system_controller, candidates)
        await subclouds_db.apply_transition(conn, subcloud.id, transition(
            subcloud, deploy_status=DeployStatus.RECONFIGURING_NETWORK, error_description=NO_ERRORS,
            deploy_progress=0, operation_request=network_request_document(change, ctx.secrets.encrypt(password))))
        view = await _view(conn, await _require(conn, str(subcloud.id)))
    ctx.subclouds_changed()
    ctx.operations_wakeup.set()
    return view


def _parses(subnet: str, start: str, end: str) -> bool:
    """Whether the candidates query can take these values; if not, the validation names the bad one."""
    try:
        ipaddress.ip_network(subnet, strict=False)
        ipaddress.ip_address(start)
        ipaddress.ip_address(end)
    except ValueError:
        return False
    return True


async def prestage(ctx: SiteContext, ref: str, request: PrestageRequest) -> tuple[SubcloudView, str]:
    """POST /subclouds/{ref}/prestage: the reference's pre-checks, then `prestaging-packages`;
    the operations loop runs the packages and images phases. Returns the subcloud and the release."""
    async with ctx.engine.begin() as conn:
        subcloud = await _require(conn, ref, for_update=True)  # an unknown subcloud first, as the reference
        check_prestage(subcloud, request, await operations_db.management_alarms(conn, subcloud.id))
        if subcloud.peer_group_id is not None:
            group = await peer_groups_db.get_peer_group(conn, subcloud.peer_group_id)
            if group is not None and (group.group_priority > 0 or not group.led_by(ctx.site_uuid)):
                raise InvalidInput(f"Prestage skipped '{subcloud.name}': Subcloud is in peer group "
                                   f"{group.peer_group_name}, which another site leads.")
        await subclouds_db.apply_transition(conn, subcloud.id, transition(
            subcloud, prestage_status=PRESTAGING_PACKAGES, error_description=NO_ERRORS,
            operation_request=prestage_request_document(request, ctx.secrets.encrypt(request.sysadmin_password))))
        view = await _view(conn, await _require(conn, str(subcloud.id)))
    ctx.operations_wakeup.set()
    return view, request.release
