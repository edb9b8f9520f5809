"""`dcman subcloud ...`: the subcloud commands of the dcmanager client, against a dcman site."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any, Callable

import click

from dcman.cli.client import SiteClient, get_client, ref_path, site_options
from dcman.cli.follow import follow
from dcman.cli.output import Column, format_option, render_list
from dcman.cli.subcloud_view import show_subcloud

LIST_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("management", "management-state"),
    ("availability", "availability-status"),
    ("deploy status", "deploy-status"),
    ("progress", "deploy-progress"),
    ("sync", "sync_status"),
]


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


FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


def phase_request(
    *,
    install_values: Path | None = None,
    bootstrap_values: Path | None = None,
    deploy_config: Path | None = None,
    bmc_password: str | None = None,
    sysadmin_password: str | None = None,
    bootstrap_address: str | None = None,
    release: str | None = None,
) -> dict[str, Any]:
    """The body of a deploy phase, resume or redeploy request, as `request()` keywords.

    Multipart when a file is given (file parts `install_values`, `bootstrap_values`,
    `deploy_config`), JSON otherwise; passwords are base64-encoded. A BMC password goes
    with the install values (asked for on a terminal when omitted); the site takes a
    release and a BMC password only together with new install values.
    """
    if install_values is None:
        for option, value in (("--bmc-password", bmc_password), ("--release", release)):
            if value is not None:
                raise click.UsageError(f"{option} is only valid with --install-values.")
    fields: dict[str, str] = {}
    if sysadmin_password is not None:
        fields["sysadmin_password"] = b64(sysadmin_password)
    if install_values is not None:
        fields["bmc_password"] = b64(_secret(bmc_password, "--bmc-password", "BMC password"))
    if bootstrap_address is not None:
        fields["bootstrap-address"] = bootstrap_address
    if release is not None:
        fields["release"] = release
    files = {
        part: read_part(path)
        for part, path in (
            ("install_values", install_values),
            ("bootstrap_values", bootstrap_values),
            ("deploy_config", deploy_config),
        )
        if path is not None
    }
    if files:
        return {"data": fields, "files": files}
    return {"json": fields}


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


def read_part(path: Path) -> tuple[str, bytes, str]:
    """A file given on the command line as a multipart file part."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise click.FileError(str(path), hint=exc.strerror or str(exc)) from None
    return (path.name, content, "application/x-yaml")


