"""What a peer site asks of this one, each its own entry point: its association sync adds,
updates and removes its secondary copies here and their association, its migration asks this
site to let a subcloud go, and it names subclouds by region name. They share the operator's
rules (services.subclouds, services.associations) but skip the peer-group guards, which
protect a group from everyone but the site that syncs it (geo-redundancy reference §3, §4, §6)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from dcman.db import associations as associations_db
from dcman.db import peer_groups as peer_groups_db
from dcman.domain.commands import (
    AssociationUpdate,
    NetworkReconfiguration,
    NewAssociation,
    NewSubcloud,
    PeerGroupMove,
    SubcloudUpdate,
)
from dcman.domain.errors import InvalidInput
from dcman.domain.states import SECONDARY_STATES
from dcman.domain.subcloud import (
    Subcloud,
    check_copy_release,
    check_delete,
    check_management_change,
    check_release_mark,
)
from dcman.services import associations, subclouds
from dcman.services.context import SiteContext
from dcman.services.subcloud_ops import start_reconfiguration
from dcman.services.subclouds import SubcloudView


async def show_copy(ctx: SiteContext, ref: str) -> SubcloudView:
    """A subcloud by id, name or region name (the reference's peers name it by region)."""
    return await subclouds.get_subcloud(ctx, ref, by_region=True)


async def add_copy(ctx: SiteContext, command: NewSubcloud) -> SubcloudView:
    """POST /subclouds from the association sync: a secondary copy keeps its primary's region."""
    return await subclouds.store_subcloud(ctx, command)


async def update_copy(ctx: SiteContext, ref: str, update: SubcloudUpdate) -> SubcloudView:
    """PATCH /subclouds/{ref} from a peer site: its sync keeps a secondary copy like its primary
    (release, install and bootstrap values, peer group), its migration asks to let go (§4 step 4)."""

    async def rules(conn: AsyncConnection, subcloud: Subcloud) -> dict[str, object]:
        secondary = subcloud.deploy_status in SECONDARY_STATES
        changes = await subclouds.common_changes(conn, subcloud, update)
        if update.management_state is not None:
            changes.update(check_management_change(subcloud, update.management_state, update.force))
        target = changes.get("management_state")
        changes.update(check_release_mark(subcloud, update.migrate, None if target is None else str(target)))
        if update.release is not None:
            changes["software_version"] = check_copy_release(subcloud, update.release)
        # A secondary copy's install values were checked on its primary site already.
        changes.update(subclouds.install_changes(ctx, subcloud, update, validate=not secondary))
        if update.peer_group is not None:
            changes.update(await _place(conn, update.peer_group))
        changes.update(subclouds.rehome_changes(subcloud, changes, update))
        if secondary:  # a secondary copy is rehomed from these columns: they follow the primary's values
            changes.update(await subclouds.new_bootstrap_columns(ctx, conn, subcloud, update.bootstrap_values,
                                                                 update.bootstrap_address))
        return changes

    return await subclouds.apply_update(ctx, ref, update, rules, by_region=True)


async def _place(conn: AsyncConnection, move: PeerGroupMove) -> dict[str, object]:
    """The sync places its copies in the group's copy here, without the membership rules."""
    if move.ref is None:
        return {"peer_group_id": None}
    group = await peer_groups_db.get_peer_group(conn, move.ref)
    if group is None:
        raise InvalidInput(f"Invalid peer group {move.ref!r}: no such subcloud peer group.")
    return {"peer_group_id": group.id}


async def reconfigure_copy_network(ctx: SiteContext, ref: str, request: NetworkReconfiguration) -> SubcloudView:
    """A network reconfiguration a peer site asks: the §2.6 rules, without the peer-group guard."""

    async def no_guard(conn: AsyncConnection, subcloud: Subcloud) -> None:
        return None

    return await start_reconfiguration(ctx, ref, request, no_guard, by_region=True)


async def delete_copy(ctx: SiteContext, ref: str) -> None:
    """DELETE /subclouds/{ref} from a peer site removing its copy: managed or in a group, but
    not during an operation nor while online."""
    await subclouds.remove_subcloud(ctx, ref, check_delete, by_region=True)


async def copy_association(ctx: SiteContext, command: NewAssociation) -> associations_db.Association:
    """POST /peer-group-associations from the sync: the non-primary copy of its association."""
    return await associations.store_association(ctx, command)


async def update_association_copy(ctx: SiteContext, ref: str, update: AssociationUpdate) -> associations_db.Association:
    """PATCH from the sync: the priority, or the sync status it reports."""
    return await associations.change_association(ctx, ref, update)


async def delete_association_copy(ctx: SiteContext, ref: str) -> None:
    """DELETE from a peer site cleaning up its copies: the association alone."""
    await associations.remove_association(ctx, ref)
