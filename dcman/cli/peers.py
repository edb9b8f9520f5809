"""`dcman site show` and `dcman system-peer ...`: the system peer commands of the dcmanager client."""

from __future__ import annotations

import base64
from typing import Any

import click

from dcman.cli.client import SiteClient, get_client, site_options
from dcman.cli.output import Column, format_option, render_list, render_one
from dcman.cli.client import ref_path

PEER_COLUMNS: list[Column] = [
    ("id", "id"),
    ("peer uuid", "peer-uuid"),
    ("peer name", "peer-name"),
    ("manager endpoint", "manager-endpoint"),
    ("controller gateway address", "peer-controller-gateway-address"),
    ("availability", "availability-state"),
]
PEER_GROUP_COLUMNS: list[Column] = [
    ("id", "id"),
    ("peer group name", "peer_group_name"),
    ("group priority", "group_priority"),
    ("group state", "group_state"),
    ("system leader id", "system_leader_id"),
    ("system leader name", "system_leader_name"),
    ("max subcloud rehoming", "max_subcloud_rehoming"),
]

_ADMIN_STATE = click.Choice(["enabled", "disabled"], case_sensitive=False)
_POLICY = click.Choice(["alarm", "rehome", "delegate"], case_sensitive=False)


@click.group("site")
@site_options
def site() -> None:
    """This site's identity (what a peer site needs to register it)."""


@site.command("show")
@format_option
def site_show(output_format: str) -> None:
    """Show this site's UUID and name."""
    render_one(get_client().get_object("/system"), output_format)


@click.group("system-peer")
@site_options
def system_peer() -> None:
    """Manage system peers (the other sites this one pairs with)."""


def _peer_options(required: bool) -> Any:
    """The dcmanager client's options; on add the identity and credentials are required."""

    def decorate(command: Any) -> Any:
        options = [
            click.option("--peer-uuid", required=required, help="UUID of the peer site (its `dcman site show`)."),
            click.option("--peer-name", required=required, help="Name of the peer site."),
            click.option("--manager-endpoint", required=required, help="Identity URL of the peer, e.g. https://host:port/v3."),
            click.option("--manager-username", required=required, help="Account name on the peer site."),
            click.option("--manager-password", required=required, help="Password of that account."),
            click.option("--peer-controller-gateway-address", required=required, help="Gateway IP towards the peer."),
            click.option("--administrative-state", type=_ADMIN_STATE, help="enabled (default) or disabled."),
            click.option("--heartbeat-interval", type=int, help="Seconds between heartbeats (10-600, default 60)."),
            click.option("--heartbeat-failure-threshold", type=int,
                         help="Failed heartbeats before the peer is declared down (1-30, default 3)."),
            click.option("--heartbeat-failure-policy", type=_POLICY, help="alarm (default), rehome or delegate."),
            click.option("--heartbeat-maintenance-timeout", type=int, help="Seconds (300-36000, default 600)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _request_body(options: dict[str, Any]) -> dict[str, Any]:
    body = {key: value for key, value in options.items() if value is not None}
    for key in ("administrative_state", "heartbeat_failure_policy"):
        if key in body:
            body[key] = body[key].lower()
    if "manager_password" in body:
        body["manager_password"] = base64.b64encode(body["manager_password"].encode()).decode()
    return body


@system_peer.command("add")
@_peer_options(required=True)
@format_option
def add(output_format: str, **options: Any) -> None:
    """Add a system peer."""
    answer = get_client().post("/system-peers", json=_request_body(options))
    render_one(SiteClient.expect_object(answer, "POST", "/system-peers"), output_format)


@system_peer.command("list")
@format_option
def list_peers(output_format: str) -> None:
    """List system peers."""
    render_list(get_client().get_list("/system-peers", "system_peers"), output_format, PEER_COLUMNS)


@system_peer.command("show")
@click.argument("peer", metavar="PEER")
@format_option
def show(peer: str, output_format: str) -> None:
    """Show a system peer (id, UUID or name)."""
    render_one(get_client().get_object(f"/system-peers/{ref_path(peer)}"), output_format)


@system_peer.command("update")
@click.argument("peer", metavar="PEER")
@_peer_options(required=False)
@format_option
def update(peer: str, output_format: str, **options: Any) -> None:
    """Update the attributes of a system peer."""
    body = _request_body(options)
    if not body:
        raise click.UsageError("Nothing to update: give at least one option (see --help).")
    path = f"/system-peers/{ref_path(peer)}"
    render_one(SiteClient.expect_object(get_client().patch(path, json=body), "PATCH", path), output_format)


@system_peer.command("delete")
@click.argument("peer", metavar="PEER")
def delete(peer: str) -> None:
    """Delete a system peer (it must have no peer group associations)."""
    get_client().delete(f"/system-peers/{ref_path(peer)}")


@system_peer.command("list-subcloud-peer-groups")
@click.argument("peer", metavar="PEER")
@format_option
def list_subcloud_peer_groups(peer: str, output_format: str) -> None:
    """List the subcloud peer groups associated with a system peer."""
    groups = get_client().get_list(f"/system-peers/{ref_path(peer)}/subcloud-peer-groups", "subcloud_peer_groups")
    render_list(groups, output_format, PEER_GROUP_COLUMNS)
