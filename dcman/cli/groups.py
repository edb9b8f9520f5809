"""`dcman subcloud-group ...`: the subcloud group commands of the dcmanager client."""

from __future__ import annotations

import click

from dcman.cli.client import SiteClient, get_client, site_options
from dcman.cli.output import Column, format_option, render_list, render_one
from dcman.cli.client import ref_path

DEFAULT_DESCRIPTION = "No description provided"

SUBCLOUD_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("description", "description"),
    ("location", "location"),
    ("management", "management-state"),
    ("availability", "availability-status"),
    ("deploy status", "deploy-status"),
]

_APPLY_TYPE = click.Choice(["parallel", "serial"], case_sensitive=False)


@click.group("subcloud-group")
@site_options
def subcloud_group() -> None:
    """Manage subcloud groups."""


@subcloud_group.command("list")
@format_option
def list_groups(output_format: str) -> None:
    """List subcloud groups."""
    render_list(get_client().get_list("/subcloud-groups", "subcloud_groups"), output_format)


@subcloud_group.command("show")
@click.argument("group", metavar="GROUP")
@format_option
def show(group: str, output_format: str) -> None:
    """Show the details of a subcloud group (name or id)."""
    render_one(get_client().get_object(f"/subcloud-groups/{ref_path(group)}"), output_format)


@subcloud_group.command("add")
@click.option("--name", required=True, help="Name of the subcloud group.")
@click.option(
    "--description",
    default=DEFAULT_DESCRIPTION,
    show_default=True,
    help="Description of the subcloud group.",
)
@click.option(
    "--update-apply-type",
    type=_APPLY_TYPE,
    default="parallel",
    show_default=True,
    help="Whether the group's subclouds are updated in parallel or one at a time.",
)
@click.option(
    "--max-parallel-subclouds",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Most subclouds of the group updated at once.",
)
@format_option
def add(
    name: str,
    description: str,
    update_apply_type: str,
    max_parallel_subclouds: int,
    output_format: str,
) -> None:
    """Add a new subcloud group."""
    body = {
        "name": name,
        "description": description,
        "update_apply_type": update_apply_type.lower(),
        "max_parallel_subclouds": max_parallel_subclouds,
    }
    answer = get_client().post("/subcloud-groups", json=body)
    render_one(SiteClient.expect_object(answer, "POST", "/subcloud-groups"), output_format)


@subcloud_group.command("update")
@click.argument("group", metavar="GROUP")
@click.option("--name", help="New name of the subcloud group.")
@click.option("--description", help="New description of the subcloud group.")
@click.option("--update-apply-type", type=_APPLY_TYPE, help="parallel or serial.")
@click.option(
    "--max-parallel-subclouds",
    type=click.IntRange(min=1),
    help="Most subclouds of the group updated at once.",
)
@format_option
def update(
    group: str,
    name: str | None,
    description: str | None,
    update_apply_type: str | None,
    max_parallel_subclouds: int | None,
    output_format: str,
) -> None:
    """Update the attributes of a subcloud group."""
    body: dict[str, object] = {}
    if name is not None:
        body["name"] = name
    if description is not None:
        body["description"] = description
    if update_apply_type is not None:
        body["update_apply_type"] = update_apply_type.lower()
    if max_parallel_subclouds is not None:
        body["max_parallel_subclouds"] = max_parallel_subclouds
    if not body:
        raise click.UsageError(
            "Nothing to update: give --name, --description, --update-apply-type "
            "or --max-parallel-subclouds."
        )
    path = f"/subcloud-groups/{ref_path(group)}"
    answer = get_client().patch(path, json=body)
    render_one(SiteClient.expect_object(answer, "PATCH", path), output_format)


@subcloud_group.command("delete")
@click.argument("group", metavar="GROUP")
def delete(group: str) -> None:
    """Delete a subcloud group (it must have no subclouds)."""
    get_client().delete(f"/subcloud-groups/{ref_path(group)}")


@subcloud_group.command("list-subclouds")
@click.argument("group", metavar="GROUP")
@format_option
def list_subclouds(group: str, output_format: str) -> None:
    """List the subclouds of a subcloud group."""
    subclouds = get_client().get_list(f"/subcloud-groups/{ref_path(group)}/subclouds", "subclouds")
    render_list(subclouds, output_format, SUBCLOUD_COLUMNS)
