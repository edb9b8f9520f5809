"""/v1.0/subcloud-groups: the create and update commands and their schemas."""

from __future__ import annotations

from collections.abc import Mapping

from dcman.api.commands.wire import (
    Wire,
    nothing_to_update,
    object_schema,
    optional,
    refuse_unknown,
)
from dcman.domain import groups
from dcman.domain.commands import GroupUpdate, NewGroup
from dcman.domain.errors import InvalidInput

GROUP_NAME = Wire("name", {  # not blank, not all digits, no regular-expression character, not Default
    "type": "string", "maxLength": 255, "pattern": "^[^.*+?|()\\[\\]{}^$]+$",
    "allOf": [{"pattern": "[^0-9]"}, {"pattern": "\\S"}], "not": {"pattern": "^[Dd][Ee][Ff][Aa][Uu][Ll][Tt]$"}},
    names=True)
GROUP_DESCRIPTION = Wire("description", {"type": "string", "minLength": 1, "maxLength": 254})
GROUP_APPLY_TYPE = Wire("update_apply_type", {"type": "string", "enum": ["parallel", "serial"]})
GROUP_MAX_PARALLEL = Wire("max_parallel_subclouds",
                          {"type": "integer", "minimum": 1, "maximum": groups.MAX_PARALLEL_SUBCLOUDS})
GROUP_FIELDS = (GROUP_NAME, GROUP_DESCRIPTION, GROUP_APPLY_TYPE, GROUP_MAX_PARALLEL)
NEW_GROUP_SCHEMA = object_schema(GROUP_FIELDS, required=GROUP_FIELDS)
GROUP_UPDATE_SCHEMA = object_schema(GROUP_FIELDS, at_least_one=True)
_UNKNOWN_GROUP_FIELD = "Unknown subcloud group field(s)"


def new_group(body: Mapping[str, object]) -> NewGroup:
    """Every field is required (§2.7 rule 2)."""
    for wire in GROUP_FIELDS:
        if body.get(wire.key) is None:
            raise InvalidInput(f"The group {wire.key} is required.")
    refuse_unknown(body, GROUP_FIELDS, _UNKNOWN_GROUP_FIELD)
    return NewGroup(groups.validate_group_name(body[GROUP_NAME.key]),
                    groups.validate_group_description(body[GROUP_DESCRIPTION.key]),
                    groups.validate_update_apply_type(body[GROUP_APPLY_TYPE.key]),
                    groups.validate_max_parallel_subclouds(body[GROUP_MAX_PARALLEL.key]))


def group_update(body: Mapping[str, object]) -> GroupUpdate:
    refuse_unknown(body, GROUP_FIELDS, _UNKNOWN_GROUP_FIELD)
    update = GroupUpdate(optional(body, GROUP_NAME, groups.validate_group_name),
                         optional(body, GROUP_DESCRIPTION, groups.validate_group_description),
                         optional(body, GROUP_APPLY_TYPE, groups.validate_update_apply_type),
                         optional(body, GROUP_MAX_PARALLEL, groups.validate_max_parallel_subclouds))
    if update == GroupUpdate():
        raise nothing_to_update(GROUP_FIELDS)
    return update
