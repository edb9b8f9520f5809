"""Rules of subcloud groups (lifecycle reference §2.7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dcman.domain.errors import InvalidInput
from dcman.domain.states import UpdateApplyType
from dcman.domain.text import check_name_characters

DEFAULT_GROUP_ID = 1
DEFAULT_GROUP_NAME = "Default"
MAX_PARALLEL_SUBCLOUDS = 5000  # the reference's later limit (SEED: 500)
_FORBIDDEN_NAME_CHARS = set(".*+?|()[]{}^$")
GROUP_FIELDS = ("name", "description", "update_apply_type", "max_parallel_subclouds")


@dataclass
class SubcloudGroup:
    id: int
    name: str
    description: str
    update_apply_type: str
    max_parallel_subclouds: int
    created_at: datetime | None
    updated_at: datetime | None


def validate_group_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("The group name must be a non-empty string.")
    check_name_characters("group name", name)
    if name.isdigit():
        raise InvalidInput(f"The group name {name} must not consist of digits only.")
    if len(name) > 255:
        raise InvalidInput("The group name must be at most 255 characters long.")
    bad = sorted(_FORBIDDEN_NAME_CHARS.intersection(name))
    if bad:
        raise InvalidInput(f"The group name {name!r} must not contain the characters {' '.join(bad)}.")
    if name.lower() == DEFAULT_GROUP_NAME.lower():
        raise InvalidInput(f"The name {DEFAULT_GROUP_NAME} is reserved for the built-in group.")
    return name


def validate_group_description(description: Any) -> str:
    if not isinstance(description, str) or not description:
        raise InvalidInput("The group description must be a non-empty string.")
    if len(description) >= 255:
        raise InvalidInput("The group description must be shorter than 255 characters.")
    return description


def validate_update_apply_type(value: Any) -> str:
    try:
        return UpdateApplyType(value).value
    except ValueError:
        raise InvalidInput(f"Invalid update_apply_type {value!r}; it must be parallel or serial.") from None


def validate_max_parallel_subclouds(value: Any) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():  # JSON's 60.0 is the integer 60
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_PARALLEL_SUBCLOUDS:
        raise InvalidInput(
            f"Invalid max_parallel_subclouds {value!r}; it must be an integer from 1 to {MAX_PARALLEL_SUBCLOUDS}."
        )
    return value


_VALIDATORS = {
    "name": validate_group_name,
    "description": validate_group_description,
    "update_apply_type": validate_update_apply_type,
    "max_parallel_subclouds": validate_max_parallel_subclouds,
}


def validate_new_group(body: dict[str, Any]) -> dict[str, Any]:
    """A create request: every field is required (§2.7 rule 2)."""
    for field in GROUP_FIELDS:
        if body.get(field) is None:
            raise InvalidInput(f"The group {field} is required.")
    _reject_unknown(body)
    return {field: _VALIDATORS[field](body[field]) for field in GROUP_FIELDS}


def validate_group_update(group: SubcloudGroup, body: dict[str, Any]) -> dict[str, Any]:
    """An update request: at least one field, each valid; the built-in group keeps its name."""
    _reject_unknown(body)
    changes = {field: _VALIDATORS[field](body[field]) for field in GROUP_FIELDS if body.get(field) is not None}
    if not changes:
        raise InvalidInput(f"Nothing to update; give at least one of {', '.join(GROUP_FIELDS)}.")
    if "name" in changes and group.id == DEFAULT_GROUP_ID and changes["name"] != group.name:
        raise InvalidInput(f"The built-in group {DEFAULT_GROUP_NAME} cannot be renamed.")
    return changes


def check_group_delete(group: SubcloudGroup, member_count: int) -> None:
    if group.id == DEFAULT_GROUP_ID:
        raise InvalidInput(f"The built-in group {DEFAULT_GROUP_NAME} cannot be deleted.")
    if member_count:  # the reference answers 400 here, not 422
        raise InvalidInput(
            f"Subcloud group {group.name} is not empty ({member_count} subclouds); move them to another group first."
        )


def _reject_unknown(body: dict[str, Any]) -> None:
    unknown = sorted(set(body) - set(GROUP_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown subcloud group field(s): {', '.join(unknown)}.")
