"""Decoding of what clients upload: YAML files and base64 passwords. Bad input → InvalidInput.

Uploaded YAML is parsed once, off the event loop, when the body is read (`parse_upload`); the
use cases then take the parsed mapping from the `YamlUpload`, so their error order is kept."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import yaml

from dcman.domain.errors import InvalidInput
from dcman.domain.text import reject_unstorable

MAX_UPLOAD_BYTES = 1 << 20
# Deeper than any real bootstrap, install or deploy file; a deeper one is an attack on the parser.
MAX_DEPTH = 32
# libyaml's C parser where PyYAML was built with it: ~50 times faster than the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlUpload:
    """An uploaded file, already parsed: its text, and its mapping or why it is refused."""

    text: str
    mapping: dict[str, Any] | None
    error: str | None

    def __str__(self) -> str:
        return self.text


def parse_upload(field: str, data: bytes) -> YamlUpload | bytes:
    """Parse one uploaded file (CPU-bound: run it in a thread). A file that is not UTF-8 text is
    left as bytes, for the use case to refuse with its own message."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    if len(data) > MAX_UPLOAD_BYTES:
        return data
    try:
        return YamlUpload(text, _load_mapping(field, text), None)
    except InvalidInput as exc:
        return YamlUpload(text, None, exc.message)


def as_text(field: str, data: Any) -> str | None:
    if data is None:
        return None
    if isinstance(data, YamlUpload):
        return data.text
    if not isinstance(data, (str, bytes)):
        raise InvalidInput(f"The {field} must be uploaded as a YAML file.")
    if isinstance(data, bytes):
        if len(data) > MAX_UPLOAD_BYTES:
            raise InvalidInput(f"The {field} file is larger than {MAX_UPLOAD_BYTES} bytes.")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"The {field} file is not UTF-8 text.") from None
    return data


def parse_yaml_mapping(field: str, data: Any) -> dict[str, Any] | None:
    """A YAML document holding a mapping. Aliases are refused: they let a small file expand
    into a huge structure once stored as JSON."""
    if isinstance(data, YamlUpload):
        if data.error is not None:
            raise InvalidInput(data.error)
        return dict(data.mapping or {})
    text = as_text(field, data)
    if text is None:
        return None
    return _load_mapping(field, text)


def _load_mapping(field: str, text: str) -> dict[str, Any]:
    try:
        depth = 0
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise InvalidInput(f"The {field} file must not use YAML aliases.")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise InvalidInput(f"The {field} file nests deeper than {MAX_DEPTH} levels.")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        loaded = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise InvalidInput(f"The {field} file is not valid YAML{line}.") from None
    if not isinstance(loaded, dict):
        raise InvalidInput(f"The {field} file must hold a YAML mapping of keys to values.")
    reject_unstorable(loaded)
    return {str(key): value for key, value in loaded.items()}


def parse_mapping(field: str, data: Any) -> dict[str, Any] | None:
    """A mapping uploaded as a YAML file (multipart) or given as a JSON object (a JSON update body)."""
    if isinstance(data, dict):
        reject_unstorable(data)
        return {str(key): value for key, value in data.items()}
    return parse_yaml_mapping(field, data)


def password_required(field: str) -> InvalidInput:
    return InvalidInput(f"The {field} is required and must be base64-encoded.")


def decode_password(field: str, value: object) -> str:
    """Passwords travel base64-encoded, as the dcmanager client sends them."""
    if not isinstance(value, str) or not value:
        raise password_required(field)
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(f"The {field} must be base64-encoded.") from None
    if not decoded:
        raise InvalidInput(f"The {field} must not be empty.")
    return decoded
