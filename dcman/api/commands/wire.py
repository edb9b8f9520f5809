"""Each write request's fields as the clients spell them, parsed once into a typed command
(dcman.domain.commands), and the same declarations as the request schemas /openapi.json shows.

The only place that knows the wire spellings: `peer-group-name` or `peer_group_name`,
`management-state` beside `bootstrap_address`, the strings a multipart form sends for booleans.
A body is the plain mapping dcman.api.bodies read (bounded, off the event loop); what is wrong
with it is refused here with the one sentence the rule's validator gives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from dcman.domain.errors import InvalidInput

Schema = dict[str, object]
_T = TypeVar("_T")
# Marks a field that names something: /openapi.json declares dcman.domain.text's name rule there
# (the pattern is built on first use, dcman.api.openapi).
NAME_RULE = "x-dcman-name"

# Field schemas several requests share.
FILE: Schema = {"type": "string", "format": "binary"}
FORM_BOOL: Schema = {"type": "string", "enum": ["true", "false"]}
BASE64: Schema = {"type": "string", "description": "base64"}
TEXT: Schema = {"type": "string"}


@dataclass(frozen=True)
class Wire:
    """One request field: its key (and other accepted spellings), its JSON schema, and its
    schema in a multipart form where that differs (files, booleans as text)."""

    key: str
    schema: Schema
    aliases: tuple[str, ...] = ()
    form: Schema | None = None
    names: bool = False

    def declared(self, in_form: bool = False) -> Schema:
        schema = dict(self.form if in_form and self.form is not None else self.schema)
        if self.names:
            schema[NAME_RULE] = True
        return schema


def object_schema(wires: tuple[Wire, ...], *, required: tuple[Wire, ...] = (), closed: bool = True,
                  at_least_one: bool = False, in_form: bool = False) -> Schema:
    """The JSON schema of a body holding these fields."""
    schema: Schema = {"type": "object", "properties": {w.key: w.declared(in_form) for w in wires}}
    if required:
        schema["required"] = [w.key for w in required]
    if closed:
        schema["additionalProperties"] = False
    if at_least_one:
        schema["minProperties"] = 1
    return schema


def json_body(schema: Schema) -> dict[str, object]:
    """A route's `openapi_extra` for a required JSON body of this schema."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def refuse_unknown(body: Mapping[str, object], wires: tuple[Wire, ...], what: str) -> None:
    known = {key for w in wires for key in (w.key, *w.aliases)}
    unknown = sorted(str(key) for key in body if key not in known)
    if unknown:
        raise InvalidInput(f"{what}: {', '.join(unknown)}.")


def canonical(body: Mapping[str, object], wires: tuple[Wire, ...], what: str) -> dict[str, object]:
    """The body by each field's key, whichever spelling it came in; a field given twice is refused."""
    refuse_unknown(body, wires, what)
    spelled = {key: w.key for w in wires for key in (w.key, *w.aliases)}
    found: dict[str, object] = {}
    for key, value in body.items():
        if spelled[key] in found:
            raise InvalidInput(f"The field {spelled[key]} is given twice.")
        found[spelled[key]] = value
    return found


def optional(body: Mapping[str, object], wire: Wire, parse: Callable[[object], _T]) -> _T | None:
    value = body.get(wire.key)
    return None if value is None else parse(value)


def nothing_to_update(wires: tuple[Wire, ...]) -> InvalidInput:
    return InvalidInput(f"Nothing to update; give at least one of {', '.join(w.key for w in wires)}.")


