"""`dcman subcloud-peer-group ...`: the subcloud peer group commands of the dcmanager client."""

from __future__ import annotations

import base64
import time
from typing import Any

import click

from dcman.cli.client import SiteClient, get_client, site_options
from dcman.cli.groups import SUBCLOUD_COLUMNS
from dcman.cli.output import format_option, render_list, render_one
from dcman.cli.client import ref_path

_STATE = click.Choice(["enabled", "disabled"], case_sensitive=False)
_PRIORITY = click.IntRange(0, 65536)
_REHOMING = click.IntRange(1, 250)


def _path(group: str, verb: str = "") -> str:
    return f"/subcloud-peer-groups/{ref_path(group)}{verb}"


def _fields(peer_group_name: str | None, group_priority: int | None, group_state: str | None,
            max_subcloud_rehoming: int | None, system_leader_id: str | None,
            system_leader_name: str | None) -> dict[str, Any]:
    given = {
        "peer-group-name": peer_group_name,
        "group-priority": group_priority,
        "group-state": group_state.lower() if group_state else None,
        "max-subcloud-rehoming": max_subcloud_rehoming,
        "system-leader-id": system_leader_id,
        "system-leader-name": system_leader_name,
    }
    return {key: value for key, value in given.items() if value is not None}


def _group_options(command: Any) -> Any:
    for option in reversed([
        click.option("--group-priority", type=_PRIORITY, help="Priority of the group on this site (0: primary)."),
        click.option("--group-state", type=_STATE, help="enabled or disabled."),
        click.option("--max-subcloud-rehoming", type=_REHOMING, help="Most subclouds rehomed at once."),
        click.option("--system-leader-id", help="UUID of the site leading the group."),
        click.option("--system-leader-name", help="Name of the site leading the group."),
    ]):
        command = option(command)
    return command


@click.group("subcloud-peer-group")
@site_options
def subcloud_peer_group() -> None:
    """Manage subcloud peer groups."""


@subcloud_peer_group.command("list")
@format_option
def list_peer_groups(output_format: str) -> None:
    """List subcloud peer groups."""
    render_list(get_client().get_list("/subcloud-peer-groups", "subcloud_peer_groups"), output_format)


@subcloud_peer_group.command("show")
@click.argument("group", metavar="GROUP")
@format_option
def show(group: str, output_format: str) -> None:
    """Show the details of a subcloud peer group (name or id)."""
    render_one(get_client().get_object(_path(group)), output_format)


@subcloud_peer_group.command("add")
@click.option("--peer-group-name", required=True, help="Name of the subcloud peer group.")
@_group_options
@format_option
def add(peer_group_name: str, group_priority: int | None, group_state: str | None,
        max_subcloud_rehoming: int | None, system_leader_id: str | None, system_leader_name: str | None,
        output_format: str) -> None:
    """Add a new subcloud peer group (led by this site unless told otherwise)."""
    body = _fields(peer_group_name, group_priority, group_state, max_subcloud_rehoming, system_leader_id,
                   system_leader_name)
    answer = get_client().post("/subcloud-peer-groups", json=body)
    render_one(SiteClient.expect_object(answer, "POST", "/subcloud-peer-groups"), output_format)


@subcloud_peer_group.command("update")
@click.argument("group", metavar="GROUP")
@click.option("--peer-group-name", help="New name of the subcloud peer group.")
@_group_options
@click.option("--sysadmin-password", help="The subclouds' sysadmin password, kept (sealed) so that this site may "
                                          "fail the group over by itself (heartbeat policy rehome).")
@format_option
def update(group: str, peer_group_name: str | None, group_priority: int | None, group_state: str | None,
           max_subcloud_rehoming: int | None, system_leader_id: str | None, system_leader_name: str | None,
           sysadmin_password: str | None, output_format: str) -> None:
    """Update the attributes of a subcloud peer group."""
    body = _fields(peer_group_name, group_priority, group_state, max_subcloud_rehoming, system_leader_id,
                   system_leader_name)
    if sysadmin_password is not None:
        body["sysadmin_password"] = base64.b64encode(sysadmin_password.encode()).decode("ascii")
    if not body:
        raise click.UsageError("Nothing to update: give --peer-group-name, --group-priority, --group-state, "
                               "--max-subcloud-rehoming, --system-leader-id, --system-leader-name or "
                               "--sysadmin-password.")
    answer = get_client().patch(_path(group), json=body)
    render_one(SiteClient.expect_object(answer, "PATCH", _path(group)), output_format)


@subcloud_peer_group.command("delete")
@click.argument("group", metavar="GROUP")
def delete(group: str) -> None:
    """Delete a subcloud peer group (it must have no subclouds and no associations)."""
    get_client().delete(_path(group))


@subcloud_peer_group.command("list-subclouds")
@click.argument("group", metavar="GROUP")
@format_option
def list_subclouds(group: str, output_format: str) -> None:
    """List the subclouds of a subcloud peer group."""
    render_list(get_client().get_list(_path(group, "/subclouds"), "subclouds"), output_format, SUBCLOUD_COLUMNS)


@subcloud_peer_group.command("status")
@click.argument("group", metavar="GROUP")
@format_option
def status(group: str, output_format: str) -> None:
    """Show the rehoming status counts of a subcloud peer group's subclouds."""
    render_one(get_client().get_object(_path(group, "/status")), output_format)


@subcloud_peer_group.command("migrate")
@click.argument("group", metavar="GROUP")
@click.option("--sysadmin-password", required=True, help="The subclouds' sysadmin password.")
@click.option("--wait", is_flag=True, help="Wait until the migration is no longer running.")
@click.option("--timeout", type=float, default=1800.0, show_default=True, help="Seconds --wait waits at most.")
@format_option
def migrate(group: str, sysadmin_password: str, wait: bool, timeout: float, output_format: str) -> None:
    """Migrate (rehome) the subclouds of a peer group to this site."""
    client = get_client()
    password = base64.b64encode(sysadmin_password.encode()).decode("ascii")
    answer = client.patch(_path(group, "/migrate"), json={"sysadmin_password": password})
    shown = SiteClient.expect_object(answer, "PATCH", _path(group, "/migrate"))
    if wait:
        deadline = time.monotonic() + timeout
        said = None
        while shown.get("migration_status") == "migrating":
            if time.monotonic() > deadline:
                raise click.ClickException(f"The migration of peer group {group} is still running after "
                                           f"{timeout:g} s.")
            time.sleep(1.0)
            shown = client.get_object(_path(group))
            waiting = client.get_object(_path(group, "/status")).get("migration_message")
            if waiting and waiting != said:  # e.g. the old site neither answers nor is declared down yet
                click.echo(waiting, err=True)
            said = waiting
        render_one(client.get_object(_path(group, "/status")), output_format)
        return
    if output_format.lower() == "table":  # the queued subclouds by name, not as whole objects
        shown = {**shown, "subclouds": ", ".join(s["name"] for s in shown.get("subclouds", []))}
    render_one(shown, output_format)
