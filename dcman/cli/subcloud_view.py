"""How the command shows a subcloud: one Field/Value row per field, per-endpoint sync
statuses on their own rows, JSON text fields as values."""

from __future__ import annotations

import json
from typing import Any, Mapping

from dcman.cli.output import render_one


def _decoded(key: str, value: Any) -> Any:
    """data_install and data_upgrade come as JSON text (as the reference sends them); shown as values."""
    if key in ("data_install", "data_upgrade") and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def subcloud_rows(subcloud: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Field/Value rows of a subcloud; per-endpoint sync statuses become their own rows."""
    rows: list[tuple[str, Any]] = []
    for key, value in subcloud.items():
        value = _decoded(key, value)
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
    render_one({key: _decoded(key, value) for key, value in subcloud.items()}, output_format, subcloud_rows(subcloud))
