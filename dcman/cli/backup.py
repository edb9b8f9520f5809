"""`dcman subcloud-backup create|delete|restore`: the dcmanager client's backup commands.

create and restore answer with the subclouds that were admitted; with `--wait` they then follow
each one (GET every 0.5 s, one progress line per subcloud on stderr) until its backup status
(create) or deploy status (restore) ends: exit 0 when every one ended well, 1 otherwise, with
each failed subcloud's error description as an "Error: ..." line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Mapping

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dcman.cli.client import ClientError, SiteClient, get_client, ref_path
from dcman.cli.follow import NO_ERRORS, POLL_INTERVAL_S, poll
from dcman.cli.output import format_option, render_list
from dcman.cli.subclouds import FILE, LIST_COLUMNS, _secret, b64, read_part

BACKUP_DONE = frozenset({"complete-central", "complete-local"})
BACKUP_FAILED = frozenset({"validate-failed", "backup-prep-failed", "failed"})
RESTORE_DONE = frozenset({"complete"})
RESTORE_FAILED = frozenset({"restore-prep-failed", "restore-failed"})
BACKUP_COLUMNS = [*LIST_COLUMNS[:5], ("backup status", "backup-status"), ("backup datetime", "backup-datetime")]


def _target(subcloud: str | None, group: str | None) -> dict[str, str]:
    if bool(subcloud) == bool(group):
        raise click.UsageError("Give exactly one of --subcloud and --group.")
    return {"subcloud": subcloud} if subcloud else {"group": group}  # type: ignore[dict-item]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def follow(client: SiteClient, subclouds: list[Mapping[str, Any]], field: str, done: frozenset[str],
           failed: frozenset[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow every subcloud until its `field` is in `done` or `failed`; (all final, the failed)."""
    console = Console(file=sys.stderr, highlight=False, markup=False, emoji=False)
    live = console.is_terminal
    progress = Progress(SpinnerColumn(finished_text="✓"), TextColumn("{task.description}", markup=False),
                        TimeElapsedColumn(), console=console, disable=not live)
    current = {str(s.get("id")): dict(s) for s in subclouds}
    last: dict[str, str] = {}
    with progress:
        tasks = {key: progress.add_task(f"{s.get('name')}: {s.get(field)}", total=None) for key, s in current.items()}
        while True:
            pending = False
            for key, subcloud in current.items():
                status = str(subcloud.get(field))
                progress.update(tasks[key], description=f"{subcloud.get('name')}: {status}")
                if not live and last.get(key) != status:
                    click.echo(f"{subcloud.get('name')}: {status}", err=True)
                last[key] = status
                if status in done or status in failed:
                    progress.update(tasks[key], total=1, completed=1)
                else:
                    pending = True
            if not pending:
                final = list(current.values())
                return final, [s for s in final if str(s.get(field)) in failed]
            time.sleep(POLL_INTERVAL_S)
            for key, subcloud in current.items():
                if str(subcloud.get(field)) not in done | failed:
                    current[key] = poll(client, f"/subclouds/{ref_path(key)}")


def _answer(client: SiteClient, answer: Any, path: str, output_format: str, wait: bool, field: str,
            done: frozenset[str], failed: frozenset[str]) -> None:
    subclouds = answer.get("subclouds") if isinstance(answer, dict) else None
    if not isinstance(subclouds, list) or not all(isinstance(s, dict) for s in subclouds):
        raise ClientError(f"the site answered {path} without a list of subclouds")
    if wait:
        try:
            subclouds, failures = follow(client, subclouds, field, done, failed)
        except KeyboardInterrupt:
            click.echo("Stopped waiting; the operation goes on on the site.", err=True)
            raise click.exceptions.Exit(130) from None
    else:
        failures = []
    render_list(subclouds, output_format, BACKUP_COLUMNS)
    if failures:
        reasons = []
        for subcloud in failures:
            why = subcloud.get("error-description")
            why = why if isinstance(why, str) and why.strip() and why != NO_ERRORS else subcloud.get(field)
            reasons.append(f"{subcloud.get('name')}: {why}")
        raise ClientError("; ".join(reasons))


