"""/v1.0/peer-group-associations: create and update (a peer site's sync also sends the
association type and sync status)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dcman.api.commands.wire import Wire, object_schema, optional
from dcman.domain.associations import MAX_PRIORITY as MAX_ASSOCIATION_PRIORITY
from dcman.domain.commands import AssociationUpdate, NewAssociation
from dcman.domain.errors import InvalidInput
from dcman.domain.states import AssociationSyncStatus, AssociationType
from dcman.domain.values import choice, integer

_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
ASSOC_GROUP = Wire("peer_group_id", _ID)
ASSOC_PEER = Wire("system_peer_id", _ID)
ASSOC_PRIORITY = Wire("peer_group_priority", {"type": "integer", "minimum": 1, "maximum": MAX_ASSOCIATION_PRIORITY})
# From a peer site's sync only: undeclared.
ASSOC_TYPE, ASSOC_SYNC_STATUS, ASSOC_SYNC_MESSAGE = "association_type", "sync_status", "sync_message"
NEW_ASSOCIATION_SCHEMA = object_schema((ASSOC_GROUP, ASSOC_PEER, ASSOC_PRIORITY), required=(ASSOC_GROUP, ASSOC_PEER))
ASSOCIATION_UPDATE_SCHEMA = object_schema((ASSOC_PRIORITY,), required=(ASSOC_PRIORITY,))
_ASSOCIATION_UPDATE_KEYS = (ASSOC_PRIORITY.key, ASSOC_SYNC_STATUS, ASSOC_SYNC_MESSAGE)


def _id(wire: Wire) -> Callable[[object], int]:
    return lambda value: integer(wire.key, value, 1, 2**31 - 1)


def _association_priority(value: object) -> int:
    return integer(ASSOC_PRIORITY.key, value, 1, MAX_ASSOCIATION_PRIORITY)


def new_association(body: Mapping[str, object]) -> NewAssociation:
    for wire in (ASSOC_GROUP, ASSOC_PEER):
        if body.get(wire.key) is None:
            raise InvalidInput(f"The {wire.key} is required.")
    kind = choice(AssociationType, body.get(ASSOC_TYPE, AssociationType.PRIMARY.value),
                  "Only a peer site's sync creates non-primary associations.")
    return NewAssociation(_id(ASSOC_GROUP)(body[ASSOC_GROUP.key]), _id(ASSOC_PEER)(body[ASSOC_PEER.key]),
                          _association_priority(body.get(ASSOC_PRIORITY.key, 1)), kind)


def association_update(body: Mapping[str, object]) -> AssociationUpdate:
    status = body.get(ASSOC_SYNC_STATUS)
    message = body.get(ASSOC_SYNC_MESSAGE)
    update = AssociationUpdate(
        optional(body, ASSOC_PRIORITY, _association_priority),
        None if status is None else choice(AssociationSyncStatus, status, f"Invalid sync_status {status!r}."),
        message if status is not None and isinstance(message, str) else None)
    unknown = sorted(str(key) for key in body if key not in _ASSOCIATION_UPDATE_KEYS)
    if unknown:
        raise InvalidInput(f"Unknown association field(s): {', '.join(unknown)}.")
    if update == AssociationUpdate():
        raise InvalidInput("Nothing to update; give peer_group_priority.")
    return update
