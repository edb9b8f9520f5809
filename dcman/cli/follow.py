"""`--wait`: follow a subcloud's deploy (or another of its statuses) until it ends: GET the
subcloud every 0.5 s, a progress bar on stderr; exit 0 in the expected final state, 1 in a
`*-failed` or `*-aborted` one, with the subcloud's error description as the "Error: ..." line."""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dcman.cli.client import ClientError, SiteClient, ref_path
from dcman.cli.subcloud_view import show_subcloud

POLL_INTERVAL_S = 0.5
# A site that does not answer (restarting, say) is waited for this long before giving up.
UNREACHABLE_GRACE_S = 60.0

NO_ERRORS = "No errors present"


# -- following a deploy -----------------------------------------------------------------


def is_failure(status: str, expected: frozenset[str]) -> bool:
    """A final state that is not the one waited for: any `*-failed` or `*-aborted` (a
    prestage status: `failed`)."""
    return status not in expected and (status.endswith("-failed") or status.endswith("-aborted")
                                       or status == "failed")


def poll(client: SiteClient, path: str) -> dict[str, Any]:
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
            current = poll(client, path)


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
