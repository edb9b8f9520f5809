"""`dcman status`: the processes serving the site, their roles, leases and leaderships."""

from __future__ import annotations

from typing import Any

import click

from dcman.cli.client import get_client, site_options
from dcman.cli.output import Column, dump, format_option, render_list


def _shards(shards: list[int]) -> str:
    """Shard numbers as ranges: 0-21, 40."""
    parts: list[str] = []
    for shard in shards:
        if parts and parts[-1].split("-")[-1] == str(shard - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{shard}"
        else:
            parts.append(str(shard))
    return ", ".join(parts) or "-"


COLUMNS: list[Column] = [
    ("process", "uuid"),
    ("host", "host"),
    ("pid", "pid"),
    ("api", "bind"),
    ("roles", lambda p: ",".join(p["roles"])),
    ("alive", "alive"),
    ("heartbeat", "heartbeat_at"),
    ("audit shards", lambda p: f"{len(p['leases']['audit'])}: {_shards(p['leases']['audit'])}"),
    ("deploy shards", lambda p: f"{len(p['leases']['deploy'])}: {_shards(p['leases']['deploy'])}"),
    ("leads", lambda p: ",".join(p["leads"]) or "-"),
]


@click.command()
@site_options
@format_option
def status(output_format: str) -> None:
    """Show the dcman processes serving the site (GET /v1.0/processes)."""
    answer: dict[str, Any] = get_client().get("/processes")
    if output_format.lower() != "table":
        dump(answer, output_format)
        return
    render_list(answer["processes"], output_format, COLUMNS)
    leaders = ", ".join(f"{name}: {uuid or 'none'}" for name, uuid in answer["leaders"].items())
    unheld = ", ".join(f"{kind} {count}" for kind, count in answer["unheld_shards"].items())
    click.echo(f"leaders: {leaders}")
    click.echo(f"shards: {answer['shards']} per kind, unheld: {unheld}; lease period {answer['lease_seconds']} s")
