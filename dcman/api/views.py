"""The JSON shapes of the reference API: key names and order exactly as dcmanager writes them.

Each shape is also a TypedDict, which /openapi.json declares as the answer's schema: a key added,
dropped or retyped here must change its TypedDict too (the schemathesis run checks every answer).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from typing_extensions import TypedDict

from dcman.domain.groups import SubcloudGroup
from dcman.domain.secrets import might_hold_secrets, redact
from dcman.domain.states import AvailabilityStatus
from dcman.domain.subcloud import rollup_sync_status
from dcman.services.subclouds import SubcloudView


EndpointStatus = TypedDict("EndpointStatus", {"endpoint_type": str, "sync_status": str})
SubcloudBody = TypedDict("SubcloudBody", {
    "id": int, "name": str, "description": str | None, "location": str | None, "software-version": str,
    "management-state": str, "availability-status": str, "deploy-status": str, "backup-status": str | None,
    "backup-datetime": str | None, "error-description": str, "region-name": str, "management-subnet": str,
    "management-start-ip": str, "management-end-ip": str, "management-gateway-ip": str,
    "openstack-installed": bool, "prestage-status": str | None, "prestage-versions": str | None,
    "systemcontroller-gateway-ip": str, "data_install": dict[str, Any] | None, "data_upgrade": Any,
    "created-at": str, "updated-at": str | None, "group_id": int, "peer_group_id": int | None,
    "rehome_data": str | None, "deploy-progress": int | None, "endpoint_sync_status": list[EndpointStatus]})


class ListedSubcloud(SubcloudBody):
    """A subcloud in the list of all subclouds: with its rolled-up sync status."""

    sync_status: str


class SubcloudDetail(SubcloudBody):
    oam_floating_ip: str
    deploy_config_sync_status: str


class SubcloudList(TypedDict):
    subclouds: list[SubcloudBody]


class SubcloudListing(TypedDict):
    subclouds: list[ListedSubcloud]


class SubcloudPage(SubcloudListing):
    """One page of dcman's filtered list, and how many subclouds match in all."""

    total: int


Group = TypedDict("Group", {"id": int, "name": str, "description": str, "update_apply_type": str,
                            "max_parallel_subclouds": int, "created-at": str, "updated-at": str | None})


class GroupList(TypedDict):
    subcloud_groups: list[Group]


class AlarmSummary(TypedDict):
    region_name: str
    uuid: str
    critical_alarms: int
    major_alarms: int
    minor_alarms: int
    warnings: int
    cloud_status: str


class AlarmSummaryList(TypedDict):
    alarm_summary: list[AlarmSummary]


class FaultAlarm(TypedDict):
    alarm_id: str
    entity_instance_id: str
    severity: str
    reason_text: str
    timestamp: str | None


class FaultAlarmList(TypedDict):
    alarms: list[FaultAlarm]


def timestamp(moment: datetime | None) -> str | None:
    return str(moment) if moment is not None else None


def _json_or_none(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _redacted_json_text(text: str | None) -> str | None:
    """Stored JSON text without any secret: rows written before secrets were sealed apart may hold some."""
    if text is None or not might_hold_secrets(text):
        return text
    document = _json_or_none(text)
    return text if isinstance(document, str) else json.dumps(redact(document))


def subcloud(view: SubcloudView, *, with_rollup: bool = False, detail: bool = False) -> dict[str, Any]:
    s = view.subcloud
    body: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "location": s.location,
        "software-version": s.software_version,
        "management-state": s.management_state,
        "availability-status": s.availability_status,
        "deploy-status": s.deploy_status,
        "backup-status": s.backup_status,
        "backup-datetime": timestamp(s.backup_datetime),
        "error-description": s.error_description,
        "region-name": s.region_name,
        "management-subnet": s.management_subnet,
        "management-start-ip": s.management_start_ip,
        "management-end-ip": s.management_end_ip,
        "management-gateway-ip": s.management_gateway_ip,
        "openstack-installed": s.openstack_installed,
        "prestage-status": s.prestage_status,
        "prestage-versions": s.prestage_versions,
        "systemcontroller-gateway-ip": s.systemcontroller_gateway_ip,
        "data_install": _json_or_none(_redacted_json_text(s.data_install)),
        "data_upgrade": _json_or_none(s.data_upgrade),
        "created-at": timestamp(s.created_at),
        "updated-at": timestamp(s.updated_at),
        "group_id": s.group_id,
        "peer_group_id": s.peer_group_id,
        "rehome_data": _redacted_json_text(s.rehome_data),
        # dcman's addition: the running phase's progress (0-100), as its agent reports it.
        "deploy-progress": s.deploy_progress,
    }
    if with_rollup:
        body["sync_status"] = rollup_sync_status(view.endpoint_statuses)
    body["endpoint_sync_status"] = [
        {"endpoint_type": endpoint, "sync_status": status} for endpoint, status in view.endpoint_statuses
    ]
    if detail:
        online = s.availability_status == AvailabilityStatus.ONLINE
        body["oam_floating_ip"] = s.external_oam_floating_address if online else "unavailable"
        body["deploy_config_sync_status"] = "unknown"
    return body


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


def alarm_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "region_name": row["name"],
        "uuid": row["uuid"],
        "critical_alarms": row["critical_alarms"],
        "major_alarms": row["major_alarms"],
        "minor_alarms": row["minor_alarms"],
        "warnings": row["warnings"],
        "cloud_status": row["cloud_status"],
    }


def fault_alarm(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "alarm_id": row["alarm_id"],
        "entity_instance_id": row["entity_instance_id"],
        "severity": row["severity"],
        "reason_text": row["reason_text"],
        "timestamp": timestamp(row["timestamp"]),
    }
