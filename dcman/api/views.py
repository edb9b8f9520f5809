"""The JSON shapes of the reference API: key names and order exactly as dcmanager writes them.

Each shape is also a TypedDict, which /openapi.json declares as the answer's schema: a key added,
dropped or retyped here must change its TypedDict too (the schemathesis run checks every answer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from typing_extensions import NotRequired, TypedDict

from dcman.db import subclouds as subclouds_db
from dcman.domain.groups import SubcloudGroup
from dcman.domain.secrets import redacted_json_text
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
    "systemcontroller-gateway-ip": str, "data_install": str | None, "data_upgrade": Any,
    "created-at": str, "updated-at": str | None, "group_id": int, "peer_group_id": int | None,
    "rehome_data": str | None, "deploy-progress": int | None,
    # Absent from the subclouds of a group and of migrate, as in the reference.
    "endpoint_sync_status": NotRequired[list[EndpointStatus]]})


class ListedSubcloud(SubcloudBody):
    """A subcloud in the list of all subclouds: with its rolled-up sync status."""

    sync_status: str


class SubcloudDetail(SubcloudBody):
    region_name: str  # the reference's old spelling, which the dcmanager client reads here
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


def subcloud(view: SubcloudView, *, with_rollup: bool = False, detail: bool = False,
             with_endpoints: bool = True) -> dict[str, Any]:
    """`with_endpoints=False` for the subclouds of a group and of migrate, where the reference
    sends no endpoint_sync_status: the dcmanager client lists those with one column per entry,
    and a row with entries breaks its table."""
    s = view.subcloud
    body = subclouds_db.shown_fields(s)
    for key in ("backup-datetime", "created-at", "updated-at"):
        body[key] = timestamp(body[key])
    for key in ("data_install", "rehome_data"):
        body[key] = redacted_json_text(body[key])
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
