"""`dcman peer-group-association ...`: the association commands of the dcmanager client."""

from __future__ import annotations

import click

from dcman.cli.client import SiteClient, get_client, site_options
from dcman.cli.output import format_option, render_list, render_one

PATH = "/peer-group-associations"


@click.group("peer-group-association")
@site_options
def peer_group_association() -> None:
    """Manage peer group associations (a subcloud peer group protected with a system peer)."""


@peer_group_association.command("list")
@format_option
def list_associations(output_format: str) -> None:
    """List peer group associations."""
    render_list(get_client().get_list(PATH, "peer_group_associations"), output_format)


@peer_group_association.command("show")
@click.argument("association_id", metavar="ID")
@format_option
def show(association_id: str, output_format: str) -> None:
    """Show one association."""
    render_one(get_client().get_object(f"{PATH}/{association_id}"), output_format)


@peer_group_association.command("add")
@click.option("--peer-group-id", required=True, type=int, help="ID of the local subcloud peer group.")
@click.option("--system-peer-id", required=True, type=int, help="ID of the system peer.")
@click.option("--peer-group-priority", type=click.IntRange(1, 65536), default=1, show_default=True,
              help="Priority the group gets on the peer site.")
@format_option
def add(peer_group_id: int, system_peer_id: int, peer_group_priority: int, output_format: str) -> None:
    """Associate a peer group with a system peer; the group is then synced to the peer site."""
    body = {"peer_group_id": peer_group_id, "system_peer_id": system_peer_id,
            "peer_group_priority": peer_group_priority}
    render_one(SiteClient.expect_object(get_client().post(PATH, json=body), "POST", PATH), output_format)


@peer_group_association.command("update")
@click.argument("association_id", metavar="ID")
@click.option("--peer-group-priority", type=click.IntRange(1, 65536), required=True,
              help="New priority of the group on the peer site.")
@format_option
def update(association_id: str, peer_group_priority: int, output_format: str) -> None:
    """Change the group's priority on the peer site (and sync again)."""
    answer = get_client().patch(f"{PATH}/{association_id}", json={"peer_group_priority": peer_group_priority})
    render_one(SiteClient.expect_object(answer, "PATCH", PATH), output_format)


@peer_group_association.command("sync")
@click.argument("association_id", metavar="ID")
@format_option
def sync(association_id: str, output_format: str) -> None:
    """Sync the association to the peer site now."""
    answer = get_client().patch(f"{PATH}/{association_id}/sync", json={})
    render_one(SiteClient.expect_object(answer, "PATCH", PATH), output_format)


@peer_group_association.command("delete")
@click.argument("association_id", metavar="ID")
def delete(association_id: str) -> None:
    """Delete an association (and the peer site's copies, when it is reachable)."""
    get_client().delete(f"{PATH}/{association_id}")
