"""`dcman alarm summary`: the subclouds' alarm counts, as the dcmanager client shows them."""

from __future__ import annotations

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
