"""The site's own fault alarms (lifecycle reference §6): identities, severities, texts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlarmId(StrEnum):
    SUBCLOUD_OFFLINE = "280.001"
    SUBCLOUD_RESOURCE_OUT_OF_SYNC = "280.002"
    SYSTEM_PEER_HEARTBEAT_FAILED = "280.004"
    PEER_GROUP_NOT_MANAGED = "280.005"
    AUTOMATIC_FAILOVER = "280.006"  # dcman: what the automatic failover did or why not (domain.failover)


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


def peer_entity(peer_uuid: str) -> str:
    return f"peer={peer_uuid}"


def heartbeat_alarm(peer_uuid: str, peer_name: str, led_groups: list[str], reason: str | None = None) -> Alarm:
    """280.004: critical when the lost peer leads some of this site's peer groups; the last
    failure's reason (e.g. a certificate that does not verify) is told, so the operator sees why."""
    why = f" ({reason})" if reason else ""
    if led_groups:
        text = f"System peer {peer_name} heartbeat failed{why}; it leads peer group(s) {', '.join(led_groups)}"
        return Alarm(AlarmId.SYSTEM_PEER_HEARTBEAT_FAILED, peer_entity(peer_uuid), Severity.CRITICAL, text[:1024])
    return Alarm(AlarmId.SYSTEM_PEER_HEARTBEAT_FAILED, peer_entity(peer_uuid), Severity.MAJOR,
                 f"System peer {peer_name} heartbeat failed{why}"[:1024])
