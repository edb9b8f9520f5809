"""The site's own fault alarms (lifecycle reference §6): identities, severities, texts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlarmId(StrEnum):
    SUBCLOUD_OFFLINE = "280.001"
    SUBCLOUD_RESOURCE_OUT_OF_SYNC = "280.002"


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


@dataclass(frozen=True)
class Alarm:
    alarm_id: str
    entity_instance_id: str
    severity: str
    reason_text: str


def subcloud_entity(name: str) -> str:
    return f"subcloud={name}"


def offline_alarm(name: str) -> Alarm:
    return Alarm(AlarmId.SUBCLOUD_OFFLINE, subcloud_entity(name), Severity.CRITICAL, f"{name} is offline")


def out_of_sync_alarm(name: str, endpoint: str) -> Alarm:
    return Alarm(
        AlarmId.SUBCLOUD_RESOURCE_OUT_OF_SYNC,
        f"{subcloud_entity(name)}.resource={endpoint}",
        Severity.MAJOR,
        f"{name} {endpoint} sync_status is out-of-sync",
    )
