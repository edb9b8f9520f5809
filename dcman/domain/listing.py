"""The paged, filtered subcloud list (dcman's addition to GET /subclouds): which query
parameters it takes and what values they may hold. Without any of them the list is the
reference's, unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from dcman.domain.errors import InvalidInput
from dcman.domain.states import AvailabilityStatus, DeployStatus, ManagementState

MAX_PAGE = 1000
MAX_OFFSET = 10_000_000
MAX_SEARCH = 255
QUERY_PARAMS = ("limit", "offset", "name", "availability", "management", "deploy_status", "group", "peer_group")
NO_PEER_GROUP = "none"


@dataclass(frozen=True)
class SubcloudQuery:
    """One page of subclouds matching every filter given; `group` and `peer_group` are
    still references (id or name) for the service to resolve."""

    name: str | None = None
    availability: str | None = None
    management: str | None = None
    deploy_status: str | None = None
    group: str | None = None
    peer_group: str | None = None
    limit: int | None = None
    offset: int = 0


# What /openapi.json declares of each parameter: the same rules (an empty value is no filter).
LIMIT = {"pattern": f"^(|[1-9][0-9]{{0,2}}|{MAX_PAGE})$"}
OFFSET = {"pattern": "^(|0|[1-9][0-9]{0,6}|10000000)$"}
TEXT = {"maxLength": MAX_SEARCH, "pattern": "^[^\\x00]*$"}


def choices(states: type[StrEnum]) -> dict[str, list[str]]:
    return {"enum": ["", *(s.value for s in states)]}


def _count(param: str, value: str, low: int, high: int) -> int:
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise InvalidInput(f"The {param} parameter must be a whole number from {low} to {high}.")
    return int(value)


def _choice(param: str, value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise InvalidInput(f"The {param} parameter must be one of {', '.join(allowed)}.")
    return value


def _text(param: str, value: str) -> str:
    if "\x00" in value or len(value) > MAX_SEARCH:
        raise InvalidInput(f"The {param} parameter must be text of at most {MAX_SEARCH} characters.")
    return value


ALARM_PARAMS = ("alarm_id", "entity", "subcloud", "limit")


def refuse_unknown(params: Mapping[str, str], known: tuple[str, ...]) -> None:
    """A parameter the list does not take is a mistake to say, not a filter to ignore silently."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidInput(f"Unknown parameter(s) {', '.join(unknown)[:200]}; this list takes {', '.join(known)}.")


def is_list_query(params: Mapping[str, str]) -> bool:
    """Whether a GET /subclouds asks for dcman's paged list rather than the reference's."""
    return any(param in params for param in QUERY_PARAMS)


def parse_subcloud_query(params: Mapping[str, str]) -> SubcloudQuery:
    """Validate the list parameters; empty values mean "no filter"."""
    given = {k: params[k] for k in QUERY_PARAMS if params.get(k) not in (None, "")}
    return SubcloudQuery(
        name=_text("name", given["name"]) if "name" in given else None,
        availability=_choice("availability", given["availability"], [s.value for s in AvailabilityStatus])
        if "availability" in given else None,
        management=_choice("management", given["management"], [s.value for s in ManagementState])
        if "management" in given else None,
        deploy_status=_choice("deploy_status", given["deploy_status"], [s.value for s in DeployStatus])
        if "deploy_status" in given else None,
        group=_text("group", given["group"]) if "group" in given else None,
        peer_group=_text("peer_group", given["peer_group"]) if "peer_group" in given else None,
        limit=_count("limit", given["limit"], 1, MAX_PAGE) if "limit" in given else None,
        offset=_count("offset", given["offset"], 0, MAX_OFFSET) if "offset" in given else 0,
    )


def parse_alarm_limit(value: str | None) -> int | None:
    """GET /fault-alarms?limit=N: the N newest alarms (dcman's addition)."""
    return None if value in (None, "") else _count("limit", value, 1, MAX_PAGE)