def add_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of `subcloud add`, shared with `subcloud deploy create`."""
    for option in reversed([
        click.option(
            "--bootstrap-address", required=True, help="IP address for initial subcloud controller."
        ),
        click.option(
            "--bootstrap-values",
            required=True,
            type=FILE,
            help="YAML file with the parameters of the subcloud's bootstrap.",
        ),
        click.option(
            "--deploy-config",
            type=FILE,
            help="YAML file with the parameters of the initial configuration and unlock.",
        ),
        click.option(
            "--install-values",
            type=FILE,
            help="YAML file with the parameters of the remote install.",
        ),
        click.option(
            "--sysadmin-password",
            help="sysadmin password of the subcloud (asked for on a terminal when omitted).",
        ),
        click.option(
            "--bmc-password",
            help="BMC password of the subcloud; only with --install-values "
            "(asked for on a terminal when omitted).",
        ),
        click.option("--group", help="Name or ID of the subcloud group."),
        click.option("--description", help="Description of the subcloud."),
        click.option("--location", help="Location of the subcloud."),
        click.option("--release", help="Software release to deploy the subcloud with."),
    ]):
        command = option(command)
    return command


def add_request(
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
) -> dict[str, Any]:
    """The multipart `data=`/`files=` of a subcloud add (or a phased deploy's create)."""
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
            files[part] = read_part(path)
    return {"data": data, "files": files}


def wait_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--wait`: follow the deploy with a progress bar until it ends."""
    return click.option(
        "--wait",
        is_flag=True,
        help="Wait until the deploy ends, showing its progress; exit 1 if it fails.",
    )(command)


def deploy_answer(
    client: SiteClient,
    answer: Any,
    method: str,
    path: str,
    output_format: str,
    wait: bool,
    expected: frozenset[str],
) -> None:
    """Show the subcloud a deploy request answered; with --wait, follow the deploy first."""
    subcloud_obj = SiteClient.expect_object(answer, method, path)
    if wait:
        follow(client, subcloud_obj, expected, output_format)
    else:
        show_subcloud(subcloud_obj, output_format)


@subcloud.command("add")
@add_options
@click.option("--migrate", is_flag=True, help="Adopt a subcloud another system controller deployed: rehome it to "
              "this site instead of deploying it.")
@wait_option
@format_option
def add(output_format: str, wait: bool, migrate: bool, **options: Any) -> None:
    """Add a new subcloud (and deploy it: install, bootstrap, config), or with --migrate adopt
    a deployed one (rehome)."""
    if migrate and options.get("deploy_config") is not None:
        raise click.UsageError("--migrate and --deploy-config cannot be given together.")
    client = get_client()
    request = add_request(**options)
    if migrate:
        request["data"]["migrate"] = "true"
    answer = client.post("/subclouds", **request)
    deploy_answer(client, answer, "POST", "/subclouds", output_format, wait, frozenset({"complete"}))


@subcloud.command("redeploy")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
@click.option(
    "--install-values", type=FILE, help="YAML file with the parameters of the remote install."
)
@click.option(
    "--bootstrap-values",
    type=FILE,
    help="YAML file with the parameters of the subcloud's bootstrap.",
)
@click.option(
    "--deploy-config",
    type=FILE,
    help="YAML file with the parameters of the initial configuration and unlock.",
)
@click.option(
    "--bmc-password",
    help="BMC password of the subcloud; only with --install-values "
    "(asked for on a terminal when omitted).",
)
@click.option("--sysadmin-password", help="sysadmin password of the subcloud.")
@click.option("--release", help="Software release to redeploy the subcloud with.")
@wait_option
@format_option
def redeploy(
    subcloud_ref: str,
    install_values: Path | None,
    bootstrap_values: Path | None,
    deploy_config: Path | None,
    bmc_password: str | None,
    sysadmin_password: str | None,
    release: str | None,
    wait: bool,
    output_format: str,
) -> None:
    """Redeploy an offline, unmanaged subcloud: install, bootstrap and config again."""
    body = phase_request(
        install_values=install_values,
        bootstrap_values=bootstrap_values,
        deploy_config=deploy_config,
        bmc_password=bmc_password,
        sysadmin_password=sysadmin_password,
        release=release,
    )
    path = f"/subclouds/{ref_path(subcloud_ref)}/redeploy"
    client = get_client()
    answer = client.patch(path, **body)
    deploy_answer(client, answer, "PATCH", path, output_format, wait, frozenset({"complete"}))


@subcloud.command("errors")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
def errors(subcloud_ref: str) -> None:
    """Show the error description of a subcloud's last deploy failure."""
    path = f"/subclouds/{ref_path(subcloud_ref)}"
    shown = get_client().get_object(path)
    description = shown.get("error-description")
    click.echo(description if description not in (None, "") else "No errors present")


@subcloud.command("update")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
@click.option("--description", help="New description of the subcloud.")
@click.option("--location", help="New location of the subcloud.")
@click.option("--group", help="Name or ID of the subcloud's new group.")
@click.option("--name", help="New name of the subcloud.")
@click.option("--peer-group", help="Name or ID of the subcloud peer group to join, or none to leave it.")
@click.option("--install-values", type=FILE, help="YAML file with the parameters of the subcloud's remote install.")
@click.option(
    "--bmc-password",
    help="BMC password of the subcloud; with --install-values (asked for on a terminal when omitted), "
    "or alone to replace the stored one.",
)
@click.option(
    "--bootstrap-values",
    type=FILE,
    help="YAML file with the bootstrap values a peer site needs to take the subcloud over (rehome data).",
)
@click.option("--bootstrap-address", help="Bootstrap address saved in the subcloud's rehome data; with the "
              "management network options, the address to reach the subcloud at while it is readdressed.")
@click.option("--management-subnet", help="Network reconfiguration: the subcloud's new management subnet.")
@click.option("--management-gateway-ip", help="Network reconfiguration: its new management gateway address.")
@click.option("--management-start-ip", help="Network reconfiguration: the first address of its new range.")
@click.option("--management-end-ip", help="Network reconfiguration: the last address of its new range.")
@click.option("--sysadmin-password", help="Network reconfiguration: sysadmin password of the subcloud "
              "(asked for on a terminal when omitted).")
@click.option("--wait", is_flag=True, help="Network reconfiguration: follow it until it is complete or failed "
              "(exit status 1 when it failed).")
@format_option
def update(
    subcloud_ref: str,
    description: str | None,
    location: str | None,
    group: str | None,
    name: str | None,
    peer_group: str | None,
    install_values: Path | None,
    bmc_password: str | None,
    bootstrap_values: Path | None,
    bootstrap_address: str | None,
    management_subnet: str | None,
    management_gateway_ip: str | None,
    management_start_ip: str | None,
    management_end_ip: str | None,
    sysadmin_password: str | None,
    wait: bool,
    output_format: str,
) -> None:
    """Update the attributes, install values or rehome data of a subcloud, or reconfigure its
    management network (all four management options, --bootstrap-address and the password)."""
    network = {key: value for key, value in (
        ("management_subnet", management_subnet), ("management_gateway_ip", management_gateway_ip),
        ("management_start_ip", management_start_ip), ("management_end_ip", management_end_ip)) if value is not None}
    body = {
        key: value
        for key, value in (
            ("description", description),
            ("location", location),
            ("group_id", group),
            ("name", name),
            ("peer_group", peer_group),
            ("bootstrap_address", bootstrap_address),
        )
        if value is not None
    }
    if network:  # the site names whatever else a reconfiguration needs
        body.update(network)
        body["sysadmin_password"] = b64(_secret(sysadmin_password, "--sysadmin-password", "sysadmin password"))
    elif sysadmin_password is not None or wait:
        raise click.UsageError("--sysadmin-password and --wait go with the management network options.")
    if install_values is not None:  # as the dcmanager client: the BMC password goes with the values
        bmc_password = _secret(bmc_password, "--bmc-password", "BMC password")
    if bmc_password is not None:
        body["bmc_password"] = b64(bmc_password)
    files = {
        part: read_part(path)
        for part, path in (("install_values", install_values), ("bootstrap_values", bootstrap_values))
        if path is not None
    }
    if not body and not files:
        raise click.UsageError(
            "Nothing to update: give --description, --location, --group, --name, --peer-group, "
            "--install-values, --bmc-password, --bootstrap-values, --bootstrap-address or the management "
            "network options."
        )
    if files:  # multipart, as the dcmanager client sends files
        path = f"/subclouds/{ref_path(subcloud_ref)}"
        answer = get_client().patch(path, data=body, files=files)
        show_subcloud(SiteClient.expect_object(answer, "PATCH", path), output_format)
        return
    if network:
        client, path = get_client(), f"/subclouds/{ref_path(subcloud_ref)}"
        deploy_answer(client, client.patch(path, json=body), "PATCH", path, output_format, wait,
                      frozenset({"complete"}))
        return
    _patch_and_show(subcloud_ref, body, output_format)


@subcloud.command("prestage")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
@click.option("--sysadmin-password", help="sysadmin password of the subcloud (asked for on a terminal when omitted).")
@click.option("--release", help="Software release to prestage (MM.mm); the site's when omitted.")
@click.option("--force", is_flag=True, help="Prestage even with management-affecting alarms on the subcloud.")
@click.option("--for-install", is_flag=True, help="Prestage for a subcloud install (the default).")
@click.option("--for-sw-deploy", is_flag=True, help="Prestage for a software deploy.")
@click.option("--wait", is_flag=True, help="Follow the prestage until it is complete or failed "
              "(exit status 1 when it failed).")
@format_option
def prestage(subcloud_ref: str, sysadmin_password: str | None, release: str | None, force: bool,
             for_install: bool, for_sw_deploy: bool, wait: bool, output_format: str) -> None:
    """Prestage a managed, online subcloud: packages, then container images (prestage-status)."""
    if for_install and for_sw_deploy:
        raise click.UsageError("--for-install and --for-sw-deploy cannot be given together.")
    body: dict[str, Any] = {"sysadmin_password": b64(_secret(sysadmin_password, "--sysadmin-password",
                                                             "sysadmin password")),
                            "force": "true" if force else "false"}
    if release is not None:
        body["release"] = release
    if for_sw_deploy:
        body["for_sw_deploy"] = "true"
    elif for_install:
        body["for_install"] = "true"
    client, path = get_client(), f"/subclouds/{ref_path(subcloud_ref)}/prestage"
    subcloud_obj = SiteClient.expect_object(client.patch(path, json=body), "PATCH", path)
    if wait:
        follow(client, subcloud_obj, frozenset({"complete"}), output_format, key="prestage-status")
    else:
        show_subcloud(subcloud_obj, output_format)


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
@click.option(
    "--migrate",
    is_flag=True,
    help="Also mark the subcloud rehome-pending for an upcoming migration (its deploy must be complete).",
)
@format_option
def unmanage(subcloud_ref: str, migrate: bool, output_format: str) -> None:
    """Unmanage a subcloud."""
    body = {"management-state": "unmanaged"}
    if migrate:
        body["migrate"] = "true"
    _patch_and_show(subcloud_ref, body, output_format)


@subcloud.command("delete")
@click.argument("subcloud_ref", metavar="SUBCLOUD")
def delete(subcloud_ref: str) -> None:
    """Delete a subcloud (it must be unmanaged and offline)."""
    get_client().delete(f"/subclouds/{ref_path(subcloud_ref)}")
