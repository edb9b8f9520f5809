"""The JSON shapes of the reference API: key names and order exactly as dcmanager writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dcman.domain.groups import SubcloudGroup
from dcman.domain.states import AvailabilityStatus
from dcman.domain.subcloud import SHOWN_FIELDS, rollup_sync_status
from dcman.services.subclouds import SubcloudView


def timestamp(moment: datetime | None) -> str | None:
    return str(moment) if moment is not None else None


def subcloud(view: SubcloudView, *, with_rollup: bool = False, detail: bool = False,
             with_endpoints: bool = True) -> dict[str, Any]:
    """`with_endpoints=False` for the subclouds of a group and of migrate, where the reference
    sends no endpoint_sync_status: the dcmanager client lists those with one column per entry,
    and a row with entries breaks its table."""
    s = view.subcloud
    body: dict[str, Any] = {key: getattr(s, attribute) for key, attribute in SHOWN_FIELDS}
    for key in ("backup-datetime", "created-at", "updated-at"):
        body[key] = timestamp(body[key])
    if with_rollup:
        body["sync_status"] = rollup_sync_status(view.endpoint_statuses)
    if with_endpoints:
        body["endpoint_sync_status"] = endpoint_list(view.endpoint_statuses)
    if detail:
        body["region_name"] = s.region_name  # the reference's old spelling, which the client reads here
        online = s.availability_status == AvailabilityStatus.ONLINE
        body["oam_floating_ip"] = s.external_oam_floating_address if online else "unavailable"
        body["deploy_config_sync_status"] = "unknown"
    return body


def endpoint_list(statuses: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"endpoint_type": endpoint, "sync_status": status} for endpoint, status in statuses]


def group(g: SubcloudGroup) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "update_apply_type": g.update_apply_type,
        "max_parallel_subclouds": g.max_parallel_subclouds,
        "created-at": timestamp(g.created_at),
        "updated-at": timestamp(g.updated_at),
    }


def fault_alarm(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "alarm_id": row["alarm_id"],
        "entity_instance_id": row["entity_instance_id"],
        "severity": row["severity"],
        "reason_text": row["reason_text"],
        "timestamp": timestamp(row["timestamp"]),
    }
