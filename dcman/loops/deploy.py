"""The deploy reconciler: drives each new subcloud through its deploy steps.

In this slice a subcloud goes `not-deployed → creating → create-complete`. Each transition
is a compare-and-set on the row, so two processes (or a restart) never take a step twice.
"""

from __future__ import annotations

import asyncio
import logging

from dcman.db import repository as repo
from dcman.domain.deploy import RECOVERY
from dcman.domain.states import DeployStatus
from dcman.domain.subcloud import NO_ERRORS
from dcman.services.context import SiteContext

log = logging.getLogger("dcman.deploy")
IDLE_TICK_S = 2.0
BATCH = 100


async def recover_interrupted(ctx: SiteContext) -> None:
    """At start-up: steps cut short by a crash go to their failure state."""
    async with ctx.engine.begin() as conn:
        for running, failed in RECOVERY.items():
            for subcloud_id in await repo.subcloud_ids_in_state(conn, running.value, limit=1_000_000):
                await repo.update_subcloud(
                    conn,
                    subcloud_id,
                    {"deploy_status": failed.value,
                     "error_description": f"The site restarted while the subcloud was {running.value}."},
                    only_if={"deploy_status": running.value},
                )
                log.warning("subcloud %s: %s interrupted by a restart -> %s", subcloud_id, running, failed)


async def _create(ctx: SiteContext, subcloud_id: int) -> None:
    """The create step: claim the subcloud, prepare it, mark it create-complete."""
    async with ctx.engine.begin() as conn:
        claimed = await repo.update_subcloud(
            conn, subcloud_id, {"deploy_status": DeployStatus.CREATING.value},
            only_if={"deploy_status": DeployStatus.NOT_DEPLOYED.value},
        )
    if not claimed:
        return
    log.info("subcloud %s: not-deployed -> creating", subcloud_id)
    # Nothing has to be set up on the site for a subcloud: its agent URL derives from its
    # management start address. The phases that follow come with the deploy orchestration.
    async with ctx.engine.begin() as conn:
        await repo.update_subcloud(
            conn, subcloud_id,
            {"deploy_status": DeployStatus.CREATE_COMPLETE.value, "error_description": NO_ERRORS},
            only_if={"deploy_status": DeployStatus.CREATING.value},
        )
    log.info("subcloud %s: creating -> create-complete", subcloud_id)


async def run(ctx: SiteContext) -> None:
    """Reconcile forever; woken early by `ctx.deploy_wakeup` when a subcloud is added."""
    await recover_interrupted(ctx)
    while True:
        ctx.deploy_wakeup.clear()
        pending: list[int] = []
        try:
            async with ctx.engine.connect() as conn:
                pending = await repo.subcloud_ids_in_state(conn, DeployStatus.NOT_DEPLOYED.value, BATCH)
            for subcloud_id in pending:
                await _create(ctx, subcloud_id)
        except Exception:  # a database hiccup must not kill the loop; next tick retries
            log.exception("deploy reconciler tick failed")
        if len(pending) == BATCH:  # more are waiting: no pause
            continue
        try:
            await asyncio.wait_for(ctx.deploy_wakeup.wait(), IDLE_TICK_S)
        except TimeoutError:
            pass
