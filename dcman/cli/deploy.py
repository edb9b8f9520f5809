"""`dcman subcloud deploy ...`: the phased deploy of the dcmanager client, and `--wait`.

A phased deploy creates the subcloud (`deploy create`, which stops at `create-complete`),
then runs one phase per command (`install`, `bootstrap`, `config`), ends a deploy without
config (`complete`), stops a running phase (`abort`) or runs what is left (`resume`).
Every command answers with the subcloud; with `--wait` it then follows the deploy (GET
the subcloud every 0.5 s, a progress bar on stderr) until it ends: exit 0 in the
expected final state, 1 in a `*-failed` or `*-aborted` one, with the subcloud's error
description as the "Error: ..." line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Mapping

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dcman.cli.client import ClientError, SiteClient, get_client
from dcman.cli.output import format_option
from dcman.cli.subclouds import (
    FILE,
    add_options,
    add_request,
    deploy_answer,
    phase_request,
    ref_path,
    show_subcloud,
    wait_option,
)

POLL_INTERVAL_S = 0.5
# A site that does not answer (restarting, say) is waited for this long before giving up.
UNREACHABLE_GRACE_S = 60.0

ABORTED_STATES = frozenset({"install-aborted", "bootstrap-aborted", "config-aborted"})
NO_ERRORS = "No errors present"


# -- following a deploy -----------------------------------------------------------------


def is_failure(status: str, expected: frozenset[str]) -> bool:
    """A final state that is not the one waited for: any `*-failed` or `*-aborted` (a
    prestage status: `failed`)."""
    return status not in expected and (status.endswith("-failed") or status.endswith("-aborted")
                                       or status == "failed")


def _poll(client: SiteClient, path: str) -> dict[str, Any]:
    """GET the subcloud; a new token when ours expired, patience while the site is away."""
    unreachable_since: float | None = None
    signed_in_again = False
    while True:
        try:
            return client.get_object(path)
        except ClientError as exc:
            if exc.status_code == 401 and not signed_in_again:
                signed_in_again = True
                client.authenticate()
                continue
            if exc.status_code is not None:
                raise
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > UNREACHABLE_GRACE_S:
                raise
            time.sleep(POLL_INTERVAL_S)


def _percent(subcloud: Mapping[str, Any]) -> int | None:
    value = subcloud.get("deploy-progress")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return max(0, min(100, int(value)))


def wait_for_deploy(
    client: SiteClient, subcloud: Mapping[str, Any], expected: frozenset[str], key: str = "deploy-status"
) -> tuple[dict[str, Any], bool]:
    """Follow a subcloud's deploy from the answer of the request that started it.

    Returns the subcloud in its final state and whether that is an `expected` one. On a
    terminal the progress is a live bar on stderr; otherwise each new deploy status is
    one line on stderr. `key` is the status followed (prestage-status for a prestage).
    """
    current = dict(subcloud)
    name = str(current.get("name") or current.get("id"))
    path = f"/subclouds/{ref_path(str(current.get('id') or name))}"
    console = Console(file=sys.stderr, highlight=False, markup=False, emoji=False)
    live = console.is_terminal
    progress = Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.fields[percent]}", markup=False),
        TimeElapsedColumn(),
        console=console,
        disable=not live,
    )
    last_status: str | None = None
    with progress:
        task = progress.add_task(f"{name}: {current.get(key)}", total=None, percent="   -")
        while True:
            status = str(current.get(key))
            percent = _percent(current) if key == "deploy-status" else None
            progress.update(
                task,
                description=f"{name}: {status}",
                total=100 if percent is not None else None,
                completed=percent or 0,
                percent=f"{percent:3d}%" if percent is not None else "   -",
            )
            if not live and status != last_status:
                shown = f" ({percent}%)" if percent is not None else ""
                click.echo(f"{name}: {status}{shown}", err=True)
            last_status = status
            if status in expected:
                progress.update(task, total=100, completed=100)
                return current, True
            if is_failure(status, expected):
                progress.stop_task(task)
                return current, False
            time.sleep(POLL_INTERVAL_S)
            current = _poll(client, path)


def failure_message(subcloud: Mapping[str, Any], key: str = "deploy-status") -> str:
    description = subcloud.get("error-description")
    if isinstance(description, str) and description.strip() and description != NO_ERRORS:
        return description.strip()
    return f"the deploy of subcloud {subcloud.get('name')} ended in {subcloud.get(key)}"


def follow(
    client: SiteClient,
    subcloud: Mapping[str, Any],
    expected: frozenset[str],
    output_format: str,
    key: str = "deploy-status",
) -> None:
    """`--wait`: follow the deploy (or the `key` status), show the final subcloud, and fail
    (exit 1) on a failure."""
    try:
        final, succeeded = wait_for_deploy(client, subcloud, expected, key)
    except KeyboardInterrupt:
        click.echo(
            f"Stopped waiting; the {'deploy' if key == 'deploy-status' else 'operation'} of "
            f"{subcloud.get('name')} goes on on the site.", err=True
        )
        raise click.exceptions.Exit(130) from None
    show_subcloud(final, output_format)
    if not succeeded:
        raise ClientError(failure_message(final, key))


# -- the commands ---------------------------------------------------------------------------


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


__all__ = ["deploy", "follow", "is_failure", "wait_for_deploy"]
