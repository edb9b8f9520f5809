"""Decoding of what clients upload: YAML files and base64 passwords. Bad input → InvalidInput."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import yaml

from dcman.domain.errors import InvalidInput

MAX_UPLOAD_BYTES = 1 << 20


def as_text(field: str, data: Any) -> str | None:
    if data is None:
        return None
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
    text = as_text(field, data)
    if text is None:
        return None
    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise InvalidInput(f"The {field} file must not use YAML aliases.")
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise InvalidInput(f"The {field} file is not valid YAML{line}.") from None
    if not isinstance(loaded, dict):
        raise InvalidInput(f"The {field} file must hold a YAML mapping of keys to values.")
    reject_nul(loaded)
    return {str(key): value for key, value in loaded.items()}


def parse_mapping(field: str, data: Any) -> dict[str, Any] | None:
    """A mapping uploaded as a YAML file (multipart) or given as a JSON object (a JSON update body)."""
    if isinstance(data, dict):
        reject_nul(data)
        return {str(key): value for key, value in data.items()}
    return parse_yaml_mapping(field, data)


def decode_password(field: str, value: Any) -> str:
    """Passwords travel base64-encoded, as the dcmanager client sends them."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"The {field} is required and must be base64-encoded.")
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(f"The {field} must be base64-encoded.") from None
    if not decoded:
        raise InvalidInput(f"The {field} must not be empty.")
    return decoded


def reject_nul(value: Any) -> None:
    """NUL never belongs in a name or text, and PostgreSQL cannot store it: refuse it up front."""
    if isinstance(value, str) and "\x00" in value:
        raise InvalidInput("Text values must not contain NUL characters.")
    if isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key)
            reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            reject_nul(item)
