"""`dcman alarm summary`: the subclouds' alarm counts, as the dcmanager client shows them."""

from __future__ import annotations

from urllib.parse import quote

import click

from dcman.cli.client import get_client, site_options
from dcman.cli.output import Column, format_option, render_list

SUMMARY_COLUMNS: list[Column] = [
    ("name", "region_name"),
    ("critical_alarms", "critical_alarms"),
    ("major_alarms", "major_alarms"),
    ("minor_alarms", "minor_alarms"),
    ("warnings", "warnings"),
    ("cloud_status", "cloud_status"),
]


@click.group("alarm")
@site_options
def alarm() -> None:
    """Subcloud alarms."""


@alarm.command("summary")
@format_option
def summary(output_format: str) -> None:
    """Show the alarm counts of every subcloud."""
    summary_rows = get_client().get_list("/alarms", "alarm_summary")
    render_list(summary_rows, output_format, SUMMARY_COLUMNS)


ALARM_COLUMNS: list[Column] = [
    ("alarm_id", "alarm_id"),
    ("entity_instance_id", "entity_instance_id"),
    ("severity", "severity"),
    ("reason_text", "reason_text"),
    ("timestamp", "timestamp"),
]


@alarm.command("list")
@click.option("--alarm-id", help="Only this alarm id, e.g. 280.001.")
@click.option("--entity", help="Only this entity instance id, e.g. subcloud=sim-00001.")
@format_option
def list_alarms(alarm_id: str | None, entity: str | None, output_format: str) -> None:
    """List the site's active alarms (280.001 subcloud offline, 280.002 out of sync)."""
    params = {k: v for k, v in (("alarm_id", alarm_id), ("entity", entity)) if v}
    query = ("?" + "&".join(f"{k}={quote(v)}" for k, v in params.items())) if params else ""
    render_list(get_client().get_list("/fault-alarms" + query, "alarms"), output_format, ALARM_COLUMNS)
