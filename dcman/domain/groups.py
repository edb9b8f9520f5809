"""Rules of subcloud groups (lifecycle reference §2.7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dcman.domain.commands import GroupUpdate
from dcman.domain.errors import InvalidInput
from dcman.domain.states import UpdateApplyType
from dcman.domain.text import check_name_characters
from dcman.domain.values import choice, integer, text

DEFAULT_GROUP_ID = 1
DEFAULT_GROUP_NAME = "Default"
MAX_PARALLEL_SUBCLOUDS = 5000  # the reference's later limit (SEED: 500)
_FORBIDDEN_NAME_CHARS = set(".*+?|()[]{}^$")


@dataclass
class SubcloudGroup:
    id: int
    name: str
    description: str
    update_apply_type: str
    max_parallel_subclouds: int
    created_at: datetime | None
    updated_at: datetime | None


def validate_group_name(name: object) -> str:
    name = check_name_characters("group name", text("group name", name))
    if name.isdigit():
        raise InvalidInput(f"The group name {name} must not consist of digits only.")
    bad = sorted(_FORBIDDEN_NAME_CHARS.intersection(name))
    if bad:
        raise InvalidInput(f"The group name {name!r} must not contain the characters {' '.join(bad)}.")
    if name.lower() == DEFAULT_GROUP_NAME.lower():
        raise InvalidInput(f"The name {DEFAULT_GROUP_NAME} is reserved for the built-in group.")
    return name


def validate_group_description(description: object) -> str:
    if not isinstance(description, str) or not description:
        raise InvalidInput("The group description must be a non-empty string.")
    if len(description) >= 255:
        raise InvalidInput("The group description must be shorter than 255 characters.")
    return description


def validate_update_apply_type(value: object) -> UpdateApplyType:
    return choice(UpdateApplyType, value, f"Invalid update_apply_type {value!r}; it must be parallel or serial.")


def validate_max_parallel_subclouds(value: object) -> int:
    return integer("max_parallel_subclouds", value, 1, MAX_PARALLEL_SUBCLOUDS)


def check_group_update(group: SubcloudGroup, update: GroupUpdate) -> None:
    """The built-in group keeps its name."""
    if update.name is not None and group.id == DEFAULT_GROUP_ID and update.name != group.name:
        raise InvalidInput(f"The built-in group {DEFAULT_GROUP_NAME} cannot be renamed.")


def check_group_delete(group: SubcloudGroup, member_count: int) -> None:
    if group.id == DEFAULT_GROUP_ID:
        raise InvalidInput(f"The built-in group {DEFAULT_GROUP_NAME} cannot be deleted.")
    if member_count:  # the reference answers 400 here, not 422
        raise InvalidInput(
            f"Subcloud group {group.name} is not empty ({member_count} subclouds); move them to another group first."
        )
