"""Reading request bodies: JSON objects or multipart/urlencoded forms, as the dcmanager client
sends either. Returns a plain dict, which dcman.api.commands then parses into the request's
command; uploaded files become parsed `YamlUpload`s.

Parsing is CPU work an attacker controls, so it runs in a thread, bounded in size and depth:
the event loop keeps serving the others (and the audit) meanwhile."""

from __future__ import annotations

import asyncio
import json

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from dcman.domain.errors import InvalidInput
from dcman.domain.text import reject_unstorable
from dcman.services.forms import MAX_DEPTH, parse_upload

MAX_BODY_BYTES = 4 << 20
# The parts that hold YAML documents, whether uploaded as files or sent as JSON strings.
YAML_FIELDS = ("bootstrap_values", "install_values", "deploy_config")


async def read_body(request: Request, allow_form: bool = True) -> dict[str, object]:
    body = await _read(request, allow_form)
    return await asyncio.to_thread(_checked, body)


def _checked(body: dict[str, object]) -> dict[str, object]:
    """Refuse unstorable text, and parse the YAML documents a JSON body carries as strings."""
    reject_unstorable(body)
    for key in YAML_FIELDS:
        if isinstance(body.get(key), str):
            body[key] = parse_upload(key, body[key].encode("utf-8"))
    return body


def parse_json_object(raw: bytes) -> dict[str, object]:
    """A JSON object of bounded depth (CPU-bound: run it in a thread)."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        raise InvalidInput(f"The request body nests deeper than {MAX_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    if _depth(body) > MAX_DEPTH:
        raise InvalidInput(f"The request body nests deeper than {MAX_DEPTH} levels.")
    return body


def _depth(value: object) -> int:
    """How deep lists and objects nest, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in item)
    return deepest


async def _read(request: Request, allow_form: bool) -> dict[str, object]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if allow_form and content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _read_form(request)
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    return await asyncio.to_thread(parse_json_object, raw)


async def _read_form(request: Request) -> dict[str, object]:
    try:
        form = await request.form(max_part_size=MAX_BODY_BYTES)
    except HTTPException:  # the body limit's 413 or 408
        raise
    except Exception as exc:  # the multipart parser raises several kinds of errors
        raise InvalidInput(f"The form body cannot be parsed: {exc}.") from None
    body: dict[str, object] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            body[key] = await asyncio.to_thread(parse_upload, key, await value.read())
        else:
            body[key] = value
    return body
