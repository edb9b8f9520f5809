"""`dcman subcloud ...`: the subcloud commands of the dcmanager client, against a dcman site."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import click

from dcman.cli.client import SiteClient, get_client, site_options
from dcman.cli.output import Column, format_option, render_list, render_one

LIST_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("management", "management-state"),
    ("availability", "availability-status"),
    ("deploy status", "deploy-status"),
    ("sync", "sync_status"),
]


def ref_path(ref: str) -> str:
    """URL path segment of an object named by id or name."""
    return quote(str(ref), safe="")


def subcloud_rows(subcloud: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Field/Value rows of a subcloud; per-endpoint sync statuses become their own rows."""
    rows: list[tuple[str, Any]] = []
    for key, value in subcloud.items():
        if key == "endpoint_sync_status" and isinstance(value, list):
            for status in value:
                if isinstance(status, Mapping) and "endpoint_type" in status:
                    rows.append(
                        (f"{status['endpoint_type']}_sync_status", status.get("sync_status"))
                    )
                else:
                    rows.append((key, status))
        else:
            rows.append((key, value))
    return rows


def show_subcloud(subcloud: Mapping[str, Any], output_format: str) -> None:
    render_one(subcloud, output_format, subcloud_rows(subcloud))


def _patch_and_show(subcloud_ref: str, body: dict[str, Any], output_format: str) -> None:
    path = f"/subclouds/{ref_path(subcloud_ref)}"
    answer = get_client().patch(path, json=body)
    show_subcloud(SiteClient.expect_object(answer, "PATCH", path), output_format)


def b64(secret: str) -> str:
    return base64.b64encode(secret.encode("utf-8")).decode("ascii")


def _secret(value: str | None, option: str, prompt: str) -> str:
    """A password given as an option, else asked for on a terminal, else a usage error."""
    if value is not None:
        return value
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    raise click.UsageError(f"Missing option '{option}'.")


_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@click.group("subcloud")
@site_options
def subcloud() -> None:
    """Manage subclouds."""


@subcloud.command("list")
@format_option
def list_subclouds(output_format: str) -> None:
    """List subclouds."""
    render_list(get_client().get_list("/subclouds", "subclouds"), output_format, LIST_COLUMNS)


@subcloud.command("show")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
@click.option("-d", "--detail", is_flag=True, help="Show additional details for a subcloud.")
@format_option
def show(subcloud_ref: str, detail: bool, output_format: str) -> None:
    """Show the details of a subcloud (name or id)."""
    path = f"/subclouds/{ref_path(subcloud_ref)}"
    if detail:
        path += "/detail"
    show_subcloud(get_client().get_object(path), output_format)


@subcloud.command("add")
@click.option(
    "--bootstrap-address", required=True, help="IP address for initial subcloud controller."
)
@click.option(
    "--bootstrap-values",
    required=True,
    type=_FILE,
    help="YAML file with the parameters of the subcloud's bootstrap.",
)
@click.option(
    "--deploy-config",
    type=_FILE,
    help="YAML file with the parameters of the initial configuration and unlock.",
)
@click.option(
    "--install-values",
    type=_FILE,
    help="YAML file with the parameters of the remote install.",
)
@click.option(
    "--sysadmin-password",
    help="sysadmin password of the subcloud (asked for on a terminal when omitted).",
)
@click.option(
    "--bmc-password",
    help="BMC password of the subcloud; only with --install-values "
    "(asked for on a terminal when omitted).",
)
@click.option("--group", help="Name or ID of the subcloud group.")
@click.option("--description", help="Description of the subcloud.")
@click.option("--location", help="Location of the subcloud.")
@click.option("--release", help="Software release to deploy the subcloud with.")
@format_option
def add(
    bootstrap_address: str,
    bootstrap_values: Path,
    deploy_config: Path | None,
    install_values: Path | None,
    sysadmin_password: str | None,
    bmc_password: str | None,
    group: str | None,
    description: str | None,
    location: str | None,
    release: str | None,
    output_format: str,
) -> None:
    """Add a new subcloud."""
    if bmc_password is not None and install_values is None:
        raise click.UsageError("--bmc-password is only valid with --install-values.")
    data: dict[str, str] = {
        "bootstrap-address": bootstrap_address,
        "sysadmin_password": b64(
            _secret(sysadmin_password, "--sysadmin-password", "sysadmin password")
        ),
    }
    if install_values is not None:
        data["bmc_password"] = b64(_secret(bmc_password, "--bmc-password", "BMC password"))
    for key, value in (
        ("group_id", group),
        ("description", description),
        ("location", location),
        ("release", release),
    ):
        if value is not None:
            data[key] = value
    files: dict[str, tuple[str, bytes, str]] = {}
    for part, path in (
        ("bootstrap_values", bootstrap_values),
        ("install_values", install_values),
        ("deploy_config", deploy_config),
    ):
        if path is not None:
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise click.FileError(str(path), hint=exc.strerror or str(exc)) from None
            files[part] = (path.name, content, "application/x-yaml")
    answer = get_client().post("/subclouds", data=data, files=files)
    show_subcloud(SiteClient.expect_object(answer, "POST", "/subclouds"), output_format)


@subcloud.command("update")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
@click.option("--description", help="New description of the subcloud.")
@click.option("--location", help="New location of the subcloud.")
@click.option("--group", help="Name or ID of the subcloud's new group.")
@click.option("--name", help="New name of the subcloud.")
@click.option("--deploy-status", type=click.Choice(["complete"]),
              help="Mark a create-complete subcloud deployed (until dcman runs the deploy phases).")
@format_option
def update(
    subcloud_ref: str,
    description: str | None,
    location: str | None,
    group: str | None,
    name: str | None,
    deploy_status: str | None,
    output_format: str,
) -> None:
    """Update the attributes of a subcloud."""
    body = {
        key: value
        for key, value in (
            ("description", description),
            ("location", location),
            ("group_id", group),
            ("name", name),
            ("deploy-status", deploy_status),
        )
        if value is not None
    }
    if not body:
        raise click.UsageError(
            "Nothing to update: give --description, --location, --group, --name or --deploy-status."
        )
    _patch_and_show(subcloud_ref, body, output_format)


@subcloud.command("manage")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
@click.option(
    "--force",
    is_flag=True,
    help="Disregard the subcloud's availability status (for recovery scenarios).",
)
@format_option
def manage(subcloud_ref: str, force: bool, output_format: str) -> None:
    """Manage a subcloud."""
    body = {"management-state": "managed"}
    if force:
        body["force"] = "true"
    _patch_and_show(subcloud_ref, body, output_format)


@subcloud.command("unmanage")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
@format_option
def unmanage(subcloud_ref: str, output_format: str) -> None:
    """Unmanage a subcloud."""
    _patch_and_show(subcloud_ref, {"management-state": "unmanaged"}, output_format)


@subcloud.command("delete")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
def delete(subcloud_ref: str) -> None:
    """Delete a subcloud (it must be unmanaged and offline)."""
    get_client().delete(f"/subclouds/{ref_path(subcloud_ref)}")