_subcloud = click.option("--subcloud", help="Name or ID of the subcloud.")
_group = click.option("--group", help="Name or ID of the subcloud group.")
_password = click.option("--sysadmin-password",
                         help="sysadmin password of the subcloud(s) (asked for on a terminal when omitted).")
_local_only = click.option("--local-only", is_flag=True, help="Keep the backup on the subcloud, not on the site.")
_registry_images = click.option("--registry-images", is_flag=True,
                                help="Include the registry images (only with --local-only).")
_wait = click.option("--wait", is_flag=True, help="Wait until every subcloud is done; exit 1 if one fails.")


@click.group("subcloud-backup")
def subcloud_backup() -> None:
    """Back subclouds up, delete their backups, restore them."""


@subcloud_backup.command("create")
@_subcloud
@_group
@_local_only
@_registry_images
@click.option("--backup-values", type=FILE, help="YAML file with the parameters of the backup.")
@_password
@_wait
@format_option
def create(subcloud: str | None, group: str | None, local_only: bool, registry_images: bool,
           backup_values: Path | None, sysadmin_password: str | None, wait: bool, output_format: str) -> None:
    """Back up a subcloud, or every subcloud of a group."""
    data = {**_target(subcloud, group), "local_only": _flag(local_only), "registry_images": _flag(registry_images),
            "sysadmin_password": b64(_secret(sysadmin_password, "--sysadmin-password", "sysadmin password"))}
    files = {"backup_values": read_part(backup_values)} if backup_values is not None else {}
    client = get_client()
    answer = client.post("/subcloud-backup", data=data, files=files)
    _answer(client, answer, "POST /subcloud-backup", output_format, wait, "backup-status", BACKUP_DONE,
            BACKUP_FAILED)


@subcloud_backup.command("delete")
@click.argument("release")
@_subcloud
@_group
@_local_only
@_password
def delete(release: str, subcloud: str | None, group: str | None, local_only: bool,
           sysadmin_password: str | None) -> None:
    """Delete the backups of RELEASE of a subcloud, or of every subcloud of a group."""
    data = {**_target(subcloud, group), "release": release, "local_only": _flag(local_only)}
    if local_only or sysadmin_password is not None:
        data["sysadmin_password"] = b64(_secret(sysadmin_password, "--sysadmin-password", "sysadmin password"))
    answer = get_client().patch(f"/subcloud-backup/delete/{ref_path(release)}", data=data)
    if answer:  # 207: a notice of what was skipped or failed
        click.echo(str(answer), err=True)
    else:
        click.echo(f"Deleted the backups of release {release}.", err=True)


@subcloud_backup.command("restore")
@_subcloud
@_group
@click.option("--with-install", is_flag=True, help="Reinstall the subcloud before restoring it.")
@_local_only
@_registry_images
@click.option("--restore-values", type=FILE, help="YAML file with the parameters of the restore "
                                                  "(bootstrap_address per subcloud name).")
@click.option("--release", help="Software release to reinstall with (only with --with-install).")
@_password
@_wait
@format_option
def restore(subcloud: str | None, group: str | None, with_install: bool, local_only: bool, registry_images: bool,
            restore_values: Path | None, release: str | None, sysadmin_password: str | None, wait: bool,
            output_format: str) -> None:
    """Restore a subcloud, or every subcloud of a group, from its backup."""
    data = {**_target(subcloud, group), "with_install": _flag(with_install), "local_only": _flag(local_only),
            "registry_images": _flag(registry_images),
            "sysadmin_password": b64(_secret(sysadmin_password, "--sysadmin-password", "sysadmin password"))}
    if release is not None:
        data["release"] = release
    files = {"restore_values": read_part(restore_values)} if restore_values is not None else {}
    client = get_client()
    answer = client.patch("/subcloud-backup/restore", data=data, files=files)
    _answer(client, answer, "PATCH /subcloud-backup/restore", output_format, wait, "deploy-status", RESTORE_DONE,
            RESTORE_FAILED)
