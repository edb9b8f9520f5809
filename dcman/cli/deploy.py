"""`dcman subcloud deploy ...`: the phased deploy of the dcmanager client.

A phased deploy creates the subcloud (`deploy create`, which stops at `create-complete`),
then runs one phase per command (`install`, `bootstrap`, `config`), ends a deploy without
config (`complete`), stops a running phase (`abort`) or runs what is left (`resume`).
Every command answers with the subcloud; with `--wait` it then follows the deploy
(dcman.cli.follow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dcman.cli.client import get_client, ref_path
from dcman.cli.output import format_option
from dcman.cli.subclouds import FILE, add_options, add_request, deploy_answer, phase_request, wait_option

ABORTED_STATES = frozenset({"install-aborted", "bootstrap-aborted", "config-aborted"})


@click.group("deploy")
def deploy() -> None:
    """Deploy a subcloud phase by phase (create, install, bootstrap, config, complete)."""


@deploy.command("create")
@add_options
@wait_option
@format_option
def create(output_format: str, wait: bool, **options: Any) -> None:
    """Create a subcloud without deploying it (it stops at create-complete)."""
    path = "/phased-subcloud-deploy"
    client = get_client()
    answer = client.post(path, **add_request(**options))
    deploy_answer(client, answer, "POST", path, output_format, wait, frozenset({"create-complete"}))


def _patch(
    subcloud_ref: str,
    verb: str,
    body: dict[str, Any],
    output_format: str,
    wait: bool,
    expected: frozenset[str],
) -> None:
    path = f"/phased-subcloud-deploy/{ref_path(subcloud_ref)}/{verb}"
    client = get_client()
    answer = client.patch(path, **body)
    deploy_answer(client, answer, "PATCH", path, output_format, wait, expected)


_subcloud_argument = click.argument("subcloud_ref", metavar="SUBCLOUD")
_install_values = click.option(
    "--install-values", type=FILE, help="YAML file with the parameters of the remote install."
)
_bootstrap_values = click.option(
    "--bootstrap-values", type=FILE, help="YAML file with the parameters of the subcloud's bootstrap."
)
_deploy_config = click.option(
    "--deploy-config",
    type=FILE,
    help="YAML file with the parameters of the initial configuration and unlock.",
)
_bootstrap_address = click.option(
    "--bootstrap-address", help="IP address for initial subcloud controller."
)
_bmc_password = click.option(
    "--bmc-password",
    help="BMC password of the subcloud; only with --install-values "
    "(asked for on a terminal when omitted).",
)
_sysadmin_password = click.option(
    "--sysadmin-password", help="sysadmin password of the subcloud (default: the stored one)."
)
_release = click.option(
    "--release", help="Software release to install; only with --install-values."
)


@deploy.command("install")
@_subcloud_argument
@_install_values
@_bmc_password
@_sysadmin_password
@_release
@wait_option
@format_option
def install(
    subcloud_ref: str,
    install_values: Path | None,
    bmc_password: str | None,
    sysadmin_password: str | None,
    release: str | None,
    wait: bool,
    output_format: str,
) -> None:
    """Install a created subcloud (with new install values or the stored ones)."""
    body = phase_request(
        install_values=install_values,
        bmc_password=bmc_password,
        sysadmin_password=sysadmin_password,
        release=release,
    )
    _patch(subcloud_ref, "install", body, output_format, wait, frozenset({"install-complete"}))


@deploy.command("bootstrap")
@_subcloud_argument
@_bootstrap_values
@_bootstrap_address
@_sysadmin_password
@wait_option
@format_option
def bootstrap(
    subcloud_ref: str,
    bootstrap_values: Path | None,
    bootstrap_address: str | None,
    sysadmin_password: str | None,
    wait: bool,
    output_format: str,
) -> None:
    """Bootstrap a subcloud (with new bootstrap values or the stored ones)."""
    body = phase_request(
        bootstrap_values=bootstrap_values,
        bootstrap_address=bootstrap_address,
        sysadmin_password=sysadmin_password,
    )
    _patch(subcloud_ref, "bootstrap", body, output_format, wait, frozenset({"bootstrap-complete"}))


@deploy.command("config")
@_subcloud_argument
@_deploy_config
@_sysadmin_password
@wait_option
@format_option
def config(
    subcloud_ref: str,
    deploy_config: Path | None,
    sysadmin_password: str | None,
    wait: bool,
    output_format: str,
) -> None:
    """Configure a bootstrapped subcloud (with a new deploy config or the stored one)."""
    body = phase_request(deploy_config=deploy_config, sysadmin_password=sysadmin_password)
    _patch(subcloud_ref, "configure", body, output_format, wait, frozenset({"complete"}))


@deploy.command("complete")
@_subcloud_argument
@wait_option
@format_option
def complete(subcloud_ref: str, wait: bool, output_format: str) -> None:
    """End the deploy of a bootstrapped subcloud without config."""
    _patch(subcloud_ref, "complete", {"json": {}}, output_format, wait, frozenset({"complete"}))


@deploy.command("abort")
@_subcloud_argument
@wait_option
@format_option
def abort(subcloud_ref: str, wait: bool, output_format: str) -> None:
    """Abort the running install, bootstrap or config of a subcloud."""
    _patch(subcloud_ref, "abort", {"json": {}}, output_format, wait, ABORTED_STATES)


@deploy.command("resume")
@_subcloud_argument
@_install_values
@_bootstrap_values
@_deploy_config
@_bootstrap_address
@_bmc_password
@_sysadmin_password
@_release
@wait_option
@format_option
def resume(
    subcloud_ref: str,
    install_values: Path | None,
    bootstrap_values: Path | None,
    deploy_config: Path | None,
    bootstrap_address: str | None,
    bmc_password: str | None,
    sysadmin_password: str | None,
    release: str | None,
    wait: bool,
    output_format: str,
) -> None:
    """Resume a failed, aborted or unfinished deploy: run the phases that are left."""
    body = phase_request(
        install_values=install_values,
        bootstrap_values=bootstrap_values,
        deploy_config=deploy_config,
        bootstrap_address=bootstrap_address,
        bmc_password=bmc_password,
        sysadmin_password=sysadmin_password,
        release=release,
    )
    _patch(subcloud_ref, "resume", body, output_format, wait, frozenset({"complete"}))


__all__ = ["deploy"]
